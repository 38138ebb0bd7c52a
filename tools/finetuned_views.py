"""Bundle view files from ``faceattr train --init pretrained:VIEW`` runs, for build_pretrained.

    python -m tools.finetuned_views relu4_1=RUN_DIR [relu5_1=RUN_DIR ...] --out VIEWS
    python -m tools.build_pretrained --views-from VIEWS

Each RUN_DIR (or its view.pt) must have started from the bundle's view of that layer (its
``init_sha256``); it is written as float16 with its history: steps counting both trainings,
``fine_tune`` (its steps, epochs, seconds from its metrics log and the machine it trained on;
its settings stay in ``train_config``) and
``fine_tuned_from`` (the bundle view's own record, nested). The other views are copied unchanged.
The recipe study's arms go through ``experiments/recipe_multiview.py --write-views`` instead.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.device import cpu_description
from faceattr.inference.bundle import Bundle, BundleError
from tools.view_files import write_view_set
from faceattr.nn.taps import LAYER_NAMES


def logged_seconds(run_dir: Path) -> float | None:
    """Training time from a run's metrics.jsonl: each logged record covers the images since the
    previous one at its ``images_per_s`` (checkpoint writes between records included)."""
    log = run_dir / "metrics.jsonl"
    if not log.is_file():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    start = next((r for r in records if r.get("event") == "start"), None)
    if start is None:
        return None
    batch, seconds, last_step = start["train_config"]["batch_size"], 0.0, 0
    for r in records:
        if "images_per_s" in r:
            seconds += (r["step"] - last_step) * batch / r["images_per_s"]
            last_step = r["step"]
    return round(seconds, 1)


def parse_runs(pairs: list[str]) -> dict[str, Path]:
    runs = {}
    for pair in pairs:
        view, sep, path = pair.partition("=")
        if not sep or view not in LAYER_NAMES:
            raise SystemExit(f"{pair}: expected VIEW=RUN_DIR with VIEW one of {', '.join(LAYER_NAMES)}")
        p = Path(path).expanduser()
        p = p / "view.pt" if p.is_dir() else p
        if not p.is_file():
            raise SystemExit(f"{pair}: {p} not found (a finished run's folder holds view.pt)")
        runs[view] = p
    return runs


def write_views(runs: dict[str, Path], bundle: Bundle, out: Path, faces, device: str,
                run: str = "faceattr train") -> dict:
    fine_tuned = {v: (src, {"run": run, "device": device, "seconds": logged_seconds(src.parent)})
                  for v, src in runs.items()}
    try:
        metas = write_view_set(bundle, out, fine_tuned, faces)
    except BundleError as e:
        raise SystemExit(str(e)) from None
    for v, new in metas.items():
        print(f"{out / f'view_{v}.pt'}: {new['fine_tune']['steps']} more steps ({new['steps']} in all), "
              f"float16 moves latents by <= {new['float16_storage_max_latent_change']}")
    return metas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="VIEW=RUN_DIR")
    ap.add_argument("--out", required=True, help="folder for the five view files")
    add_root_argument(ap, help="val faces for the float16 check")
    ap.add_argument("--weights", default=None, help="the bundle the runs started from (default: the installed one)")
    ap.add_argument("--trained-on", default=cpu_description(),
                    help="the machine the runs trained on, for their record [default: this one]")
    ap.add_argument("--run", default="faceattr train",
                    help="what trained them, for their record (tools/train_views_gpu.py for a GPU run)")
    args = ap.parse_args()
    runs = parse_runs(args.runs)
    faces = CelebA.load(args.root, "val").crops()[:1024]
    write_views(runs, Bundle.load(args.weights), Path(args.out), faces, args.trained_on, args.run)


if __name__ == "__main__":
    main()
