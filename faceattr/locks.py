"""One writer per folder: an advisory ``flock`` on the folder itself, held for as long as a run
writes into it. The kernel drops the lock when the process ends, however it ends, so a killed run
never leaves a stale lock behind (no lock files to clean up)."""
from __future__ import annotations

import os
from pathlib import Path
from .errors import FolderInUse


def try_lock_folder(folder: str | os.PathLike) -> int | None:
    """An open descriptor of ``folder`` holding its exclusive lock, or None where another process
    holds it. OSError where ``folder`` is not a folder (a link to one is refused too: the lock
    would guard the link's target, not the name the run writes under)."""
    import fcntl
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class FolderLock:
    """``with FolderLock(folder, what):`` holds ``folder``'s lock or raises FolderInUse, whose
    message names the folder and ``what`` holds it (e.g. "another faceattr train")."""

    def __init__(self, folder: str | os.PathLike, what: str, advice: str = "wait for it to finish or choose another --out"):
        self.folder, self.what, self.advice = Path(folder), what, advice
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        fd = try_lock_folder(self.folder)
        if fd is None:
            raise FolderInUse(f"{self.folder}: {self.what} is writing it (the folder is locked); {self.advice}")
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
