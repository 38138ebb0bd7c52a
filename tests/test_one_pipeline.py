"""One road from inputs to attributes (issue 26): every entry point is a thin user of FacePipeline,
so every input type and option gives the same faces and numbers through each of them."""
import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import features_pipeline, write_clip
from faceattr.cli import main
from faceattr.faces.options import FaceOptions
from faceattr.faces.video import FrameSampling

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
# bfloat16 convolutions round a little differently with a batch's make-up
PROBABILITY_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def predictor():
    from faceattr import AttributePredictor
    return AttributePredictor(faces=FaceOptions(largest_face=True))


def _inputs(kind: str, tmp_path: Path) -> list:
    img = Image.open(PHOTO).convert("RGB")
    if kind == "path":
        return [str(PHOTO)]
    if kind == "pil":
        return [img]
    if kind == "array":
        return [np.asarray(img)]
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return [buf.getvalue()]


def _by_predictor(items, predictor):
    (result,) = predictor.predict_images(items)
    return result.faces[0].probabilities


def _by_transformer(items, predictor):
    from faceattr import MultiViewVAEFeatures
    return predictor.predict_proba(MultiViewVAEFeatures().fit().transform(items))[0]


def _by_extract(items, predictor):
    from faceattr.inference.extract import iter_features
    (chunk,) = iter_features(items, features_pipeline(largest_face=True))
    return predictor.predict_proba(chunk.features)[0]


def _by_ray_actor(items, predictor):
    from faceattr.inference.ray_data import FaceAttrActor
    batch = {"bytes": np.array([_as_bytes(x) for x in items], dtype=object), "path": np.array(["in.png"])}
    out = FaceAttrActor(faces=FaceOptions(largest_face=True))(batch)
    return np.array([out[a][0] for a in _names()])


def _by_server(items, predictor):
    from fastapi.testclient import TestClient
    from faceattr.serve import create_app
    with TestClient(create_app()) as client:
        r = client.post("/predict", params={"largest_face": True}, files={"file": ("in.png", _as_bytes(items[0]))})
    assert r.status_code == 200, r.text
    return np.array([r.json()["faces"][0]["attributes"][a]["probability"] for a in _names()])


def _by_cli(items, predictor):
    """The command line reads files: any other input is written as its PNG first."""
    import json
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.png"
        path.write_bytes(_as_bytes(items[0]))
        r = CliRunner().invoke(main, ["predict", str(path), "--largest-face", "--format", "json"])
    assert r.exit_code == 0, r.output
    face = json.loads(r.stdout)[0]["faces"][0]
    return np.array([face["attributes"][a]["probability"] for a in _names()])


def _as_bytes(x) -> bytes:
    """Ray Data and the server take bytes: any other input is sent as its PNG."""
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return Path(x).read_bytes()
    img = x if isinstance(x, Image.Image) else Image.fromarray(x)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _names():
    from faceattr.data.attributes import ATTRIBUTE_NAMES
    return ATTRIBUTE_NAMES


ENTRY_POINTS = {"cli": _by_cli, "predictor": _by_predictor, "transformer": _by_transformer, "extract": _by_extract,
                "ray_data": _by_ray_actor, "serve": _by_server}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["path", "pil", "array", "bytes"])
def test_every_entry_point_gives_the_pipelines_answer_for_every_input_type(kind, predictor, tmp_path):
    pytest.importorskip("fastapi")
    items = _inputs(kind, tmp_path)
    (results,) = predictor.pipeline.run(items)
    expected = results[0].faces[0].probabilities
    for name, run in ENTRY_POINTS.items():
        got = run(items, predictor)
        np.testing.assert_allclose(got, expected, atol=PROBABILITY_TOLERANCE, err_msg=f"{name} on {kind}")


def test_no_face_and_errors_read_the_same_everywhere(predictor, tmp_path):
    from faceattr import MultiViewVAEFeatures
    from faceattr.inference.extract import iter_features
    from faceattr.inference.ray_data import FaceAttrActor
    blank, broken = tmp_path / "blank.png", tmp_path / "broken.jpg"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    broken.write_bytes(b"not an image")
    items = [str(blank), str(broken)]
    results = next(predictor.pipeline.run(items))
    assert results[0].no_face and not results[1].no_face and "broken.jpg" in results[1].error
    records = [r.to_dict() for r in predictor.predict_images(items)]
    assert [(r["error"], r["faces"]) for r in records] == [(None, []), (results[1].error, [])]
    (chunk,) = iter_features(items, features_pipeline())
    assert chunk.no_face == [str(blank)] and chunk.errors == [{"file": str(broken), "error": results[1].error}]
    rows = FaceAttrActor()({"path": np.array(items)})
    assert list(rows["face"]) == [-1, -1] and list(rows["error"]) == ["no face found", results[1].error]
    with pytest.warns(UserWarning, match="no face found"):
        assert np.isnan(MultiViewVAEFeatures(no_face="nan").fit().transform(items)).all()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, celeba_root):
    pytest.importorskip("av", reason="video input needs the [video] extra")
    files = sorted((celeba_root / "img_align_celeba").glob("*.jpg"))[:6]
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mp4", files)


