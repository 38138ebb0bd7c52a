"""The package's shape: inference never loads training code, and the public API stays put."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_predict_path_imports_no_training_code():
    tiny = str(REPO / "tests" / "data" / "tiny_bundle")  # what is imported does not hang on the weights
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from faceattr.cli import main\n"
        f"r = CliRunner().invoke(main, ['predict', {str(REPO / 'examples' / 'astronaut.png')!r}, '--format', 'json', "
        f"'--weights', {tiny!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "from faceattr import MultiViewVAEFeatures\n"
        f"MultiViewVAEFeatures({tiny!r}).fit().transform([{str(REPO / 'examples' / 'astronaut.png')!r}])\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('faceattr', 'torchvision', 'facenet')))))\n")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=REPO).stdout.split()
    assert "faceattr.inference.predictor" in loaded and "faceattr.inference.transformer" in loaded
    # torchvision's imports alone cost 1.9 s of start-up (faceattr.faces.mtcnn_nets)
    for training in ("faceattr.train", "faceattr.nn.losses", "faceattr.nn.vgg", "faceattr.grid",
                     "faceattr.benchmark", "torchvision", "facenet_pytorch"):
        assert training not in loaded, training


def test_public_imports():
    from faceattr import ATTRIBUTE_NAMES, AttributePredictor, MultiViewVAEFeatures, __version__  # noqa: F401
    assert len(ATTRIBUTE_NAMES) == 40


def test_attribute_predictor_on_features(pretrained_bundle, real_faces):
    from faceattr import AttributePredictor
    from faceattr.inference.encoder import MultiViewEncoder
    p = AttributePredictor()
    feats = MultiViewEncoder.from_bundle(pretrained_bundle).encode(real_faces[:8])
    scores = p.decision_function(feats)
    proba = p.predict_proba(feats)
    pred = p.predict(feats)
    assert scores.shape == proba.shape == pred.shape == (8, 40) and pred.dtype == bool
    np.testing.assert_array_equal(pred, scores > 0)
    assert ((proba >= 0) & (proba <= 1)).all()
    # Platt calibration is monotone in the score for every attribute whose slope is positive.
    a = pretrained_bundle.heads()["platt_a"]
    for j in np.flatnonzero(a > 0):
        order = np.argsort(scores[:, j])
        assert (np.diff(proba[order, j]) >= -1e-6).all()
    s2, p2 = p.score_faces(real_faces[:8])
    np.testing.assert_allclose(s2, scores, atol=1e-4)
    with pytest.raises(ValueError, match="features must be"):
        p.decision_function(feats[:, :10])


def test_nothing_points_outside_the_repository():
    import re
    bad = []
    for path in list(REPO.glob("faceattr/**/*.py")) + list(REPO.glob("*.md")) + list(REPO.glob("docs/**/*.md")) \
            + [REPO / "pretrained" / "MODEL_CARD.md", REPO / "pretrained" / "manifest.json"]:
        text = path.read_text(encoding="utf-8")
        # CONTRIBUTING.md alone names the tests' default data folder beside the clone
        pattern = r"SPEC\.md|paper\.md|shared/reference" + ("" if path.name == "CONTRIBUTING.md" else r"|\.\./shared")
        for m in re.finditer(pattern, text):
            bad.append(f"{path.relative_to(REPO)}: {m.group(0)}")
    assert not bad, bad


MAX_FUNCTION_LINES = 60  # "functions short enough to read at a glance"


def test_no_function_in_the_package_is_longer_than_a_screen():
    import ast
    long = []
    for path in sorted((REPO / "faceattr").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


MAX_CLASS_LINES = 200  # "classes that hold one kind of state"
MAX_PARAMETERS = 8  # a library function's; cli.py's commands take one per option


def _package_nodes():
    import ast
    for path in sorted((REPO / "faceattr").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            yield path.relative_to(REPO), node


def test_no_class_in_the_package_is_longer_than_200_lines():
    import ast
    long = [f"{p}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)" for p, n in _package_nodes()
            if isinstance(n, ast.ClassDef) and n.end_lineno - n.lineno + 1 > MAX_CLASS_LINES]
    assert not long, long


def test_no_library_function_takes_more_than_8_parameters():
    import ast
    many = []
    for path, n in _package_nodes():
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and path.name != "cli.py":
            a = n.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
            if len(names) > MAX_PARAMETERS:
                many.append(f"{path}:{n.lineno} {n.name} ({len(names)})")
    assert not many, many


# Each part of the package may import from its own layer and the layers below, never above.
LAYERS = [{"errors", "version"}, {"atomic", "locks", "device", "generate_limits", "upload_limits", "serve_limits"}, {"cache", "grid", "figures", "intervals", "calibration"},
          {"faces", "nn", "data"}, {"inference"}, {"train", "generate", "benchmark", "groups", "onnx_export"}, {"serve_faces"},
          {"serve"}, {"cli", "trainer", "__init__", "__main__"}]


def _imports() -> dict[str, set[str]]:
    """{module: the faceattr modules it imports (at its top or inside a function)}."""
    import ast
    mods = {}
    for path in (REPO / "faceattr").rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.ImportFrom):
                base = pkg.split(".")[:len(pkg.split(".")) - (n.level - 1)] if n.level else []
                target = ".".join(base + ([n.module] if n.module else []))
                found |= {f"{target}.{a.name}" for a in n.names} | {target}
            elif isinstance(n, ast.Import):
                found |= {a.name for a in n.names}
        mods[name] = {t for t in found if t.startswith("faceattr")}
    return {m: {t for t in ts if t in mods and t != m} for m, ts in mods.items()}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_imports_only_run_downward():
    layer = {part: i for i, group in enumerate(LAYERS) for part in group}
    upward = sorted(f"{m} -> {t}" for m, ts in _imports().items() for t in ts
                    if layer[_part(t)] > layer[_part(m)])
    assert not upward, upward


def test_the_import_graph_has_no_cycle():
    graph, state, cycles = _imports(), {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"
    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_every_exception_class_of_the_package_is_a_faceattr_error():
    import importlib
    import inspect
    import pkgutil
    import faceattr
    from faceattr.errors import FaceattrError
    outside = []
    for info in pkgutil.walk_packages(faceattr.__path__, "faceattr."):
        if info.name in ("faceattr.trainer", "faceattr.serve", "faceattr.serve_faces", "faceattr.__main__"):
            continue  # a deprecated alias; the server's modules need the [serve] extra (checked below)
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name \
                    and not issubclass(obj, (FaceattrError, Warning)):
                outside.append(f"{info.name}.{name}")
    assert not outside, outside


def test_the_cli_keeps_no_list_of_exception_classes():
    text = (REPO / "faceattr" / "cli.py").read_text()
    assert "LIBRARY_ERRORS" not in text and "except (FaceattrError, OSError)" in text


def test_no_finished_study_is_left_in_the_package():
    hits = [str(p.relative_to(REPO)) for p in (REPO / "faceattr").rglob("*.py") if "decorrelate" in p.read_text()]
    assert not hits, hits


def test_one_road_from_inputs_to_features():
    """prepare_many (decode, detect, align) is called by the FaceFinder alone; the entry points go
    through FacePipeline."""
    callers = sorted(str(p.relative_to(REPO)) for p in (REPO / "faceattr").rglob("*.py")
                     if "prepare_many(" in p.read_text() and p.name != "prepare.py")
    assert callers == ["faceattr/faces/finder.py"], callers
    for module in ("predictor", "extract", "ray_data", "transformer"):
        assert "FacePipeline" in (REPO / "faceattr" / "inference" / f"{module}.py").read_text(), module
    assert "predictor.pipeline" in (REPO / "faceattr" / "serve.py").read_text()


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["extract", "--help"], ["serve", "--help"],
                                  ["train", "--help"], ["predict"], ["benchmark", "celeba", "--bogus"]])
def test_help_and_usage_errors_never_import_torch(argv):
    """`faceattr --help` answers at once (issue 27): torch is imported only by commands that run."""
    code = ("import sys\n"
            "from faceattr.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
