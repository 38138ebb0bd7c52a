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


def test_written_files_honour_the_umask(tmp_path):
    import os
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "shared.json", "{}")
        assert (tmp_path / "shared.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        write_text(tmp_path / "private.json", "{}")
        assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_check_writable_names_the_file(tmp_path):
    from faceattr.atomic import check_writable
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OSError, match="a_file/out.png: cannot write here"):
        check_writable(tmp_path / "a_file" / "out.png")
    with pytest.raises(OSError, match="is a folder"):
        check_writable(tmp_path)
    assert check_writable(tmp_path / "new" / "deeper" / "out.png") == tmp_path / "new" / "deeper" / "out.png"
