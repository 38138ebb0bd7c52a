"""The README's figures come from the committed results files, and docs/cli.md from --help
(issue 29): a stale number or a changed option fails here."""
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = (REPO / "README.md").read_text()


def _json(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def with_interval(rep: dict, metric: str) -> str:
    lo, hi = rep["intervals"][metric]
    return f"{pct(rep[metric])} [{100 * lo:.2f}, {100 * hi:.2f}]"


def expected_accuracy_figures() -> dict[str, str]:
    shipped = _json("celeba-mini-pretrained-heads/results.json")
    fitted = _json("celeba-mini-fitted-heads/results.json")
    balanced = shipped["decision_rules"]["balanced"]
    base, view = shipped["baselines"], fitted["baselines"]["view relu4_1"]
    photo = _json("photo_accuracy.json")["arms"]
    rows = {"multi-view": shipped, "balanced rule": balanced, "relu4_1": view, "vgg19": base["vgg19"],
            "pixels": base["pixels 32x32"], "majority": base["majority"]}
    out = {f"{k} {m}": with_interval(r, m) for k, r in rows.items() for m in ("mean_accuracy", "mean_balanced_accuracy")
           if k != "majority" or m == "mean_accuracy"}
    return {**out,
            "paper": f"{shipped['paper_table1']['VAE-WGAN (paper)']['Average']:.2f}%",
            "photo path": pct(photo["photo, 5 points"]["mean_accuracy"]) + " against " + pct(photo["celeba crop"]["mean_accuracy"])}


def expected_speed_figures() -> dict[str, str]:
    photo = _json("photo_speed.json")["sets"]
    small, big = photo["celeba 178x218"], photo["photos 4000x3000, 3 faces"]
    start = _json("startup_speed.json")
    serve = _json("serve_load.json")
    page = _json("page_speed.json")
    return {"batched": f"{small['photos_per_s']['batched']:.1f} against {small['photos_per_s']['one_at_a_time']:.1f} "
                       f"photos/s ({small['speedup']:.1f}x)",
            "encoder only": f"encoding alone runs at {small['photos_per_s']['encoder_only']:.0f}",
            "big photos": f"{big['photos_per_s']['batched']:.2f} against {big['photos_per_s']['one_at_a_time']:.2f} "
                          f"({big['speedup']:.1f}x)",
            "help": f"`faceattr --help` {start['median_seconds']['faceattr --help']:.2f} s",
            "predict": f"one photo {start['median_seconds']['faceattr predict examples/astronaut.png']:.2f} s",
            "torch": f"importing torch {start['predict_split']['import torch']:.2f} s",
            "serve": f"{serve['one_client']['requests_per_s']:.1f} requests/s with 1 client, "
                     f"{serve['concurrent']['requests_per_s']:.1f} with 16: {100 * serve['concurrent_over_in_process']:.0f}%",
            "page upload": f"{1000 * page['upload_to_bars_s']:.0f} ms",
            "page slider": f"{1000 * page['slider_step_s']:.0f} ms"}


@pytest.mark.parametrize("kind", ["accuracy", "speed"])
def test_every_readme_figure_is_the_committed_result(kind):
    figures = expected_accuracy_figures() if kind == "accuracy" else expected_speed_figures()
    missing = {k: v for k, v in figures.items() if v not in README}
    assert not missing, f"README figures differ from benchmarks/results: {missing}"


def test_the_cli_reference_is_the_commands_help():
    sys.path.insert(0, str(REPO / "scripts"))
    from cli_reference import OUT, reference
    assert OUT.read_text() == reference(), "docs/cli.md is stale: run python scripts/cli_reference.py"


def test_the_readme_is_for_users():
    lines = README.splitlines()
    assert len(lines) <= 240, len(lines)
    for word in ("session", "round ", "H200", "../shared"):
        assert word not in README, word
    for section in ("## Install", "## Quick start", "## Commands", "## Get the data", "## Accuracy", "## Speed",
                    "## Serving", "## Training your own views", "## The generative side", "## Citation", "## Licence"):
        assert section in README, section
    assert "non-commercial" in "\n".join(lines[:15])  # the weights' licence up front
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
