"""Faces per second of the exported ONNX model in onnxruntime against torch's float32 path, on
the same aligned faces in one run (both float32, the CPU's threads, the same batch size):

    python -m benchmarks.onnx_speed --root CELEBA_MINI

torch: ``MultiViewEncoder(precision="float32")`` and the heads (features, probabilities); onnxruntime:
``faceattr export onnx``'s model (the same outputs and the decisions). Repeats alternate between
the two; the median of each is reported. Writes benchmarks/results/onnx_speed.json and .md.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from faceattr.atomic import write_text
from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import machine_description

RESULTS = Path(__file__).resolve().parent / "results"
BATCH = 64  # faces per call, the encoder's CPU batch (faceattr.device.CPU_BATCH_SIZE)


def main(argv=None) -> None:
    import onnxruntime as ort
    import torch
    from faceattr.onnx_export import export_onnx
    from faceattr.inference.bundle import Bundle
    from faceattr.inference.encoder import MultiViewEncoder
    from faceattr.inference.heads import LinearHeads
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--faces", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    faces = CelebA.load(args.root, "test", max_images=args.faces).crops(progress=False)
    bundle = Bundle.load()
    encoder = MultiViewEncoder.from_bundle(bundle, bundle.head_views(), device="cpu", precision="float32",
                                           batch_size=BATCH)
    heads = LinearHeads(bundle.heads(), "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        session = ort.InferenceSession(str(export_onnx(Path(tmp) / "m")))

    def by_torch():
        feats = encoder.encode_tensor(torch.from_numpy(faces))
        heads.probabilities(heads.scores(feats))

    def by_onnxruntime():
        for k in range(0, len(faces), BATCH):
            session.run(None, {"faces": faces[k:k + BATCH]})
    seconds = {"torch float32": [], "onnxruntime float32": []}
    for fn in (by_torch, by_onnxruntime):  # warm-up
        fn()
    for _ in range(args.repeats):
        for name, fn in (("torch float32", by_torch), ("onnxruntime float32", by_onnxruntime)):
            t0 = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t0)
    rate = {k: len(faces) / statistics.median(v) for k, v in seconds.items()}
    result = {"faces": len(faces), "batch": BATCH, "repeats": args.repeats, "faces_per_s": rate,
              "onnxruntime_over_torch": rate["onnxruntime float32"] / rate["torch float32"],
              "seconds": seconds, "machine": machine_description()["cpu"], "torch": torch.__version__,
              "onnxruntime": ort.__version__, "command": "python -m benchmarks.onnx_speed --root CELEBA_MINI"}
    write_text(RESULTS / "onnx_speed.json", json.dumps(result, indent=1))
    md = (f"# The ONNX export's speed\n\n`{result['command']}` on {result['machine']} (torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}): {len(faces)} aligned celeba-mini test faces, {BATCH} a call, "
          f"median of {args.repeats} alternating repeats, both float32, features and the 40 probabilities.\n\n"
          "| path | faces/s |\n|---|---|\n"
          + "".join(f"| {k} | {v:.0f} |\n" for k, v in rate.items())
          + f"\nonnxruntime runs at {result['onnxruntime_over_torch']:.2f}x torch's float32 speed.\n")
    write_text(RESULTS / "onnx_speed.md", md)
    print(md)


if __name__ == "__main__":
    main()
