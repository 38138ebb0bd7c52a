"""The committed benchmark: `faceattr benchmark celeba` on celeba-mini's test split, with the shipped
heads (and the report by Male and Young) and with heads fitted on its train split (C on val), plus
every baseline.

    python -m benchmarks.celeba_mini --root CELEBA_MINI

Writes benchmarks/results/celeba-mini.md and the two result folders beside it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from faceattr.atomic import write_text
from faceattr.benchmark import BenchmarkConfig, markdown_table, run_benchmark, summary_text
from faceattr.data.celeba import add_root_argument

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    add_root_argument(ap)
    args = ap.parse_args()
    shipped = run_benchmark(args.root, "test", BenchmarkConfig("pretrained", baselines=("majority", "pixels", "vgg19"),
                                                                     by="Male,Young"),
                            RESULTS / "celeba-mini-pretrained-heads", overwrite=True)
    fitted = run_benchmark(args.root, "test", BenchmarkConfig("fit", baselines=("majority", "pca", "views", "hidden")),
                           RESULTS / "celeba-mini-fitted-heads", overwrite=True)
    text = ["# faceattr on celeba-mini (test split)", "",
            "Produced by `python -m benchmarks.celeba_mini --root CELEBA_MINI`, i.e. "
            "`faceattr benchmark celeba --root CELEBA_MINI` with `--heads pretrained "
            "--baselines majority,pixels,vgg19 --by Male,Young` and with `--heads fit --baselines majority,pca,views,hidden`. "
            "Every row: 40 linear SVMs fitted on train, C per attribute chosen on val.", "",
            "## Shipped heads", "", "```", summary_text(shipped), "```", "",
            "## Heads fitted on celeba-mini's train split (C chosen on val), with baselines", "", "```",
            summary_text(fitted), "```", "", "## Side by side with the paper's Table 1", "",
            markdown_table(fitted), "",
            f"Throughput (shipped-heads run): {shipped['throughput']}"]
    write_text(RESULTS / "celeba-mini.md", "\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
