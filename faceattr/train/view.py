"""``train_view``: one view trained on the train split of a CelebA folder, as ``faceattr train``
runs it; and where a fine-tune starts from (``--init``)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..nn import checkpoint as ckpt
from ..nn.config import ModelConfig, TrainConfig
from .feeding import FaceFeed
from .loop import Trainer, TrainResult
from .measures import GENERALISATION_FACES
from .runtime import Runtime


def train_view(root, out="runs/view", train_config: TrainConfig | None = None, layers=None, *,
               resume: bool = False, overwrite: bool = False, runtime: Runtime = Runtime(),
               vgg_weights=None) -> TrainResult:
    """Train one view on the train split of a CelebA folder: what ``faceattr train`` runs.

    ``layers`` names the reconstruction layers (default relu3_1); with ``train_config.init`` the
    view's architecture comes from the init file, and ``layers``, if given, must match it.
    """
    from ..data.celeba import CelebA
    from ..nn.vgg import load_loss_network
    tcfg = copy.deepcopy(train_config) if train_config is not None else TrainConfig()
    cfg, vae_state = _architecture(tcfg, layers)
    loss_net = load_loss_network(vgg_weights)  # fails early, before any decoding, without weights
    ds = CelebA.load(root, "train", max_images=tcfg.max_images)
    feed = FaceFeed(ds.crops(progress=runtime.progress), _extra_faces(tcfg), held_out_faces(root),
                    f"{ds.root.resolve()} train split, {len(ds)} faces")
    trainer = Trainer(cfg, tcfg, feed, out, loss_net, runtime, vae_state)
    return trainer.fit(resume=resume, overwrite=overwrite)


def _architecture(tcfg: TrainConfig, layers) -> tuple[ModelConfig, dict | None]:
    if tcfg.init is None:
        return ModelConfig(layers=tuple(layers or ("relu3_1",))), None
    cfg, vae_state = load_init(tcfg)
    if layers is not None and tuple(layers) != cfg.layers:
        raise InputError(f"--init {tcfg.init} is a {cfg.name} view, but layers {'+'.join(layers)} "
                         f"were asked for; leave out --layer to take the init's")
    return cfg, vae_state


def _extra_faces(tcfg: TrainConfig) -> np.ndarray | None:
    """The extra faces of ``--extra-faces`` (at most ``--max-images``), recorded in ``tcfg``."""
    if tcfg.extra_faces is None:
        return None
    from ..data.extra_faces import load_extra_faces
    extra, record = load_extra_faces(tcfg.extra_faces, max_faces=tcfg.max_images)
    tcfg.extra_faces_count, tcfg.extra_faces_sha256 = record["count"], record["sha256"]
    return extra


def held_out_faces(root) -> np.ndarray | None:
    """Up to GENERALISATION_FACES val faces for the generalisation measure; None without a val split."""
    from ..data.celeba import CelebA
    try:
        val = CelebA.load(root, "val", max_images=GENERALISATION_FACES)
    except ValueError:
        return None
    return val.crops(progress=False) if len(val) else None


def resolve_init(spec: str) -> tuple[Path, dict]:
    """``pretrained:VIEW`` (the shipped bundle's view) or a view file / checkpoint path ->
    (the file, its loaded contents). The file's sha256 is checked when it comes from a bundle."""
    if spec.startswith("pretrained:"):
        from ..inference.bundle import Bundle
        bundle = Bundle.load()
        path = bundle.file(bundle.view_entry(spec.removeprefix("pretrained:")))
    else:
        path = Path(spec)
    return path, ckpt.load(path)


def load_init(tcfg: TrainConfig) -> tuple[ModelConfig, dict]:
    """The architecture and VAE weights that ``tcfg.init`` names (a view file or a checkpoint),
    recording that file's sha256 in ``tcfg.init_sha256``: the bundling of a fine-tuned view checks
    that it started from the bundle's file."""
    from ..inference.bundle import sha256_file
    path, obj = resolve_init(tcfg.init)
    tcfg.init_sha256 = sha256_file(path)
    return ModelConfig.from_dict(obj["model_config"]), ckpt.vae_state(obj)
