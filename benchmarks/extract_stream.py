"""``faceattr extract`` over a whole folder of photos in flat memory, killed part-way and resumed.

    python -m benchmarks.extract_stream --root CELEBA_MINI

Runs ``faceattr extract`` (face detection on, as for photos) over the first ``--small`` images of
the folder and then over all of them, reporting each run's peak RSS: memory that stays flat while
the inputs grow fourfold is what streaming buys. Then a run over all images is killed (SIGKILL)
once ``--kill-after`` part files exist, the parts are read back, and ``--resume`` completes it; the
result must hold every input with a face exactly once. Writes benchmarks/results/extract_stream.json
and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from faceattr.atomic import write_text
from faceattr.device import cpu_description, machine_description
from faceattr.data.celeba import add_root_argument

OUT = Path(__file__).resolve().parent / "results"


def run(args: list[str], kill_when=None, parts: Path | None = None) -> dict:
    """Run ``faceattr extract ARGS`` and poll its RSS; kill it when ``kill_when()`` holds. With
    ``parts`` (the OUT.parts folder), also the RSS each time a new part file appears."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "faceattr.cli", "extract", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0
    killed = False
    rss_by_parts: list[tuple[int, float]] = []
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
                if line.startswith("VmRSS:") and parts is not None:
                    n = len(list(parts.glob("part-*")))
                    if n and (not rss_by_parts or rss_by_parts[-1][0] != n):
                        rss_by_parts.append((n, round(int(line.split()[1]) / 1024, 1)))
        except OSError:
            pass
        if kill_when is not None and kill_when():
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.2)
    out, _ = proc.communicate()
    return {"seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(peak / 1024, 1),
            "killed": killed, "stdout": out.strip()[-300:], "rss_mb_by_parts": rss_by_parts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--small", type=int, default=4000)
    ap.add_argument("--all", type=int, default=None, help="use only the first N images as 'all' (default: every one)")
    ap.add_argument("--kill-after", type=int, default=20, help="part files written before the kill")
    args = ap.parse_args()
    images = sorted((Path(args.root) / "img_align_celeba").glob("*.jpg"))[: args.all]
    res = {"machine": machine_description(), "inputs_all": len(images), "inputs_small": args.small}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folders = {}
        for label, n in (("small", args.small), ("all", len(images))):
            folders[label] = tmp / label
            folders[label].mkdir()
            for p in images[:n]:
                (folders[label] / p.name).symlink_to(p.resolve())
        res["small"] = run([str(folders["small"]), "--out", str(tmp / "small.parquet")])
        res["all"] = run([str(folders["all"]), "--out", str(tmp / "all.parquet")], parts=tmp / "all.parquet.parts")
        full = pd.read_parquet(tmp / "all.parquet", columns=["file", "face"])
        out = tmp / "killed.parquet"
        parts = tmp / "killed.parquet.parts"
        res["killed"] = run([str(folders["all"]), "--out", str(out)],
                            kill_when=lambda: len(list(parts.glob("part-*.parquet"))) >= args.kill_after)
        written = pd.read_parquet(parts, columns=["file", "face"])
        res["killed"]["rows_readable_after_kill"] = len(written)
        res["resumed"] = run([str(folders["all"]), "--out", str(out), "--resume"])
        done = pd.read_parquet(out, columns=["file", "face"])
        res["resumed"]["rows"] = len(done)
        res["resumed"]["same_rows_as_uninterrupted"] = bool(
            sorted(map(tuple, done.to_numpy().tolist())) == sorted(map(tuple, full.to_numpy().tolist())))
        res["all"]["rows"] = len(full)
    write_text(OUT / "extract_stream.json", json.dumps(res, indent=1))
    cmd = "python -m benchmarks.extract_stream" + (f" --small {args.small} --all {args.all} --kill-after "
                                                   f"{args.kill_after}" if args.all else "")
    md = [f"`{cmd}` on {cpu_description()}: `faceattr extract` with face "
          "detection over celeba-mini's images as photos, parquet output, 256 inputs per part.", "",
          "| run | inputs | seconds | peak RSS MB | rows |", "|---|---|---|---|---|",
          f"| first {args.small:,} images | {args.small:,} | {res['small']['seconds']} | {res['small']['peak_rss_mb']} | |",
          f"| first {len(images):,} images | {len(images):,} | {res['all']['seconds']} | {res['all']['peak_rss_mb']} | {res['all']['rows']:,} |",
          f"| the same, killed after {args.kill_after} parts | {len(images):,} | {res['killed']['seconds']} | "
          f"{res['killed']['peak_rss_mb']} | {res['killed']['rows_readable_after_kill']:,} readable in the parts |",
          f"| then `--resume` | {len(images):,} | {res['resumed']['seconds']} | {res['resumed']['peak_rss_mb']} | "
          f"{res['resumed']['rows']:,} (same rows as the uninterrupted run: {res['resumed']['same_rows_as_uninterrupted']}) |"]
    by_parts = res["all"]["rss_mb_by_parts"]
    if by_parts:
        picks = sorted({by_parts[min(len(by_parts) - 1, round(q * (len(by_parts) - 1)))] for q in (0, .1, .25, .5, .75, 1)})
        md += ["", f"RSS (MB) of the {len(images):,}-image run as its part files (256 inputs each) appeared:", "",
               "| parts written | " + " | ".join(str(n) for n, _ in picks) + " |",
               "|---|" + "---|" * len(picks),
               "| RSS MB | " + " | ".join(f"{r:,.0f}" for _, r in picks) + " |"]
    write_text(OUT / "extract_stream.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
