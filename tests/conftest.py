import os
from pathlib import Path

import numpy as np
import pytest

from faceattr.data.celeba import ROOT_ENV

REPO = Path(__file__).resolve().parents[1]
# Random 4-d views and heads in the bundle format (scripts/make_tiny_bundle.py): for tests of
# plumbing, which need not load the 40 MB shipped bundle. Its predictions mean nothing.
TINY_BUNDLE = REPO / "tests" / "data" / "tiny_bundle"
TINY_FEATURES = 20  # 5 views x 4 latents
CELEBA_MINI = Path(os.environ.get(ROOT_ENV, REPO.parent / "shared" / "data" / "celeba-mini"))


@pytest.fixture(scope="session")
def celeba_root() -> Path:
    if not (CELEBA_MINI / "list_attr_celeba.txt").is_file():
        pytest.skip(f"real CelebA faces not found at {CELEBA_MINI} (set {ROOT_ENV} to a CelebA folder)")
    return CELEBA_MINI


# Markers by what a test needs, so that `pytest -m "not browser"`, `-m "not celeba"` or
# `-m "not weights"` select the rest: by the fixtures it asks for, or by its module.
NEEDS_FIXTURES = {"celeba": {"celeba_root", "real_faces"}, "weights": {"pretrained_bundle"}}
NEEDS_MODULES = {
    "browser": {"test_page"},
    "weights": {"test_serve", "test_serve_errors", "test_page", "test_one_pipeline", "test_decisions", "test_features",
                "test_fine_tuned_views", "test_pretrained", "test_predict_inputs_and_records", "test_input_corpus",
                "test_ray_data", "test_video_annotate", "test_generate", "test_sklearn_checks", "test_wheel"},
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        for marker, names in NEEDS_FIXTURES.items():
            if fixtures & names:
                item.add_marker(marker)
        for marker, modules in NEEDS_MODULES.items():
            if module in modules:
                item.add_marker(marker)


SCRIPT_FOLDERS = ("benchmarks", "experiments", "tools")  # published figures, studies, weights and figures


@pytest.fixture(scope="session")
def benchmark_script():
    """A script of benchmarks/, experiments/ or tools/ as its module, as ``python -m`` runs it:
    ``benchmark_script("recipe_study")``."""
    import importlib
    import sys
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))

    def load(name: str):
        folder = next(f for f in SCRIPT_FOLDERS if (REPO / f / f"{name}.py").is_file())
        return importlib.import_module(f"{folder}.{name}")
    return load


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    # Keep crop and feature caches of the tests away from the user's cache.
    os.environ["FACEATTR_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def real_faces(celeba_root) -> np.ndarray:
    from faceattr.data.celeba import CelebA
    return CelebA.load(celeba_root, "train", max_images=256).crops(workers=1)


@pytest.fixture(scope="session")
def tiny_cfg():
    from faceattr.nn.config import ModelConfig
    return ModelConfig(latent_dim=8, encoder_widths=(8, 8, 16, 16), decoder_widths=(16, 8, 8),
                       critic_widths=(8, 8, 16, 16), layers=("relu2_1",))


@pytest.fixture(scope="session")
def random_vgg():
    from faceattr.nn.vgg import VGG19Taps
    import torch
    torch.manual_seed(0)
    return VGG19Taps()


@pytest.fixture(scope="session")
def pretrained_bundle():
    from faceattr.inference.bundle import Bundle
    return Bundle.load()


def write_celeba_tree(root: Path, n: int = 6, under_celeba: bool = False, crlf: bool = True,
                      splits=None, rng_seed: int = 0) -> Path:
    """A tiny synthetic CelebA folder in the official layout."""
    from PIL import Image
    from faceattr.data.attributes import ATTRIBUTE_NAMES
    base = root / "celeba" if under_celeba else root
    (base / "img_align_celeba").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rng_seed)
    nl = "\r\n" if crlf else "\n"
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    attr = [str(n), " ".join(ATTRIBUTE_NAMES)]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (218, 178, 3), dtype=np.uint8)).save(base / "img_align_celeba" / name)
        attr.append(name + " " + " ".join(rng.choice(["-1", " 1"], 40)))
    (base / "list_attr_celeba.txt").write_bytes((nl.join(attr) + nl).encode())
    splits = splits or [i % 3 for i in range(n)]
    (base / "list_eval_partition.txt").write_bytes(
        (nl.join(f"{name} {s}" for name, s in zip(names, splits)) + nl).encode())
    return base


def write_clip(path: Path, image_files, fps: int = 5) -> Path:
    """CelebA aligned images as the frames of an MPEG-4 video (176x216, one face per frame)."""
    import av
    from PIL import Image
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 176, 216, "yuv420p"
        for f in image_files:
            img = Image.open(f).convert("RGB").crop((1, 1, 177, 217))
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def features_pipeline(weights="pretrained", **face_options):
    """A features-only FacePipeline of a bundle, finding faces as ``face_options`` say."""
    from faceattr.faces.options import FaceOptions
    from faceattr.inference.bundle import Bundle
    from faceattr.inference.pipeline import FacePipeline
    return FacePipeline.from_bundle(Bundle.load(weights), heads=False, options=FaceOptions(**face_options))


@pytest.fixture
def quick_svms(monkeypatch):
    """Heads fitted with a few L-BFGS iterations: for tests of a benchmark's plumbing (its rows,
    keys and files), not of the accuracy the fully fitted heads reach."""
    from faceattr.inference import heads
    monkeypatch.setattr(heads, "SVM_MAX_ITER", 20)
