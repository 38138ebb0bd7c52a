"""What a resumed run must share with the run it continues, checked before any of its state is
loaded: the architecture, the hyperparameters that shaped the weights, the data and the loss terms."""
from __future__ import annotations

from ..errors import InputError
from ..nn.config import ModelConfig, TrainConfig

# TrainConfig fields a resumed run must share with the run it continues. epochs may grow (train
# longer); the logging and checkpoint cadence may change.
RESUME_MUST_MATCH = ("batch_size", "lr", "lr_decay", "alpha", "beta", "gan_label", "clip", "rec_balance",
                     "reference_images", "seed", "max_images", "epoch_images", "augment", "init",
                     "extra_share", "extra_faces_count", "extra_faces_sha256")


def check_resumable(where, obj: dict, model_cfg: ModelConfig, cfg: TrainConfig, data: str | None,
                    terms: dict) -> None:
    """Refuse (naming the value) a checkpoint ``obj`` at ``where`` that another run wrote."""
    saved = ModelConfig.from_dict(obj["model_config"])
    if saved != model_cfg:
        raise InputError(f"{where}: checkpoint was trained with {saved}, not {model_cfg}")
    old_raw = obj["train_config"]
    # A run of an older faceattr may carry options it no longer has (a study's weight, since moved
    # to experiments/ as a loss term): at their default (0, None) they changed nothing.
    gone = {k: v for k, v in old_raw.items() if k not in cfg.to_dict() and k != "reference" and v}
    if gone:
        key, value = next(iter(gone.items()))
        raise InputError(f"{where}: the run was started with {key}={value!r}, an option this faceattr no longer "
                         f"has (studies are loss terms in experiments/ now); resume it from the study's script")
    old, new = TrainConfig.from_dict(old_raw).to_dict(), cfg.to_dict()
    for name in RESUME_MUST_MATCH:
        if old.get(name) != new.get(name):
            raise InputError(f"{where}: the run was started with {name}={old.get(name)!r}, not {new.get(name)!r}; "
                             f"resume with the same value, or start a new run in another --out")
    if obj.get("data") is not None and data is not None and obj["data"] != data:
        raise InputError(f"{where}: the run was started on {obj['data']}, not {data}; "
                         f"resume with the same --root and --max-images")
    if obj.get("terms", {}) != terms:
        raise InputError(f"{where}: the run was started with loss terms {obj.get('terms', {})!r}, not {terms!r}; "
                         f"resume with the same terms")
