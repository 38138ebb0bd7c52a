"""Start-up of the command line, each run a fresh process (median of several):

    python -m benchmarks.startup_speed

- ``faceattr --help``: the time before a person sees the help (no torch import);
- ``faceattr predict examples/astronaut.png``: one photo, end to end, and its split measured in
  one fresh process: importing torch, importing faceattr's inference, loading and verifying the
  bundle (sha256 of every file) and building the encoders, the first inference (detector load,
  detection, alignment, encoding, heads).

Writes benchmarks/results/startup_speed.json and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from faceattr.atomic import write_text
from faceattr.device import cpu_description

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results"
PHOTO = REPO / "examples" / "astronaut.png"
SPLIT = """
import json, time
t0 = time.perf_counter()
import torch
t1 = time.perf_counter()
from faceattr.inference.predictor import AttributePredictor
t2 = time.perf_counter()
p = AttributePredictor()
t3 = time.perf_counter()
p.predict_images([{photo!r}])
t4 = time.perf_counter()
print(json.dumps({{"import torch": t1 - t0, "import faceattr inference": t2 - t1,
                  "bundle load, verify, encoders": t3 - t2, "first inference": t4 - t3}}))
"""


def seconds(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cli = [sys.executable, "-m", "faceattr.cli"]
    runs = {"faceattr --help": cli + ["--help"], "faceattr predict --help": cli + ["predict", "--help"],
            "faceattr predict examples/astronaut.png": cli + ["predict", str(PHOTO), "--format", "json"]}
    medians = {name: statistics.median(seconds(cmd) for _ in range(args.repeats)) for name, cmd in runs.items()}
    splits = [json.loads(subprocess.run([sys.executable, "-c", SPLIT.format(photo=str(PHOTO))], check=True,
                                        capture_output=True, text=True, cwd=REPO).stdout)
              for _ in range(args.repeats)]
    split = {k: statistics.median(s[k] for s in splits) for k in splits[0]}
    result = {"cpu": cpu_description(), "repeats": args.repeats, "median_seconds": medians, "predict_split": split}
    write_text(OUT / "startup_speed.json", json.dumps(result, indent=1))
    md = [f"`python -m benchmarks.startup_speed` on {cpu_description()}: fresh processes, median of "
          f"{args.repeats}.", "", "| command | seconds |", "|---|---|"]
    md += [f"| `{k}` | {v:.2f} |" for k, v in medians.items()]
    md += ["", "One photo, split (one fresh process):", "", "| step | seconds |", "|---|---|"]
    md += [f"| {k} | {v:.2f} |" for k, v in split.items()]
    write_text(OUT / "startup_speed.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
