"""The second fault audit (issue 25): one test per defect found, each failing on the code before
the fix. Extract's writer (locks, kills, resume) has its own file, tests/test_extract_safety.py."""
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from faceattr.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def predictor():
    from faceattr.inference.predictor import AttributePredictor
    return AttributePredictor()


# ---- 1, 3, 4: --annotate ----------------------------------------------------------------------
def test_1_annotating_into_the_input_folder_replaces_nothing(runner, tmp_path):
    Image.open(PHOTO).save(tmp_path / "face.png")
    Image.open(PHOTO).convert("RGB").transpose(Image.FLIP_LEFT_RIGHT).save(tmp_path / "face.jpg")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = runner.invoke(main, ["predict", str(tmp_path), "--annotate", str(tmp_path), "--format", "json"])
    assert r.exit_code == 0, r.output
    for name, data in before.items():
        assert (tmp_path / name).read_bytes() == data, f"{name} was overwritten"
    made = sorted(p.name for p in tmp_path.iterdir() if p.name not in before)
    assert made == ["face.jpg.annotated.png", "face.png.annotated.png"]
    # A second run does not replace the first run's annotations: each is that input's error.
    first = {n: (tmp_path / n).read_bytes() for n in made}
    r = runner.invoke(main, ["predict", str(tmp_path / "face.png"), "--annotate", str(tmp_path)])
    assert r.exit_code == 1 and "already exists; not overwritten" in r.output
    assert {n: (tmp_path / n).read_bytes() for n in made} == first


def test_3_unwritable_annotate_folder_is_refused_before_the_models_load(runner, monkeypatch):
    import faceattr.inference.predictor as predictor_mod

    def no_models(*a, **k):
        raise AssertionError("the models were loaded before --annotate was checked")
    monkeypatch.setattr(predictor_mod.AttributePredictor, "__init__", no_models)
    r = runner.invoke(main, ["predict", str(PHOTO), "--annotate", "/proc/faceattr-annotations", "--format", "json"])
    assert r.exit_code == 1 and "cannot write here" in r.output and "/proc" in r.output
    assert "[" not in r.stdout


def test_4_an_input_that_vanishes_before_annotation_is_still_drawn(predictor, tmp_path, monkeypatch):
    import faceattr.faces.finder as pipeline_mod
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    shutil.copy(PHOTO, a)
    shutil.copy(PHOTO, b)
    real = pipeline_mod.prepare_many

    def prepare_then_delete(items, *args, **kw):
        out = real(items, *args, **kw)
        for item in items:
            Path(item).unlink()  # gone after detection
        return out
    monkeypatch.setattr(pipeline_mod, "prepare_many", prepare_then_delete)
    records = list(predictor.iter_records([str(a), str(b)], annotate_dir=tmp_path / "ann"))
    assert [r["error"] for r in records] == [None, None]
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["a.png.annotated.png", "b.png.annotated.png"]


def test_4_a_late_annotation_failure_is_that_inputs_error(predictor, tmp_path, monkeypatch):
    import faceattr.inference.annotate as annotate_mod
    real = annotate_mod.save_annotated

    def fail_for_b(img, record, folder, used, scale=1.0):
        if record["file"].endswith("b.png"):
            raise OSError(28, "No space left on device")
        return real(img, record, folder, used, scale=scale)
    monkeypatch.setattr(annotate_mod, "save_annotated", fail_for_b)
    for n in ("a.png", "b.png"):
        shutil.copy(PHOTO, tmp_path / n)
    records = list(predictor.iter_records([str(tmp_path / "a.png"), str(tmp_path / "b.png")],
                                          annotate_dir=tmp_path / "ann"))
    assert records[0]["error"] is None and records[0]["faces"]
    assert "annotation not written" in records[1]["error"] and "No space left" in records[1]["error"]


