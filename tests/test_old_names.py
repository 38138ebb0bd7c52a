"""The names and keywords of before the one vocabulary keep working for one release, each with a
DeprecationWarning that says what to use; and the command line's one-line errors and --debug."""
import importlib
import sys

import pytest
from click.testing import CliRunner

from conftest import TINY_BUNDLE
from faceattr.cli import main
from faceattr.errors import DatasetError, FaceattrError, InputError


def test_the_face_options_as_keywords_still_work_with_a_warning():
    from faceattr import AttributePredictor
    with pytest.warns(DeprecationWarning, match=r"faces=FaceOptions\(align=..., largest_face=...\)"):
        p = AttributePredictor(TINY_BUNDLE, align="celeba", largest_face=True)
    assert p.options.align == "celeba" and p.options.largest_face
    with pytest.raises(TypeError, match="unexpected keyword argument 'alignment'"):
        AttributePredictor(TINY_BUNDLE, alignment="celeba")


def test_the_servers_keywords_still_work_with_a_warning():
    pytest.importorskip("fastapi")
    from faceattr.serve import create_app
    with pytest.warns(DeprecationWarning, match="limits=Limits"):
        app = create_app(TINY_BUNDLE, timeout_s=2.5, max_batch=8, detect_size=320)
    service = app.state.service
    assert service.limits.timeout_s == 2.5 and service.pipeline.options.detect_size == 320


def test_the_benchmarks_keywords_still_work_with_a_warning(monkeypatch):
    from faceattr import benchmark
    seen = {}
    monkeypatch.setattr(benchmark, "write_outputs", lambda results, out: None)
    monkeypatch.setattr(benchmark, "evaluate", lambda root, splits, config: seen.update(c=config) or ({"test": {}}, {}))
    with pytest.warns(DeprecationWarning, match="config=BenchmarkConfig"):
        benchmark.run_benchmark("root", "test", heads="fit", max_images=3)
    assert seen["c"].heads == "fit" and seen["c"].max_images == 3


def test_a_result_read_like_the_dict_of_before_warns():
    from faceattr.inference.results import FrameResult
    r = FrameResult("a.jpg")
    with pytest.warns(DeprecationWarning, match="use its attributes or .to_dict"):
        assert r["file"] == "a.jpg" and r["faces"] == []


def test_the_old_modules_and_error_names_still_import_with_a_warning():
    sys.modules.pop("faceattr.trainer", None)
    with pytest.warns(DeprecationWarning, match="faceattr.trainer is now faceattr.train"):
        trainer = importlib.import_module("faceattr.trainer")
    assert trainer.Trainer.__module__ == "faceattr.train.loop"
    import faceattr.data.celeba as celeba
    with pytest.warns(DeprecationWarning, match="CelebAError is now faceattr.errors.DatasetError"):
        assert celeba.CelebAError is DatasetError


def test_a_faceattr_error_is_one_line_and_debug_shows_its_traceback(tmp_path):
    r = CliRunner().invoke(main, ["train", "--root", str(tmp_path)])
    assert r.exit_code == 1 and r.output.startswith("Error: ") and "Traceback" not in r.output
    debug = CliRunner().invoke(main, ["--debug", "train", "--root", str(tmp_path)])
    assert isinstance(debug.exception, DatasetError) and isinstance(debug.exception, FaceattrError)
    env = CliRunner(env={"FACEATTR_DEBUG": "1"}).invoke(main, ["train", "--root", str(tmp_path)])
    assert isinstance(env.exception, DatasetError)


def test_an_error_that_is_not_faceattrs_shows_its_traceback(monkeypatch):
    import faceattr.inference.predictor as predictor_mod

    def broken(*a, **k):
        raise KeyError("a fault of faceattr's, not the user's")
    monkeypatch.setattr(predictor_mod.AttributePredictor, "__init__", broken)
    r = CliRunner().invoke(main, ["predict", "examples/astronaut.png"])
    assert isinstance(r.exception, KeyError) and not r.output.startswith("Error:")


def test_every_deliberate_error_keeps_its_builtin_kind():
    from faceattr import errors
    assert issubclass(errors.ImageError, ValueError) and issubclass(errors.InputError, ValueError)
    assert issubclass(errors.OutputExists, FileExistsError) and issubclass(errors.OutputInUse, OSError)
    assert issubclass(errors.NotAFolder, NotADirectoryError) and issubclass(errors.BundleError, RuntimeError)
    assert issubclass(errors.ImageTooSmall, errors.ImageError) and issubclass(errors.FolderInUse, errors.OutputInUse)
    assert issubclass(InputError, FaceattrError)


def test_the_benchmarks_roc_auc_still_works_with_a_warning():
    import numpy as np

    from faceattr import benchmark
    y = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.3], [0.4, 0.2], [0.5, 0.0]])
    with pytest.warns(DeprecationWarning, match="roc_auc is deprecated"):
        auc = benchmark.roc_auc(scores, y)
    assert auc[0] == 0.75 and np.isnan(auc[1])  # the Mann-Whitney count by hand; one class: NaN