def test_the_ray_actor_encodes_a_videos_frames_together(clip):
    """One video in a Ray batch: its frames are encoded as one batch, not one frame per call
    (which was slow, and under bfloat16 rounded differently from extract's batches)."""
    from faceattr.inference.ray_data import FaceAttrActor
    actor = FaceAttrActor(faces=FaceOptions(largest_face=True))
    encode, sizes = actor.pipeline.encoder.encode_tensor, []
    actor.pipeline.encoder.encode_tensor = lambda faces: (sizes.append(len(faces)), encode(faces))[1]
    rows = actor({"path": np.array([str(clip)])})
    assert list(rows["frame"]) == list(range(6)) and sizes == [6]


def test_a_video_gives_the_same_frames_and_features_through_predict_extract_and_ray(clip, predictor):
    from faceattr.inference.extract import iter_features
    from faceattr.inference.ray_data import FaceAttrActor
    records = [r.to_dict() for r in predictor.predict_images([str(clip)], sampling=FrameSampling(every=2))]
    frames = [r["frame"] for r in records]
    assert frames == [0, 2, 4]
    feats = np.concatenate([c.features for c in iter_features([str(clip)], features_pipeline(largest_face=True),
                                                              sampling=FrameSampling(every=2))])
    actor = FaceAttrActor(faces=FaceOptions(largest_face=True), every=2)
    by_path = actor({"path": np.array([str(clip)])})
    by_bytes = actor({"bytes": np.array([clip.read_bytes()], dtype=object), "path": np.array([str(clip)])})
    for rows in (by_path, by_bytes):
        assert list(rows["frame"]) == frames and list(rows["path"]) == [str(clip)] * 3
        assert list(rows["time_s"]) == pytest.approx([0.0, 0.4, 0.8])
        np.testing.assert_allclose(np.stack(rows["features"]), feats, atol=1e-4)
    np.testing.assert_allclose(predictor.predict_proba(feats)[:, _names().index("Smiling")],
                               [r["faces"][0]["attributes"]["Smiling"]["probability"] for r in records], atol=1e-3)


@pytest.mark.parametrize("option,value", [("detect_size", 320), ("min_face_size", 40)])
def test_detector_options_reach_every_entry_point(option, value):
    pytest.importorskip("fastapi")
    from faceattr import AttributePredictor, MultiViewVAEFeatures
    from faceattr.inference.ray_data import FaceAttrActor
    from faceattr.serve import create_app
    attr = {"detect_size": "max_side", "min_face_size": "min_face_size"}[option]
    faces = FaceOptions(**{option: value})
    pipelines = {"predictor": AttributePredictor(faces=faces).pipeline,
                 "transformer": MultiViewVAEFeatures(**{option: value}).fit()._get_pipeline(),
                 "serve": create_app(faces=faces).state.service.pipeline,
                 "ray_data": FaceAttrActor(faces=faces).pipeline}
    for name, pipe in pipelines.items():
        assert getattr(pipe.detector(), attr) == value, name
    flag = "--" + option.replace("_", "-")
    for command in ("predict", "extract", "serve"):
        assert flag in CliRunner().invoke(main, [command, "--help"]).output, command


def test_the_bundle_is_loaded_and_the_encoder_built_once_per_entry_point(monkeypatch):
    from faceattr.inference import bundle as bundle_mod, encoder as encoder_mod
    from faceattr import AttributePredictor
    loads, builds = [], []
    real_load, real_init = bundle_mod.Bundle.load.__func__, encoder_mod.MultiViewEncoder.__init__
    monkeypatch.setattr(bundle_mod.Bundle, "load", classmethod(lambda cls, *a, **k: loads.append(1) or real_load(cls, *a, **k)))
    monkeypatch.setattr(encoder_mod.MultiViewEncoder, "__init__",
                        lambda self, *a, **k: builds.append(1) or real_init(self, *a, **k))
    AttributePredictor().predict_images([str(PHOTO)])
    assert (len(loads), len(builds)) == (1, 1)
