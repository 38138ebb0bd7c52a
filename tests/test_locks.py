"""faceattr.locks: one writer per folder, across processes and within one."""
import os

import pytest

from faceattr.locks import FolderInUse, FolderLock, try_lock_folder


def test_a_held_folder_is_refused_with_its_name_and_freed_on_release(tmp_path):
    with FolderLock(tmp_path, "another faceattr train"):
        assert try_lock_folder(tmp_path) is None  # a second open of the folder: refused too
        with pytest.raises(FolderInUse, match=f"{tmp_path}: another faceattr train is writing it"):
            FolderLock(tmp_path, "another faceattr train").acquire()
    fd = try_lock_folder(tmp_path)
    assert fd is not None
    os.close(fd)


def test_a_file_or_a_link_is_not_a_folder_to_lock(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "d", target_is_directory=True)
    (tmp_path / "d").mkdir()
    for name in ("f", "link", "missing"):
        with pytest.raises(OSError):
            try_lock_folder(tmp_path / name)
