"""Training refuses values that would spoil a run before it starts, and says where a diverged one
can go on from."""
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from faceattr.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


# ---- training floats ----------------------------------------------------------------------
@pytest.mark.parametrize("option,value", [("--lr", "inf"), ("--rec-weight", "inf"), ("--lr-decay", "nan"),
                                          ("--kl-weight", "-inf")])
def test_train_refuses_non_finite_floats_up_front(runner, tmp_path, option, value):
    r = runner.invoke(main, ["train", "--root", str(tmp_path), "--out", str(tmp_path / "run"), option, value])
    assert r.exit_code == 2 and "not a finite number" in r.output, r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("field", ["lr", "alpha", "beta", "lr_decay", "clip"])
def test_train_config_refuses_non_finite_values(field):
    from faceattr.nn.config import TrainConfig
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: float("nan")})


def test_a_diverged_run_stops_with_step_term_and_checkpoint(tmp_path, tiny_cfg, random_vgg, monkeypatch):
    import torch
    from faceattr.nn.config import TrainConfig
    from faceattr.errors import NonFiniteLoss
    from faceattr.train import Runtime, Trainer
    images = np.random.default_rng(0).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    t = Trainer(tiny_cfg, TrainConfig(batch_size=16, reference_images=16, log_every=1, checkpoint_every=2),
                images, tmp_path, random_vgg, Runtime("cpu", "float32", progress=False))
    real = t.train_step

    def blows_up_at_step_3(x, idx=None):
        m = real(x, idx)
        return {**m, "rec": torch.tensor(float("inf"))} if t.step == 2 else m
    monkeypatch.setattr(t, "train_step", blows_up_at_step_3)
    with pytest.raises(NonFiniteLoss) as e:
        t.fit()
    message = str(e.value)
    assert "\n" not in message and "step 3" in message and "rec = inf" in message
    assert str(tmp_path / "checkpoint.pt") in message and "(step 2)" in message



def test_a_truncated_checkpoint_message_ends_at_a_sentence(tmp_path):
    import torch
    from faceattr.nn.checkpoint import load
    torch.save({"a": torch.zeros(1000)}, tmp_path / "c.pt")
    (tmp_path / "t.pt").write_bytes((tmp_path / "c.pt").read_bytes()[:3000])
    with pytest.raises(ValueError) as e:
        load(tmp_path / "t.pt")
    assert str(e.value).endswith(")") and "truncated or corrupted" in str(e.value)
    assert "This is an internal" not in str(e.value)
