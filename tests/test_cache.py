"""The cache never returns stale values: keys follow the content, bad files are recomputed."""
import os

import numpy as np
import pytest
from PIL import Image

from conftest import write_celeba_tree
from faceattr import cache
from faceattr.data.celeba import CelebA


def test_replaced_images_are_decoded_afresh(tmp_path):
    base = write_celeba_tree(tmp_path / "data", n=6)
    ds = CelebA.load(base, "all")
    before = ds.crops(cache_dir=tmp_path / "c", workers=1)
    for p in ds.paths():  # every image becomes a grey square, same names
        Image.new("RGB", (178, 218), (128, 128, 128)).save(p)
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    after = CelebA.load(base, "all").crops(cache_dir=tmp_path / "c", workers=1)
    assert not np.array_equal(before, after)
    assert (after == 128).all()


def test_corrupt_cache_file_is_recomputed(tmp_path):
    base = write_celeba_tree(tmp_path / "data", n=4)
    ds = CelebA.load(base, "all")
    good = ds.crops(cache_dir=tmp_path / "c", workers=1)
    (entry,) = cache.entries(tmp_path / "c")
    entry.write_bytes(b"\x93NUMPY garbage")
    with pytest.warns(UserWarning, match=f"{entry.name}: unreadable cache file"):
        again = ds.crops(cache_dir=tmp_path / "c", workers=1)
    np.testing.assert_array_equal(again, good)
    assert np.load(entry).shape == good.shape  # rewritten whole


def test_size_limit_evicts_least_recently_used(tmp_path, monkeypatch):
    folder = tmp_path / "c"
    monkeypatch.setenv("FACEATTR_CACHE_MAX_GB", str(2.5e-6))  # 2,500 bytes: two 1 kB entries
    for i in range(3):
        cache.cached_array(f"features-{i}.npy", lambda a: True, lambda: np.zeros(128), folder=folder)
        os.utime(folder / f"features-{i}.npy", (i + 1, i + 1))
    cache.cached_array("features-3.npy", lambda a: True, lambda: np.zeros(128), folder=folder)
    assert [p.name for p in cache.entries(folder)] == ["features-2.npy", "features-3.npy"]


def test_no_cache_writes_nothing_and_clear_empties(tmp_path, monkeypatch):
    folder = tmp_path / "c"
    monkeypatch.setenv("FACEATTR_NO_CACHE", "1")
    cache.cached_array("features-x.npy", lambda a: True, lambda: np.ones(3), folder=folder)
    assert not folder.exists()
    monkeypatch.delenv("FACEATTR_NO_CACHE")
    cache.cached_array("features-x.npy", lambda a: True, lambda: np.ones(3), folder=folder)
    assert cache.clear(folder)[0] == 1 and cache.entries(folder) == []


def test_the_cache_command_shows_and_clears(tmp_path, monkeypatch):
    from click.testing import CliRunner
    from faceattr.cli import main
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path))
    monkeypatch.setenv("FACEATTR_CACHE_MAX_GB", "2")
    np.save(tmp_path / "features-abc.npy", np.zeros(250_000, np.float32))  # 1 MB
    r = CliRunner().invoke(main, ["cache"])
    assert r.exit_code == 0 and f"{tmp_path}: 1 files, 1.0 MB (limit 2 GB)" in r.output
    r = CliRunner().invoke(main, ["cache", "--clear"])
    assert r.exit_code == 0 and "removed 1 files (1.0 MB)" in r.output and not list(tmp_path.iterdir())
