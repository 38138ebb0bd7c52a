"""Heads and their operating points fitted on labelled faces (a CelebA-layout folder), written into
a new bundle: ``faceattr heads fit``."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .heads import decision_scores, fit_linear_heads, operating_point, parse_rule, sign_rule_attributes
from ..errors import OutputExists


def operating_points(heads: dict, features: np.ndarray, labels: np.ndarray, rules) -> dict[str, np.ndarray]:
    """{"threshold_<rule>": (k,)} for each rule, chosen on these features' scores and labels."""
    scores = decision_scores(heads, features)
    return {f"threshold_{rule}": operating_point(scores, labels, rule) for rule in rules}


def _meaning(rule: str) -> str:
    if rule == "balanced":
        return "the best balanced accuracy"
    name, _, target = rule.partition(">=")
    return f"{name} of at least {target}"


def fit_heads_bundle(root, out, weights="pretrained", rules=("balanced",), device=None,
                     max_images: int | None = None) -> Path:
    """A new bundle in ``out`` (which must not exist): the views and attribute vectors of
    ``weights``, copied, and heads fitted on ROOT's train split (C per attribute and Platt
    calibration on val, as the shipped ones) with the operating points of ``rules`` on val."""
    from ..atomic import check_new_folder
    from ..data.celeba import CelebA
    from .bundle import Bundle
    from .feature_cache import FeatureCache
    for rule in rules:  # every check that needs no fitting comes before it
        parse_rule(rule)
    out = check_new_folder(out, "heads fit writes a new bundle folder, never into one")
    src = Bundle.load(weights)
    data = CelebA.load_splits(root, ("train", "val"), max_images=max_images)
    train, val = data["train"], data["val"]
    cache = FeatureCache(src, src.views, device)
    x_train, x_val = cache.features(train), cache.features(val)
    heads = fit_linear_heads(x_train, train.labels, x_val, val.labels)
    heads.update(operating_points(heads, x_val, val.labels, [r for r in rules if r != "balanced"]))
    fallbacks = sign_rule_fallbacks(heads, x_val, val.labels, dict.fromkeys(("balanced", *rules)))
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    tmp.mkdir(parents=True)
    try:
        _write_bundle(src, tmp, heads, train, val, rules, fallbacks)
        if out.exists():  # made while we fitted: the user's, never replaced
            raise OutputExists(f"{out}: appeared while the heads were fitted; left as it is")
        tmp.rename(out)
    except BaseException:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def sign_rule_fallbacks(heads: dict, features: np.ndarray, labels: np.ndarray, rules) -> dict[str, list[str]]:
    """{rule: the attributes whose operating point is really the sign rule} (one class in these
    labels, or no threshold meets the target), for the rules that have any."""
    from ..data.attributes import ATTRIBUTE_NAMES
    scores = decision_scores(heads, features)
    out = {rule: [ATTRIBUTE_NAMES[a] for a in sign_rule_attributes(scores, labels, rule)] for rule in rules}
    return {rule: names for rule, names in out.items() if names}


def _write_bundle(src, folder: Path, heads: dict, train, val, rules, fallbacks: dict) -> None:
    from ..atomic import copy_file
    from .bundle import Bundle
    for entry in list(src.manifest["views"].values()) + [src.manifest.get("attribute_vectors")]:
        if entry:
            copy_file(src.file(entry), folder / entry["file"])
    manifest = {k: v for k, v in src.manifest.items() if k not in ("heads", "metrics")}
    bundle = Bundle(folder, manifest)
    bundle.save_manifest()
    bundle.put_arrays("heads", heads, views=src.views, data=f"{train.root}: train ({len(train):,} faces) fit, "
                      f"val ({len(val):,}) C, calibration and operating points",
                      val_mean_accuracy=round(float(heads["val_accuracy"].mean()), 4),
                      operating_points={"accuracy": "the sign of the SVM score (the paper's rule)",
                                        **{r: f"per attribute, the val threshold that gives {_meaning(r)}"
                                           for r in dict.fromkeys(("balanced", *rules))}},
                      sign_rule_fallback=fallbacks)
