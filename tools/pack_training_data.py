"""Pack what a GPU machine needs to train the five views into one folder (default ``.gpu/``).

The device machine receives only the working tree (64 MiB at most), so this writes
- ``train_crops.npz``: the 64x64 training crops of a CelebA split, each stored as a JPEG
  (quality 92, no chroma subsampling) with the file names, plus the PSNR of that storage against the exact crops;
- ``vgg19_caffe_fp16.pt``: the VGG19 loss network to relu5_1, converted from the Keras file,
  stored in float16 (training runs it under bfloat16 autocast, whose 8-bit mantissa is coarser).

    python -m tools.pack_training_data --root CELEBA_MINI --out .gpu
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from faceattr.atomic import atomic_path
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.nn.vgg import load_loss_network, save_converted


def jpeg_pack(crops: np.ndarray, quality: int) -> tuple[dict, float, int]:
    """(JPEG bytes and offsets as arrays, PSNR in dB against the exact crops, total bytes)."""
    blobs, offsets, sq = [], [0], []
    for c in crops:
        buf = io.BytesIO()
        Image.fromarray(c).save(buf, format="JPEG", quality=quality, subsampling=0)
        b = buf.getvalue()
        back = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.float64)
        sq.append(((back - c) ** 2).mean())
        blobs.append(b)
        offsets.append(offsets[-1] + len(b))
    psnr = 10 * np.log10(255.0 ** 2 / float(np.mean(sq)))
    return {"jpeg": np.frombuffer(b"".join(blobs), np.uint8), "offsets": np.asarray(offsets, np.int64)}, psnr, offsets[-1]


def unpack_extra(data_dir) -> tuple[np.ndarray | None, dict]:
    """The packed extra faces and their record (source, count, sha256), or (None, {})."""
    path = Path(data_dir) / "extra_crops.npz"
    if not path.is_file():
        return None, {}
    faces, _ = unpack(path)
    return faces, json.loads(str(np.load(path)["record"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    add_root_argument(ap)
    ap.add_argument("--split", default="train")
    ap.add_argument("--out", default=".gpu")
    ap.add_argument("--quality", type=int, default=92)
    ap.add_argument("--extra-faces", default=None, help="also pack this folder of unlabeled faces (extra_crops.npz)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = CelebA.load(args.root, args.split)
    crops = ds.crops(progress=True)
    arrays, psnr, size = jpeg_pack(crops, args.quality)
    with atomic_path(out / "train_crops.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays, files=np.asarray(ds.files), labels=ds.labels)
    extra = {}
    if args.extra_faces:  # unlabeled faces for faceattr train --extra-faces, packed the same way
        from faceattr.data.extra_faces import load_extra_faces
        faces, extra = load_extra_faces(args.extra_faces)
        arrays, extra["psnr_db"], _ = jpeg_pack(faces, args.quality)
        with atomic_path(out / "extra_crops.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays, record=json.dumps(extra))
    save_converted(load_loss_network(), out / "vgg19_caffe_fp16.pt")
    info = {"split": args.split, "n": len(ds), "jpeg_quality": args.quality, "psnr_db": round(psnr, 2),
            "bytes": size, "extra_faces": extra}
    (out / "pack_info.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info))


def unpack(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Decode ``train_crops.npz`` back to (N, 64, 64, 3) uint8 crops and file names."""
    z = np.load(path)
    data, off = z["jpeg"].tobytes(), z["offsets"]
    crops = np.stack([np.asarray(Image.open(io.BytesIO(data[off[i]:off[i + 1]])).convert("RGB"))
                      for i in range(len(off) - 1)])
    return crops, list(z["files"]) if "files" in z.files else []


if __name__ == "__main__":
    main()
