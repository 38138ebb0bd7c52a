"""Reading images from disk or memory into 8-bit RGB, with errors that name the file."""
from __future__ import annotations

import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from ..errors import ImageError, ImageTooLarge

# Larger images are refused before decoding so one bad file cannot exhaust memory:
# 50 megapixels is above any common camera output (a 45 MP full-frame sensor) and decodes to
# 150 MB of RGB.
MAX_PIXELS = 50_000_000
# Smaller images cannot hold a detectable face (MTCNN's smallest window is 12 pixels).
MIN_SIDE = 12

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".avif")
# The decoders Pillow may use (its names for the formats of IMAGE_EXTENSIONS; JPEG includes MPO,
# what phones write). Whatever a file is named, Pillow's other decoders (DDS, PSD, FITS, ...) are
# never tried: they read no photo a user has, and are where crafted files find faults.
PHOTO_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "GIF", "PPM", "AVIF")
# Files that report a size of 0 but have content (Linux's /proc and /sys) are read up to this
# many bytes; more than any image we accept compresses to.
MAX_UNSIZED_BYTES = 256 * 1024 * 1024

ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


_OBJECT_REPR = re.compile(r"<[^<>]*? at 0x[0-9a-fA-F]+>")


def clean_message(text: str, name: str) -> str:
    """A library's error text without object reprs and memory addresses (``<_io.BytesIO object at
    0x7f...>``): they tell a user nothing and reveal the process's memory layout."""
    return _OBJECT_REPR.sub(name, text)


def path_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file, in words (None for a regular file or one that reads
    like one): missing, a broken link, a folder, a FIFO, a device or a socket."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            return f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
        return "no such file"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    kinds = ((stat.S_ISDIR, "a folder, not an image file"), (stat.S_ISFIFO, "a FIFO (named pipe), not a file"),
             (stat.S_ISCHR, "a character device, not a file"), (stat.S_ISBLK, "a block device, not a file"),
             (stat.S_ISSOCK, "a socket, not a file"))
    for test, words in kinds:
        if test(st.st_mode):
            return words
    return None


def source_name(source) -> str:
    """How errors and results name an input: its path (as ``text_name``), or its type."""
    if isinstance(source, (str, os.PathLike)):
        return text_name(os.fsdecode(source))
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    return f"<{type(source).__name__}>"


def text_name(name: str) -> str:
    """A file name as text that every output can hold: the bytes of a name that is not UTF-8 (which
    Python keeps as lone surrogates, ``bad\udcff.jpg``) written as escapes (``bad\\xff.jpg``). A
    parquet, CSV or JSON file can then store the name, and a resume finds it again."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name's bytes give
        raw = name.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def _check_pixels(w: int, h: int, name: str) -> None:
    if w * h > MAX_PIXELS:
        raise ImageTooLarge(f"{name}: image is {w}x{h} = {w * h:,} pixels, above the limit of "
                         f"{MAX_PIXELS:,} (faceattr.faces.images.MAX_PIXELS)")


def _to_rgb(img: Image.Image, name: str) -> Image.Image:
    _check_pixels(*img.size, name)
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if mode == "F" and a.size and 0.0 <= a.min() and a.max() <= 1.0:
            hi = 1.0  # a float image in [0, 1], as array inputs are read
        else:
            hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Transparent pixels go on white, as an image viewer shows them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = img.convert("RGB")
    if min(rgb.size) < MIN_SIDE:
        raise ImageError(f"{name}: image is {rgb.size[0]}x{rgb.size[1]} pixels, too small for a face "
                         f"(at least {MIN_SIDE}x{MIN_SIDE})")
    return rgb


def load_rgb(source: ImageSource) -> Image.Image:
    """Open a path, PIL image or uint8 array as an 8-bit RGB PIL image.

    EXIF orientation is applied; grayscale, RGBA, CMYK, palette and 16-bit images are converted.
    Raises ImageError naming the input for missing, empty, truncated, non-image, huge or tiny inputs.
    """
    return load_photo(source)[0]


def load_photo(source: ImageSource, min_side: int | None = None) -> tuple[Image.Image, float]:
    """``load_rgb``, and for a large JPEG file a faster decode at reduced size (JPEG's 1/2, 1/4 or
    1/8 scaling) whose longer side stays at least ``min_side``. Returns (image, photo pixels per
    image pixel): 1.0 unless the decode was reduced.

    This is the decoding boundary: whatever a decoder raises on an input (Pillow raises
    ``NotImplementedError``, ``struct.error``, ``IndexError``... on crafted files) becomes that
    input's ``ImageError`` naming it, so the other inputs of a batch go on."""
    name = source_name(source)
    try:
        return _decode(source, name, min_side)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as e:
        raise ImageTooLarge(f"{name}: image too large to decode safely ({clean_message(str(e), name)})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: cannot read as an image (not a {', '.join(readable_formats())} file)") from None
    except Exception as e:  # noqa: BLE001 - see the docstring: any decoder fault is this input's error
        why = clean_message(str(e), name) or "no message"
        raise ImageError(f"{name}: cannot read as an image ({type(e).__name__}: {why})") from None


