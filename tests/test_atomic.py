import pytest

from faceattr.atomic import atomic_path, copy_file, write_text


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


def test_copy_file_replaces_the_target_whole_and_a_failed_copy_keeps_the_old_one(tmp_path):
    src, target = tmp_path / "new.pt", tmp_path / "bundle" / "view.pt"
    src.write_bytes(b"new" * 1000)
    copy_file(src, target)  # creates the folder, like atomic_path
    assert target.read_bytes() == b"new" * 1000
    with pytest.raises(FileNotFoundError):
        copy_file(tmp_path / "missing.pt", target)
    assert target.read_bytes() == b"new" * 1000 and sorted(p.name for p in target.parent.iterdir()) == ["view.pt"]
