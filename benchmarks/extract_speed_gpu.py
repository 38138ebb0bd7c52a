"""Multi-view feature extraction faces/s on a GPU: the shipped views through the library's
``MultiViewEncoder``, by batch size and precision, on the packed training crops.

    python -m benchmarks.extract_speed_gpu --data .gpu --out $OUT/extract_gpu.json

Run on the device machine (the crops come from ``tools/pack_training_data.py``: the machine
has no CelebA folder). Each figure is the median of three timed passes over all crops after a
warm-up pass of 4,096; ``batch=default`` is the library's own batch size and ``precision=auto``
its bfloat16 path. Writes the JSON; ``--md`` also the table (benchmarks/results/extract_speed_gpu.md).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


from faceattr.atomic import write_text
from faceattr.inference.bundle import Bundle
from faceattr.inference.encoder import MultiViewEncoder

BATCHES = (None, 256, 1024, 4096)
PRECISIONS = ("auto", "float32")


def measure(faces, vaes, device="cuda") -> dict:
    """faces/s for each batch size and precision. ``encode`` returns numpy, so each timed call
    ends with the device's work done (its one transfer back waits for it)."""
    from benchmarks.extract_speed import median_seconds
    out = {}
    for bs in BATCHES:
        for prec in PRECISIONS:
            e = MultiViewEncoder(vaes, device=device, batch_size=bs, precision=prec)
            e.encode(faces[:4096])
            out[f"batch={bs or 'default'},precision={prec}"] = round(len(faces) / median_seconds(lambda: e.encode(faces), 3), 1)
    return out


def table(res: dict) -> str:
    rows = [f"| {k.split(',')[0].removeprefix('batch=')} | {k.split(',')[1].removeprefix('precision=')} | {v:,.0f} |"
            for k, v in res["faces_per_s"].items()]
    return "\n".join([f"Multi-view extraction on {res['device']} (torch {res['torch']}), {res['faces']:,} faces of 64x64, "
                      "500-d features (`python -m benchmarks.extract_speed_gpu --data .gpu`):", "",
                      "| batch | precision | faces/s |", "|---|---|---|", *rows]) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=".gpu")
    ap.add_argument("--out", required=True, help="the JSON to write")
    ap.add_argument("--md", default=None, help="also write the table here")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    from tools.pack_training_data import unpack
    faces, _ = unpack(Path(args.data) / "train_crops.npz")
    bundle = Bundle.load()
    vaes = {v: bundle.load_vae(v) for v in bundle.views}
    res = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else args.device,
           "torch": torch.__version__, "faces": len(faces), "faces_per_s": measure(faces, vaes, args.device)}
    write_text(args.out, json.dumps(res, indent=1))
    if args.md:
        write_text(args.md, table(res))
    print(table(res))


if __name__ == "__main__":
    main()
