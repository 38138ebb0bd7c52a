"""Scoring cached features in numpy instead of torch (issue 43's run-time lever): how far the
scores move from LinearHeads' and how many decisions change, on the shipped heads and a split's
cached features.

    python -m experiments.numpy_scoring_trial --root CELEBA_MINI

Prints the largest score difference and, per decision rule, the (face, attribute) decisions that
differ. Not shipped: the benchmark and predict would score in two ways.
"""
from __future__ import annotations

import argparse

import numpy as np

from faceattr.data.celeba import CelebA, add_root_argument
from faceattr.inference.bundle import Bundle
from faceattr.inference.feature_cache import FeatureCache
from faceattr.inference.heads import decision_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_root_argument(ap)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    bundle = Bundle.load()
    heads = bundle.heads()
    x = FeatureCache(bundle, bundle.views, "cpu").features(CelebA.load(args.root, args.split))
    torch_scores = decision_scores(heads, x)
    numpy_scores = np.asarray(x, np.float32) @ heads["weight"].astype(np.float32).T + heads["bias"].astype(np.float32)
    print(f"largest score difference: {np.abs(torch_scores - numpy_scores).max():.2g}")
    rules = {"accuracy": np.zeros(torch_scores.shape[1], np.float32)}
    rules.update({k[len("threshold_"):]: v for k, v in heads.items() if k.startswith("threshold_")})
    for rule, t in rules.items():
        print(f"{rule}: {int(((torch_scores > t) != (numpy_scores > t)).sum())} decisions differ")


if __name__ == "__main__":
    main()