def readable_formats() -> tuple[str, ...]:
    """PHOTO_FORMATS that this Pillow build can decode (AVIF needs a recent Pillow)."""
    Image.init()
    return tuple(f for f in PHOTO_FORMATS if f in Image.OPEN)


def _decode(source: ImageSource, name: str, min_side: int | None) -> tuple[Image.Image, float]:
    if isinstance(source, Image.Image):
        return _to_rgb(source, name), 1.0
    if isinstance(source, np.ndarray):
        return _to_rgb(array_to_image(source, name), name), 1.0
    if isinstance(source, (bytes, bytearray)):  # an encoded image file in memory (an upload)
        if not source:
            raise ImageError(f"{name}: no image data (0 bytes)")
        opened = io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        opened = _open_path(Path(source), name)
    else:
        raise ImageError(f"{name}: not an image; expected a path, encoded bytes, a PIL image or an "
                         f"(H, W, 3) array")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(opened, formats=readable_formats()) as img:
            _check_pixels(*img.size, name)
            full = img.size
            if min_side and img.format == "JPEG" and max(full) >= 2 * min_side:
                img.draft("RGB", (max(1, full[0] * min_side // max(full)), max(1, full[1] * min_side // max(full))))
            img.load()
            scale = full[0] / img.size[0]
            return _to_rgb(img, name), scale


def _open_path(path: Path, name: str):
    """The path, or its bytes for a file that reports 0 bytes but has content (/proc)."""
    problem = path_problem(path)
    if problem:
        raise ImageError(f"{name}: {problem}")
    if path.stat().st_size > 0:
        return path
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_UNSIZED_BYTES + 1)
    except OSError as e:
        raise ImageError(f"{name}: cannot be read ({e.strerror or e})") from None
    if not data:
        raise ImageError(f"{name}: file is empty (0 bytes)")
    if len(data) > MAX_UNSIZED_BYTES:
        raise ImageTooLarge(f"{name}: more than {MAX_UNSIZED_BYTES:,} bytes")
    return io.BytesIO(data)


def array_to_image(a: np.ndarray, name: str = "<array>") -> Image.Image:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array -> PIL image. uint8, or floats in [0, 1]."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageError(f"{name}: expected an (H, W, 3) image array, got shape {a.shape}")
    _check_pixels(a.shape[1], a.shape[0], name)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating):
            if not np.isfinite(a).all():
                raise ImageError(f"{name}: image array contains NaN or infinity")
            if a.size and (a.min() < 0.0 or a.max() > 1.0):
                raise ImageError(f"{name}: float image values must be in [0, 1], got [{a.min():.4g}, "
                                 f"{a.max():.4g}]; pass uint8 for 0-255 values")
            a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
        elif a.dtype == np.uint16:
            a = (a.astype(np.uint32) * 255 // 65535).astype(np.uint8)
        else:
            raise ImageError(f"{name}: unsupported image array dtype {a.dtype}")
    return Image.fromarray(a)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS
