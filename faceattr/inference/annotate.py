"""Pictures of what was found: each face's box, its five landmarks and its most confident
attributes drawn on the photo (torchvision's ``draw_bounding_boxes`` / ``draw_keypoints``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

COLORS = ("#00e676", "#40c4ff", "#ffd740", "#ff6e40", "#e040fb")


def most_confident(attributes: dict, k: int = 3) -> list[str]:
    """The ``k`` attributes whose decision is surest, as "+Smiling 97%" / "-Male 3%"."""
    sure = sorted(attributes.items(), key=lambda kv: -abs(kv[1]["probability"] - 0.5))[:k]
    return [f"{'+' if a['present'] else '-'}{n} {a['probability']:.0%}" for n, a in sure]


def annotate(img: Image.Image, faces: list[dict], top: int = 3) -> Image.Image:
    """``img`` with every face of a prediction record drawn (faces without a box are skipped)."""
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
    boxes = torch.tensor([f["box"] for f in boxed], dtype=torch.float32)
    labels = [" | ".join(most_confident(f["attributes"], top)) for f in boxed]
    t = draw_bounding_boxes(t, boxes, labels=labels if font else None, colors=colors, width=width,
                            font=font, font_size=font_size, fill_labels=True)
    points = torch.tensor([f["landmarks"] for f in boxed], dtype=torch.float32)  # (faces, 5, 2)
    t = draw_keypoints(t, points, colors="#ff1744", radius=max(2, side // 250))
    out = Image.fromarray(t.permute(1, 2, 0).numpy())
    if not font:  # no TrueType font on this machine: PIL's built-in bitmap font
        from PIL import ImageDraw
        d = ImageDraw.Draw(out)
        for f, label in zip(boxed, labels):
            d.text((f["box"][0], max(0, f["box"][1] - 12)), label, fill="#ffffff")
    return out


def _font() -> str | None:
    """A TrueType font for the labels: matplotlib ships DejaVu Sans."""
    try:
        import matplotlib
        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return str(path) if path.is_file() else None
    except ImportError:  # pragma: no cover
        return None


def annotated_name(name: str, frame: int | None, used: set[str]) -> str:
    """A file name in the annotation folder, unique within the run."""
    stem = Path(name).stem if not name.startswith("<") else "input"
    base = f"{stem}_frame{frame:06d}" if frame is not None else stem
    out, k = f"{base}.png", 2
    while out in used:
        out, k = f"{base}-{k}.png", k + 1
    used.add(out)
    return out


def save_annotated(img: Image.Image, record: dict, folder: str | os.PathLike, used: set[str]) -> Path:
    from ..atomic import atomic_path
    path = Path(folder) / annotated_name(record["file"], record.get("frame"), used)
    with atomic_path(path) as tmp:
        annotate(img, record["faces"]).save(tmp, format="PNG")
    return path
