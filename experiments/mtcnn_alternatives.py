"""Two ways to make detection cheaper that were measured and not taken: MTCNN's three networks in
onnxruntime instead of torch (channels_last, as shipped), and glibc's allocator told never to
return memory to the system (so large activations stop costing page faults).

    python -m experiments.mtcnn_alternatives --root CELEBA_MINI [--photos 256] [--repeats 5]

The first times each network on a batch of the size detection runs it at (RNet 128 crops, ONet
64, PNet 32 photos at the first pyramid level of a 178x218 photo). The second runs
``FaceDetector.detect_batch`` on celeba-mini test photos in fresh processes, alternating, with and
without ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` (process-wide settings a library
must not make for its caller), counting minor page faults. Writes
experiments/results/mtcnn_alternatives.json and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from faceattr.atomic import write_text
from faceattr.data.celeba import add_root_argument
from faceattr.device import cpu_description

OUT = Path(__file__).resolve().parent / "results"
NET_INPUTS = {"pnet": (32, 3, 131, 107), "rnet": (128, 3, 24, 24), "onet": (64, 3, 48, 48)}
NO_TRIM = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str((1 << 31) - 1)}
DETECT_CHILD = """
import json, resource, sys, time
from PIL import Image
from faceattr.data.celeba import CelebA
from faceattr.faces.detect import FaceDetector
imgs = [Image.open(p).convert("RGB") for p in CelebA.load(sys.argv[1], "test", max_images=int(sys.argv[2])).paths()]
det = FaceDetector()
det.detect_batch(imgs)
f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
det.detect_batch(imgs)
print(json.dumps({"s": time.perf_counter() - t0, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0}))
"""


def median_ms(f, repeats: int = 9) -> float:
    f()
    f()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def networks_in_onnxruntime() -> dict:
    """Per network: torch channels_last ms, onnxruntime ms, their largest output difference."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from faceattr.faces.mtcnn_nets import load_networks
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    out = {}
    for (name, shape), net in zip(NET_INPUTS.items(), load_networks("cpu")):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        buf = io.BytesIO()
        torch.onnx.export(net.to(memory_format=torch.contiguous_format), (x,), buf, input_names=["x"], dynamo=False)
        sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        net = net.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            ref = net(xc)
            torch_ms = median_ms(lambda: net(xc))
        ort_ms = median_ms(lambda: sess.run(None, {"x": x.numpy()}))
        diff = max(float(np.abs(o - r.numpy()).max()) for o, r in zip(sess.run(None, {"x": x.numpy()}), ref))
        out[name] = {"batch": list(shape), "torch_ms": torch_ms, "onnxruntime_ms": ort_ms, "max_difference": diff}
    return out


def detection_with_and_without_trimming(root: str, photos: int, repeats: int) -> dict:
    runs: dict = {"default": [], "no_trim": []}
    for _ in range(repeats):
        for arm, extra in (("default", {}), ("no_trim", NO_TRIM)):
            done = subprocess.run([sys.executable, "-c", DETECT_CHILD, root, str(photos)], env={**os.environ, **extra},
                                  capture_output=True, text=True, check=True)
            runs[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {arm: {"median_s": statistics.median(r["s"] for r in rs), "median_faults": statistics.median(r["faults"] for r in rs),
                  "runs": rs} for arm, rs in runs.items()}


def report(res: dict) -> str:
    md = [f"`python -m experiments.mtcnn_alternatives --root CELEBA_MINI --photos {res['photos']} --repeats "
          f"{res['repeats']}` on {res['cpu']}.", "",
          "| network, batch | torch channels_last ms | onnxruntime ms | largest output difference |", "|---|---|---|---|"]
    md += [f"| {n} {tuple(r['batch'])} | {r['torch_ms']:.1f} | {r['onnxruntime_ms']:.1f} | {r['max_difference']:.2g} |"
           for n, r in res["networks"].items()]
    d, n = res["detection"]["default"], res["detection"]["no_trim"]
    md += ["", f"Detection of {res['photos']} photos, median of {res['repeats']} fresh processes each: "
           f"{d['median_s']:.2f} s with glibc's defaults ({d['median_faults']:,.0f} minor page faults), "
           f"{n['median_s']:.2f} s when it never returns memory ({n['median_faults']:,.0f}): "
           f"{d['median_s'] / n['median_s']:.2f}x. Neither is taken: onnxruntime is not faster than torch "
           "here, and the allocator's settings are the whole process's, which a library must not change."]
    return "\n".join(md) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_root_argument(ap)
    ap.add_argument("--photos", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    res = {"cpu": cpu_description(), "photos": args.photos, "repeats": args.repeats,
           "networks": networks_in_onnxruntime(),
           "detection": detection_with_and_without_trimming(args.root, args.photos, args.repeats)}
    write_text(OUT / "mtcnn_alternatives.json", json.dumps(res, indent=1))
    write_text(OUT / "mtcnn_alternatives.md", report(res))
    print(report(res))


if __name__ == "__main__":
    main()
