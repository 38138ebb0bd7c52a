"""Frames of a video file, sampled every N frames or at a rate, with their timestamps (PyAV:
``pip install 'faceattr[video]'``)."""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from PIL import Image

from .images import ImageError, _check_pixels, clean_message, path_problem, source_name
from ..errors import InputError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass(eq=False)
class VideoBytes:
    """A video file's content held in memory (a Ray Data ``read_binary_files`` row), and its name."""

    data: bytes
    name: str


def is_video_path(path) -> bool:
    if isinstance(path, VideoBytes):
        return True
    return isinstance(path, (str, os.PathLike)) and Path(path).suffix.lower() in VIDEO_EXTENSIONS


def iter_frames(path, every: int | None = None, fps: float | None = None) -> Iterator[tuple[int, float, Image.Image]]:
    """(frame index, time in seconds, RGB image) of the sampled frames: every ``every``-th frame,
    or about ``fps`` frames per second of video, or (neither) every frame. A file that cannot be
    decoded raises ImageError naming it (and the frame, when it fails part-way)."""
    if every is not None and every < 1:
        raise InputError(f"every must be at least 1, got {every}")
    if fps is not None and not fps > 0:
        raise InputError(f"fps must be positive, got {fps}")
    try:
        import av
    except ImportError:  # pragma: no cover - depends on the install
        raise ImageError(f"{path}: reading video needs PyAV: pip install 'faceattr[video]'") from None
    if isinstance(path, VideoBytes):
        name, source = path.name, io.BytesIO(path.data)
    else:
        name, source = source_name(path), str(path)
        problem = path_problem(Path(path))
        if problem:
            raise ImageError(f"{name}: {problem}")
    try:
        container = av.open(source)
    except Exception as e:  # noqa: BLE001 - the decoding boundary, as faces.images.load_photo
        raise ImageError(f"{name}: cannot read as a video ({clean_message(str(e), name)})") from None
    index = -1
    try:
        if not container.streams.video:
            raise ImageError(f"{name}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or 25)
        next_t = 0.0
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.pts * stream.time_base) if frame.pts is not None and stream.time_base else index / rate
            if every is not None:
                take = index % every == 0
            elif fps is not None:
                take = t >= next_t - 1e-6
                if take:
                    next_t += 1.0 / fps
            else:
                take = True
            if take:
                _check_pixels(frame.width, frame.height, name)
                yield index, t, frame.to_image().convert("RGB")
        if index < 0:
            raise ImageError(f"{name}: the video stream has no frames")
    except ImageError:
        raise
    except Exception as e:  # noqa: BLE001 - the decoding boundary, as faces.images.load_photo
        where = f" at frame {index + 1}" if index >= 0 else ""
        raise ImageError(f"{name}: video cannot be decoded{where} ({clean_message(str(e), name)})") from None
    finally:
        container.close()


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a video are inputs: every ``every``-th (it wins when both are given), or
    about ``fps`` a second of video, or (neither) every frame. Photos are not affected."""

    every: int | None = None
    fps: float | None = None

    def __post_init__(self):
        if self.every is not None and (isinstance(self.every, bool) or not isinstance(self.every, int)
                                       or self.every < 1):
            raise InputError(f"every must be a whole number, at least 1, got {self.every!r}")
        if self.fps is not None and not (isinstance(self.fps, (int, float)) and math.isfinite(self.fps)
                                         and self.fps > 0):
            raise InputError(f"fps must be a positive number, got {self.fps!r}")

    def to_dict(self) -> dict:
        return {"every": self.every, "fps": self.fps}


EVERY_FRAME = FrameSampling()


@dataclass(eq=False)
class Unit:
    """One thing to find faces in: a photo (``item`` as given), or one sampled frame of a video
    (``item`` the frame, ``where`` its frame index and time); ``error`` when the video failed."""

    item: object
    name: str
    where: dict = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None  # ImageError.kind of ``error``


def expand_inputs(items, names, sampling: FrameSampling = EVERY_FRAME, skip=None) -> Iterator[Unit]:
    """Photos as they are, videos as their frames that ``sampling`` takes (decoded lazily, one at
    a time). ``skip(name, frame)`` true leaves that photo (frame -1) or frame out: what a resume
    has done."""
    for item, name in zip(items, names):
        if not is_video_path(item):
            if skip is None or not skip(name, -1):
                yield Unit(item, name)
            continue
        try:
            for index, t, frame in iter_frames(item, sampling.every, sampling.fps):
                if skip is None or not skip(name, index):
                    yield Unit(frame, name, {"frame": index, "time_s": round(t, 4)})
        except ImageError as e:
            yield Unit(None, name, {"frame": None, "time_s": None}, str(e), e.kind)


def chunked(it: Iterable, n: int) -> Iterator[list]:
    chunk = []
    for x in it:
        chunk.append(x)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
