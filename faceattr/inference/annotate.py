"""Pictures of what was found: each face's box, its five landmarks and its most confident
attributes drawn on the photo (torchvision's ``draw_bounding_boxes`` / ``draw_keypoints``)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

COLORS = ("#00e676", "#40c4ff", "#ffd740", "#ff6e40", "#e040fb")


def ranked(attributes: dict) -> list[tuple[str, dict]]:
    """Attributes in the order a person reads them: those present first, each group from the most
    probable down (a face's label says what it has, not the long list of what it surely lacks)."""
    return sorted(attributes.items(), key=lambda kv: (not kv[1]["present"], -kv[1]["probability"]))


def most_confident(attributes: dict, k: int = 3) -> list[str]:
    """The ``k`` first attributes of ``ranked``, as "+Smiling 97%" (or "-Male 3%" when fewer than
    ``k`` are present). Undecided attributes (``present`` None: no features) are left out."""
    decided = {n: a for n, a in attributes.items() if a["present"] is not None}
    return [f"{'+' if a['present'] else '-'}{n} {a['probability']:.0%}" for n, a in ranked(decided)[:k]]


def annotate(img: Image.Image, faces: list[dict], top: int = 3, scale: float = 1.0) -> Image.Image:
    """``img`` with every face of a prediction record drawn (faces without a box are skipped).
    ``scale``: photo pixels per pixel of ``img`` (the boxes are in the photo's pixels)."""
    import torch
    from torchvision.utils import draw_bounding_boxes, draw_keypoints
    boxed = [f for f in faces if f.get("box")]
    t = torch.from_numpy(np.array(img.convert("RGB"))).permute(2, 0, 1).contiguous()
    if not boxed:
        return img.convert("RGB")
    side = max(img.size)
    width = max(2, side // 300)
    font_size = max(12, side // 45)
    font = _font()
    colors = [COLORS[i % len(COLORS)] for i in range(len(boxed))]
    boxes = torch.tensor([f["box"] for f in boxed], dtype=torch.float32) / scale
    labels = [" | ".join(most_confident(f["attributes"], top)) for f in boxed]
    t = draw_bounding_boxes(t, boxes, labels=labels if font else None, colors=colors, width=width,
                            font=font, font_size=font_size, fill_labels=True)
    points = torch.tensor([f["landmarks"] for f in boxed], dtype=torch.float32) / scale  # (faces, 5, 2)
    t = draw_keypoints(t, points, colors="#ff1744", radius=max(2, side // 250))
    out = Image.fromarray(t.permute(1, 2, 0).numpy())
    if not font:  # no TrueType font on this machine: PIL's built-in bitmap font
        from PIL import ImageDraw
        d = ImageDraw.Draw(out)
        for f, label in zip(boxed, labels):
            d.text((f["box"][0] / scale, max(0, f["box"][1] / scale - 12)), label, fill="#ffffff")
    return out


def _font() -> str | None:
    """A TrueType font for the labels: matplotlib ships DejaVu Sans."""
    try:
        import matplotlib
        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return str(path) if path.is_file() else None
    except ImportError:  # pragma: no cover
        return None


# What annotated_name makes: ``NAME.annotated.png``, ``NAME.annotated-2.png``, ...
ANNOTATED_SUFFIX = re.compile(r"\.annotated(-\d+)?\.png$")


def is_annotated_output(path) -> bool:
    """Whether ``path`` is named as ``--annotate`` names what it draws: an earlier run's output,
    which a folder given as input would otherwise read as a new photo."""
    return bool(ANNOTATED_SUFFIX.search(Path(path).name))


def annotated_name(name: str, frame: int | None, used: set[str]) -> str:
    """A file name in the annotation folder, unique within the run. It keeps the input's whole
    name, extension included (``face.jpg`` -> ``face.jpg.annotated.png``), so ``face.jpg`` and
    ``face.png`` never share one, and no annotation can be named like an input photo."""
    base = Path(name).name if not name.startswith("<") else "input"
    if frame is not None:
        base = f"{base}.frame{frame:06d}"
    out, k = f"{base}.annotated.png", 2
    while out in used:
        out, k = f"{base}.annotated-{k}.png", k + 1
    used.add(out)
    return out


def save_annotated(img: Image.Image, record: dict, folder: str | os.PathLike, used: set[str],
                   scale: float = 1.0) -> Path:
    """Write the annotated photo as a new file; a file already there (one this run did not make)
    is never replaced: FileExistsError names it."""
    from ..atomic import atomic_new_path
    path = Path(folder) / annotated_name(record["file"], record.get("frame"), used)
    with atomic_new_path(path) as tmp:
        annotate(img, record["faces"], scale=scale).save(tmp, format="PNG")
    return path