# ---- 6: a video with no frames ------------------------------------------------------------------
def test_6_a_video_stream_with_no_frames_is_that_files_error(runner, tmp_path):
    av = pytest.importorskip("av")
    empty = tmp_path / "empty.avi"  # AVI keeps a stream with no frames (MP4 drops the stream)
    with av.open(str(empty), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()
    with av.open(str(empty)) as check:
        assert len(check.streams.video) == 1
    r = runner.invoke(main, ["predict", str(empty), str(PHOTO), "--format", "json"])
    assert r.exit_code == 1
    records = json.loads(r.stdout)
    assert [rec["file"] for rec in records] == [str(empty), str(PHOTO)]
    assert records[0]["error"] == f"{empty}: the video stream has no frames"
    assert records[1]["error"] is None


# ---- 8 and the nit on strings: predict on features --------------------------------------------
def test_8_a_nan_row_gives_no_decision_and_a_warning_naming_it(predictor):
    from faceattr.inference.predictor import UndecidedWarning
    feats = np.zeros((3, predictor.encoder.n_features), np.float32)
    feats[1] = np.nan
    with pytest.warns(UndecidedWarning, match=r"nobody\.jpg"):
        out = predictor.predict(feats, names=["a.jpg", "nobody.jpg", "c.jpg"])
    assert np.ma.isMaskedArray(out)
    assert out.mask[1].all() and not out.mask[0].any() and not out.mask[2].any()


def test_a_string_array_given_to_predict_is_a_clear_error(predictor):
    with pytest.raises(ValueError, match="features must be numbers"):
        predictor.predict(np.array([["a"] * predictor.encoder.n_features]))


# ---- 11: training floats ----------------------------------------------------------------------
@pytest.mark.parametrize("option,value", [("--lr", "inf"), ("--rec-weight", "inf"), ("--lr-decay", "nan"),
                                          ("--kl-weight", "-inf")])
def test_11_train_refuses_non_finite_floats_up_front(runner, tmp_path, option, value):
    r = runner.invoke(main, ["train", "--root", str(tmp_path), "--out", str(tmp_path / "run"), option, value])
    assert r.exit_code == 2 and "not a finite number" in r.output, r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("field", ["lr", "alpha", "beta", "lr_decay", "clip"])
def test_11_train_config_refuses_non_finite_values(field):
    from faceattr.nn.config import TrainConfig
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: float("nan")})


def test_11_a_diverged_run_stops_with_step_term_and_checkpoint(tmp_path, tiny_cfg, random_vgg, monkeypatch):
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


