"""Write the tiny bundle the tests use (tests/data/tiny_bundle/): five views with 4-d latents and
narrow networks, random heads and attribute vectors, in the shipped bundle's format.

Its weights are random and it predicts nothing: it exists so that tests of plumbing (the
transformer's scikit-learn checks, the predictor, the CLI, the server) do not each load the 40 MB
shipped bundle. Tests of what the shipped weights do use pretrained/.

    python scripts/make_tiny_bundle.py            # rewrites tests/data/tiny_bundle/
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import torch

from faceattr.data.attributes import ATTRIBUTE_NAMES
from faceattr.inference.bundle import BUNDLE_FORMAT, PREPROCESSING, Bundle, sha256_file
from faceattr.nn.checkpoint import save_view
from faceattr.nn.config import ModelConfig
from faceattr.nn.models import VAE
from faceattr.nn.taps import LAYER_NAMES

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "tiny_bundle"
LATENT_DIM = 4
SEED = 0


def tiny_config(layer: str) -> ModelConfig:
    return ModelConfig(latent_dim=LATENT_DIM, encoder_widths=(4, 4, 8, 8), decoder_widths=(8, 4, 4),
                       critic_widths=(4, 4, 8, 8), critic_input_layer=layer, layers=(layer,))


def write_tiny_bundle(out: Path) -> Bundle:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    torch.manual_seed(SEED)
    views = {}
    for layer in LAYER_NAMES:
        cfg = tiny_config(layer)
        path = out / f"view_{layer}.pt"
        save_view(VAE(cfg).eval(), path, meta={"data": "none: random weights, for tests only"})
        views[layer] = {"file": path.name, "sha256": sha256_file(path), "model_config": cfg.to_dict(),
                        "data": "none: random weights, for tests only"}
    bundle = Bundle(out, {"format": BUNDLE_FORMAT, "preprocessing": PREPROCESSING, "views": views,
                          "licence": "test fixture, random weights"})
    bundle.save_manifest()
    rng = np.random.default_rng(SEED)
    k, d = len(ATTRIBUTE_NAMES), LATENT_DIM * len(LAYER_NAMES)
    bundle.put_arrays("heads", {"weight": rng.normal(size=(k, d)).astype(np.float32),
                                "bias": rng.normal(size=k).astype(np.float32),
                                "platt_a": np.ones(k, np.float32), "platt_b": np.zeros(k, np.float32)},
                      views=list(LAYER_NAMES), kind="random, for tests only")
    bundle.put_arrays("attribute_vectors", {v: rng.normal(size=(k, LATENT_DIM)).astype(np.float32)
                                            for v in LAYER_NAMES}, data="random, for tests only")
    return bundle


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    print(write_tiny_bundle(ap.parse_args().out).root)
