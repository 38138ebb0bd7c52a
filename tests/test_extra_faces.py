"""More faces for the views (issue 31): unlabeled faces mixed into the batches, recorded and checked
on resume; and the generalisation measure (held-out / train reconstruction error)."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.nn.config import TrainConfig
from faceattr.train import FaceFeed, Runtime, Trainer

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


def _faces(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 64, 64, 3), dtype=np.uint8)


def _trainer(out, tiny_cfg, vgg, main, extra=None, held_out=None, **kw):
    cfg = TrainConfig(**{"epochs": 1, "batch_size": 8, "log_every": 1, "checkpoint_every": 100, **kw})
    return Trainer(tiny_cfg, cfg, FaceFeed(main, extra, held_out), out, vgg, Runtime("cpu", "float32", progress=False))


def test_each_batch_takes_its_share_of_extra_faces(tmp_path, tiny_cfg, random_vgg):
    t = _trainer(tmp_path, tiny_cfg, random_vgg, _faces(40, 0), _faces(24, 1), extra_faces="x", extra_share=0.25,
                 epoch_images=64)
    order = t.feed.order(0).view(-1, 8)
    assert ((order >= 40).sum(1) == 2).all()  # 2 of each 8 from the 24 extra faces (indices 40..63)
    assert len(set(order[order < 40].tolist())) == 40  # the labelled faces in reshuffled passes
    proportional = _trainer(tmp_path / "p", tiny_cfg, random_vgg, _faces(40, 0), _faces(24, 1), extra_faces="x")
    assert sorted(proportional.feed.order(0).tolist()) == list(range(64))  # one pool, one pass
    plain = _trainer(tmp_path / "n", tiny_cfg, random_vgg, _faces(40, 0))
    assert len(plain.images) == 40 and plain.feed.order(0).max() < 40


def test_a_folder_of_crops_and_photos_becomes_faces_named_by_its_file_list(tmp_path):
    from faceattr.data.extra_faces import load_extra_faces
    folder = tmp_path / "faces"
    folder.mkdir()
    for i, face in enumerate(_faces(3, 2)):
        Image.fromarray(face).save(folder / f"crop{i}.png")
    Image.open(PHOTO).save(folder / "photo.jpg")  # detected and aligned: its one face
    (folder / "notes.jpg").write_text("not an image")  # left out
    faces, record = load_extra_faces(folder, use_cache=False)
    assert faces.shape == (4, 64, 64, 3) and record["count"] == 4 and record["source"] == "faces"
    Image.fromarray(_faces(1, 3)[0]).save(folder / "crop9.png")
    assert load_extra_faces(folder, use_cache=False)[1]["sha256"] != record["sha256"]
    with pytest.raises(ValueError, match="not a folder"):
        load_extra_faces(folder / "crop0.png")


def test_a_resume_with_other_extra_faces_is_refused(tmp_path, tiny_cfg, random_vgg):
    kw = dict(extra_faces="x", extra_share=0.25, extra_faces_count=24, extra_faces_sha256="a" * 64)
    _trainer(tmp_path, tiny_cfg, random_vgg, _faces(40, 0), _faces(24, 1), **kw).fit()
    other = _trainer(tmp_path, tiny_cfg, random_vgg, _faces(40, 0), _faces(24, 1), **{**kw, "extra_faces_sha256": "b" * 64})
    with pytest.raises(ValueError, match="extra_faces_sha256"):
        other.fit(resume=True)
    with pytest.raises(ValueError, match="extra_share needs extra_faces"):
        TrainConfig(extra_share=0.5)


def test_every_epoch_end_measures_held_out_against_train_faces(tmp_path, tiny_cfg, random_vgg):
    t = _trainer(tmp_path, tiny_cfg, random_vgg, _faces(32, 0), held_out=_faces(16, 5), epochs=2)
    t.fit()
    ends = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()
            if json.loads(l).get("event") == "epoch_end"]
    assert len(ends) == 2
    for e in ends:
        g = e["generalisation"]
        assert g["faces"] == [16, 16] and np.isfinite(g["rec_ratio"]) and g["rec_ratio"] > 0
        assert g["rec_ratio"] == pytest.approx(g["held_out_rec"] / g["train_rec"])


def test_train_takes_extra_faces_on_the_command_line(tmp_path):
    from click.testing import CliRunner
    from faceattr.cli import main
    r = CliRunner().invoke(main, ["train", "--root", str(tmp_path), "--extra-share", "0.5", "--out", str(tmp_path / "r")])
    assert r.exit_code != 0
    assert "--extra-faces" in CliRunner().invoke(main, ["train", "--help"]).output


def test_the_study_fine_tunes_with_each_shipped_views_own_loss_weights():
    """The comparison's arms continue the recipe the view was trained with (a fine-tune with
    TrainConfig's default beta of 0.5 lost reconstruction even without extra faces)."""
    from experiments.extra_faces_study import BATCH, shipped_recipe
    from faceattr.inference.bundle import Bundle
    bundle = Bundle.load()
    for view in ("relu1_1", "relu5_1"):
        shipped = bundle.view_entry(view)["train_config"]
        recipe = shipped_recipe(bundle, view)
        assert {k: recipe[k] for k in ("alpha", "beta", "gan_label")} == {k: shipped[k] for k in ("alpha", "beta", "gan_label")}
        assert recipe["lr"] == pytest.approx(shipped["lr"] * BATCH / shipped["batch_size"])
        TrainConfig(**recipe)  # a valid config