# ---- 12: what a path really is ----------------------------------------------------------------
def test_12_special_files_get_a_record_that_says_what_they_are(runner, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(PHOTO, d / "good.png")
    (d / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(d / "pipe.png")
    r = runner.invoke(main, ["predict", str(d), "/dev/zero", "--format", "json"])
    errors = {Path(rec["file"]).name: rec["error"] for rec in json.loads(r.stdout)}
    assert errors["good.png"] is None
    assert "broken symbolic link" in errors["gone.jpg"]
    assert "FIFO" in errors["pipe.png"]
    assert "device" in errors["zero"] and "no such file" not in errors["zero"]


def test_12_a_proc_file_is_read_not_called_empty():
    from faceattr.faces.images import ImageError, load_rgb
    with pytest.raises(ImageError) as e:
        load_rgb("/proc/self/status")
    assert "empty" not in str(e.value) and "cannot read as an image" in str(e.value)


# ---- 13: names with newlines ------------------------------------------------------------------
def test_13_a_name_with_a_newline_keeps_tables_and_counts_whole(runner, tmp_path):
    odd = tmp_path / "two\nlines.png"
    shutil.copy(PHOTO, odd)
    r = runner.invoke(main, ["predict", str(odd)])
    assert r.exit_code == 0
    first = r.stdout.splitlines()[0]
    assert "two\\nlines.png" in first and "face 1/1" in first
    out = tmp_path / "f.csv"
    r = runner.invoke(main, ["extract", str(odd), str(PHOTO), "--out", str(out)])
    assert r.exit_code == 0, r.output
    import pandas as pd
    rows = len(pd.read_csv(out))
    assert f"({rows} rows in all)" in r.output and rows == 2


# ---- 14, 15: serve -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app_client():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from faceattr.serve import Batching, Limits, create_app
    from faceattr.faces.options import FaceOptions
    with TestClient(create_app(limits=Limits(max_upload_bytes=200_000)), raise_server_exceptions=False) as client:
        yield client


def test_14_a_pixel_bomb_is_413(app_client, monkeypatch):
    import faceattr.faces.images as images
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    buf = io.BytesIO()
    Image.new("RGB", (400, 400)).save(buf, format="PNG")  # small file, many pixels
    r = app_client.post("/predict", files={"file": ("bomb.png", buf.getvalue())})
    assert r.status_code == 413 and "bomb.png" in r.json()["detail"], r.text


def test_14_pillows_own_decompression_bomb_is_413(app_client, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # Pillow refuses above twice this
    buf = io.BytesIO()
    Image.new("RGB", (200, 200)).save(buf, format="PNG")
    r = app_client.post("/predict", files={"file": ("bomb.png", buf.getvalue())})
    assert r.status_code == 413, r.text


def test_15_no_object_reprs_or_addresses_in_any_detail(app_client):
    bodies = [b"GIF89a not really", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, b"BM" + b"\xff" * 60,
              b"\xff\xd8\xff\xe0" + b"\0" * 30, b"RIFF\0\0\0\0WEBPVP8 ", b"hello"]
    for body in bodies:
        detail = app_client.post("/predict", files={"file": ("x.jpg", body)}).json()["detail"]
        assert not re.search(r"0x[0-9a-fA-F]{6,}|<_io\.|object at", detail), detail
        assert "x.jpg" in detail


# ---- 16: CelebA lists --------------------------------------------------------------------------
def _celeba(tmp_path, attr_extra=(), part_extra=()):
    from conftest import write_celeba_tree
    root = write_celeba_tree(tmp_path, n=4, crlf=False)
    attr = (root / "list_attr_celeba.txt").read_text().splitlines()
    attr += list(attr_extra)
    attr[0] = str(len(attr) - 2)
    (root / "list_attr_celeba.txt").write_text("\n".join(attr) + "\n")
    with open(root / "list_eval_partition.txt", "a") as fh:
        fh.writelines(line + "\n" for line in part_extra)
    return root, attr


def test_16_a_file_listed_twice_in_the_attributes_is_refused_naming_both_lines(tmp_path):
    from faceattr.data.celeba import CelebA
    from faceattr.errors import DatasetError
    root, attr = _celeba(tmp_path)
    name, values = attr[3].split(" ", 1)
    flipped = " ".join("1" if v == "-1" else "-1" for v in values.split())
    root, _ = _celeba(tmp_path / "b", attr_extra=[f"{name} {flipped}"])
    with pytest.raises(DatasetError, match=r"lines 4 and 7: '000002.jpg' is listed twice, with different labels"):
        CelebA.load(root, "all")


def test_16_an_image_in_two_partitions_is_refused_naming_both_lines(tmp_path):
    from faceattr.data.celeba import CelebA
    from faceattr.errors import DatasetError
    root, _ = _celeba(tmp_path, part_extra=["000001.jpg 2"])
    with pytest.raises(DatasetError, match=r"lines 1 and 5: '000001.jpg' is listed in two partitions"):
        CelebA.load(root, "all")


def test_16_a_listed_name_cannot_point_outside_the_image_folder(tmp_path):
    from faceattr.data.celeba import read_partition
    from faceattr.errors import DatasetError
    p = tmp_path / "list_eval_partition.txt"
    p.write_text("000001.jpg 0\n../../secret.jpg 1\n")
    with pytest.raises(DatasetError, match="line 2: '../../secret.jpg' is not a plain file name"):
        read_partition(p)


# ---- 17: every command handles a bad environment ------------------------------------------------
COMMAND_ARGS = {
    "train": ["--root", "{celeba}", "--out", "{tmp}/run", "--epochs", "1", "--max-images", "16"],
    "predict": [str(PHOTO)],
    "extract": [str(PHOTO), "--out", "{tmp}/f.parquet"],
    "serve": ["--port", "1"],
    "benchmark celeba": ["--root", "{celeba}", "--max-images", "16", "--out", "{tmp}/bench"],
    "cache": [],
    "reconstruct": [str(PHOTO), "--out", "{tmp}/r.png"],
    "sample": ["--out", "{tmp}/s.png"],
    "interpolate": [str(PHOTO), str(PHOTO), "--out", "{tmp}/i.png"],
    "manipulate": [str(PHOTO), "--attribute", "Smiling", "--out", "{tmp}/m.png"],
    "attribute-vectors": ["--root", "{celeba}", "--out", "{tmp}/v.npz", "--max-images", "16"],
    "tsne": ["--root", "{celeba}", "--out", "{tmp}/t.png", "-n", "16"],
    "heads fit": ["--root", "{celeba}", "--out", "{tmp}/b", "--max-images", "16"],
}
BAD_ENV = {"FACEATTR_CACHE_MAX_GB": "abc", "FACEATTR_PRETRAINED": "/nonexistent/faceattr-weights"}


def _all_commands(group, prefix=""):
    import click
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, f"{prefix}{name} ")
        else:
            yield prefix + name


def test_17_the_table_of_commands_covers_every_command():
    assert sorted(_all_commands(main)) == sorted(COMMAND_ARGS)


@pytest.mark.parametrize("command", sorted(COMMAND_ARGS))
def test_17_every_command_gives_a_one_line_error_for_a_bad_environment(command, tmp_path, celeba_root, monkeypatch):
    for k, v in BAD_ENV.items():
        monkeypatch.setenv(k, v)
    args = [a.format(tmp=tmp_path, celeba=celeba_root) for a in COMMAND_ARGS[command]]
    r = CliRunner().invoke(main, command.split() + args)
    assert r.exit_code == 1, (command, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), (command, r.exc_info)
    assert "Traceback" not in r.output
    error = [line for line in r.output.splitlines() if line.startswith("Error: ")]
    assert error and ("FACEATTR_CACHE_MAX_GB" in error[0] or "/nonexistent/faceattr-weights" in error[0]), r.output


def test_17_cache_names_the_bad_value(monkeypatch):
    monkeypatch.setenv("FACEATTR_CACHE_MAX_GB", "abc")
    r = CliRunner().invoke(main, ["cache"])
    assert r.exit_code == 1 and r.output.strip() == (
        "Error: FACEATTR_CACHE_MAX_GB must be a number of gigabytes (0 or more), got 'abc'")


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_17_cache_size_must_be_finite_and_not_negative(value, monkeypatch):
    from faceattr import cache
    monkeypatch.setenv("FACEATTR_CACHE_MAX_GB", value)
    with pytest.raises(ValueError, match="FACEATTR_CACHE_MAX_GB"):
        cache.max_bytes()


# ---- nits --------------------------------------------------------------------------------------
def test_avif_files_in_a_folder_are_read_like_named_ones(tmp_path):
    from faceattr.inference.predictor import collect_inputs
    (tmp_path / "face.avif").write_bytes(b"")
    assert [p.name for p in collect_inputs([tmp_path])[0]] == ["face.avif"]


def test_a_truncated_checkpoint_message_ends_at_a_sentence(tmp_path):
    import torch
    from faceattr.nn.checkpoint import load
    torch.save({"a": torch.zeros(1000)}, tmp_path / "c.pt")
    (tmp_path / "t.pt").write_bytes((tmp_path / "c.pt").read_bytes()[:3000])
    with pytest.raises(ValueError) as e:
        load(tmp_path / "t.pt")
    assert str(e.value).endswith(")") and "truncated or corrupted" in str(e.value)
    assert "This is an internal" not in str(e.value)


def test_an_empty_list_and_an_empty_array_fail_alike_in_transform():
    from faceattr.inference.transformer import MultiViewVAEFeatures
    t = MultiViewVAEFeatures(align="none").fit([np.zeros((64, 64, 3), np.uint8)])
    messages = []
    for empty in ([], np.zeros((0, 64, 64, 3), np.uint8)):
        with pytest.raises(ValueError) as e:
            t.transform(empty)
        messages.append(str(e.value))
    assert all("while a minimum of 1 is required by MultiViewVAEFeatures" in m for m in messages), messages


# ---- serve's other error paths (issue 26, item 7) ----------------------------------------------
def test_the_batchers_failure_reaches_every_waiting_request_and_the_server_goes_on(app_client, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    pipeline = app_client.app.state.service.pipeline
    real = pipeline.encode
    monkeypatch.setattr(pipeline, "encode", lambda faces: (_ for _ in ()).throw(RuntimeError("encoder broke")))
    buf = io.BytesIO()
    Image.open(PHOTO).convert("RGB").resize((256, 256)).save(buf, format="JPEG")  # under the 200 kB limit
    data = buf.getvalue()
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: app_client.post("/predict", files={"file": ("a.jpg", data)}), range(3)))
    assert [r.status_code for r in replies] == [500, 500, 500]
    assert all(r.json()["detail"] == "a.jpg: the attribute model failed on this upload (RuntimeError); "
                                      "the server goes on" for r in replies)
    monkeypatch.setattr(pipeline, "encode", real)
    assert app_client.post("/predict", files={"file": ("a.png", data)}).status_code == 200


def test_a_request_slower_than_the_timeout_gets_504(monkeypatch):
    pytest.importorskip("fastapi")
    import time as _time
    from fastapi.testclient import TestClient
    from faceattr.serve import Batching, Limits, create_app
    from faceattr.faces.options import FaceOptions
    app = create_app(limits=Limits(timeout_s=0.5))
    pipeline = app.state.service.pipeline
    real = pipeline.encode

    def slow(faces):
        _time.sleep(1.5)
        return real(faces)
    monkeypatch.setattr(pipeline, "encode", slow)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post("/predict", files={"file": ("slow.png", PHOTO.read_bytes())})
    assert r.status_code == 504 and r.json()["detail"] == "slow.png: not answered within 0.5 s"


def test_detect_size_reaches_the_transformer_the_server_and_ray_data(monkeypatch):
    """Every entry point takes --detect-size (issue 26): the detector it builds searches the size asked."""
    pytest.importorskip("fastapi")
    from faceattr.inference.transformer import MultiViewVAEFeatures
    from faceattr.inference.ray_data import FaceAttrActor
    from faceattr.serve import Batching, Limits, create_app
    from faceattr.faces.options import FaceOptions
    t = MultiViewVAEFeatures(detect_size=320).fit()
    assert t.get_params()["detect_size"] == 320 and t._get_pipeline().detector().max_side == 320
    assert create_app(faces=FaceOptions(detect_size=320)).state.service.pipeline.detector().max_side == 320
    assert FaceAttrActor(faces=FaceOptions(detect_size=320)).pipeline.detector().max_side == 320
    assert "--detect-size" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_concurrent_uploads_are_detected_in_one_batch(monkeypatch):
    """issue 27: the server batches detection across requests, not only encoding."""
    pytest.importorskip("fastapi")
    from concurrent.futures import ThreadPoolExecutor
    from fastapi.testclient import TestClient
    from faceattr.serve import Batching, Limits, create_app
    from faceattr.faces.options import FaceOptions
    app = create_app(batching=Batching(max_wait_ms=500))
    pipeline, sizes = app.state.service.pipeline, []
    real = pipeline.prepare
    monkeypatch.setattr(pipeline, "prepare", lambda units, *a, **k: sizes.append(len(units)) or real(units, *a, **k))
    data = PHOTO.read_bytes()
    with TestClient(app) as client, ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda i: client.post("/predict", files={"file": (f"{i}.png", data)}), range(4)))
    assert [r.status_code for r in replies] == [200] * 4
    assert [r.json()["file"] for r in replies] == [f"{i}.png" for i in range(4)]
    assert max(sizes) > 1 and sum(sizes) == 4, sizes


def test_a_failing_batch_is_run_again_one_request_at_a_time():
    """MicroBatcher: when the joined batch fails, each request is computed alone, so the error
    reaches only the request whose item caused it."""
    import asyncio
    from faceattr.serve import MicroBatcher

    def run(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [x.upper() for x in items]

    async def go():
        b = MicroBatcher(run, lambda lists: sum(lists, []), lambda out, sl: out[sl], max_items=8, max_wait_ms=50)
        b.start()
        replies = await asyncio.gather(*(b.submit([x]) for x in ("a", "bad", "c")), return_exceptions=True)
        await b.stop()
        return replies
    a, bad, c = asyncio.run(go())
    assert a == ["A"] and c == ["C"] and isinstance(bad, ValueError)
