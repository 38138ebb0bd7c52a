import pytest

from faceattr.atomic import atomic_path, write_text


def test_interrupted_write_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "results.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_replaces_whole_file(tmp_path):
    target = tmp_path / "a.txt"
    write_text(target, "old")
    write_text(target, "new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1
