"""Peak memory and time of ``faceattr predict`` on one 48-megapixel photo: detection on the
640-px copy (the default) against detection at full resolution (the former path).

    python -m benchmarks.large_photo_memory

The photo (8000x6000 JPEG, quality 90) is ``examples/astronaut.png`` enlarged to 6000x6000 on a
grey canvas, made in a temporary folder. Each run is its own process; peak RSS is its VmHWM.
Writes benchmarks/results/large_photo_memory.json and .md with the CPU named.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from faceattr.atomic import write_text
from faceattr.device import cpu_description, machine_description

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results"


def run(photo: Path, detect_size: int) -> dict:
    code = ("import resource, sys, json\n"
            "from click.testing import CliRunner\nfrom faceattr.cli import main\n"
            f"r = CliRunner().invoke(main, ['predict', {str(photo)!r}, '--format', 'json', '--detect-size', '{detect_size}'])\n"
            "rec = json.loads(r.stdout)[0]\n"
            "print(json.dumps({'faces': len(rec['faces']), 'box': rec['faces'][0]['box'] if rec['faces'] else None,"
            " 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo_48mp.jpg"
        face = Image.open(REPO / "examples" / "astronaut.png").convert("RGB").resize((6000, 6000), Image.BICUBIC)
        canvas = Image.new("RGB", (8000, 6000), (90, 90, 90))
        canvas.paste(face, (1000, 0))
        canvas.save(photo, quality=90)
        res = {"machine": machine_description(), "photo": "8000x6000 JPEG",
               "detect_640": run(photo, 640), "full_resolution": run(photo, 100_000)}
    write_text(OUT / "large_photo_memory.json", json.dumps(res, indent=1))
    md = [f"`python -m benchmarks.large_photo_memory` on {cpu_description()}: `faceattr predict` on one "
          "8000x6000 (48 MP) JPEG with one face, each run its own process (peak RSS includes torch and the "
          "models).", "", "| detection on | seconds | peak RSS MB | box |", "|---|---|---|---|"]
    for name, key in (("a 640-px copy (default)", "detect_640"), ("the full photo (before)", "full_resolution")):
        r = res[key]
        md.append(f"| {name} | {r['seconds']} | {r['peak_rss_mb']:.0f} | {[round(v) for v in r['box']]} |")
    write_text(OUT / "large_photo_memory.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
