"""Write files whole or not at all: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from .errors import OutputError, OutputExists


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _temporary_beside(target: Path):
    """A temporary file in ``target``'s folder (made if missing), removed at the end unless it was
    renamed away."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _share_mode(tmp: Path) -> None:
    """The mode a plain ``open(target, "w")`` would give (0666 less the umask), not mkstemp's
    private 0600, so a shared weights folder stays readable to its other users."""
    os.chmod(tmp, 0o666 & ~_umask())


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path in the target's folder; rename it onto the target on success."""
    target = Path(target)
    with _temporary_beside(target) as tmp:
        yield tmp
        _share_mode(tmp)
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_new_path(target: str | os.PathLike):
    """``atomic_path`` that never replaces a file: the finished temporary file is linked to the
    target's name, which fails with FileExistsError if anything is there by then (even a file made
    by another process a moment ago), and the temporary name is removed either way."""
    target = Path(target)
    with _temporary_beside(target) as tmp:
        yield tmp
        _share_mode(tmp)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise OutputExists(f"{target}: already exists; not overwritten") from None


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copy ``source``'s bytes (not its mode or times) onto ``target``, whole or not at all."""
    import shutil
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def check_writable(target: str | os.PathLike) -> Path:
    """Fail before any work when ``target`` cannot be written: the error names the file."""
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; expected a file name")
    _check_can_create(target, target.parent)
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{target}: exists and is not writable")
    return target


def check_new_output(target: str | os.PathLike, overwrite: bool = False, inputs=()) -> Path:
    """``check_writable``, and the rule every command that writes follows: an existing file is
    refused unless ``overwrite``, and one of the run's ``inputs`` never, even with it."""
    target = check_writable(target)
    for item in inputs:
        if os.path.lexists(target) and os.path.exists(item) and os.path.samefile(target, item):
            raise OutputExists(f"{target}: is also an input of this command; choose another output")
    if os.path.lexists(target) and not overwrite:
        raise OutputExists(f"{target}: already exists; not replaced (--overwrite replaces it)")
    return target


def check_new_folder(folder: str | os.PathLike, why: str) -> Path:
    """Before any work: ``folder`` does not exist yet (``why`` says why it must not) and can be
    made where it is asked for."""
    folder = Path(folder)
    if os.path.lexists(folder):
        raise OutputExists(f"{folder}: already exists; {why}")
    _check_can_create(folder, folder.parent)
    return folder


def check_writable_dir(folder: str | os.PathLike) -> Path:
    """Fail before any work when files cannot be created in ``folder`` (made if missing)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    _check_can_create(folder, folder)
    return folder


def _check_can_create(named: Path, folder: Path) -> None:
    """Files can be created in ``folder`` or, where it is missing, in the nearest folder above it
    that exists (the folders atomic_path would create); the error names ``named``."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not _can_create_in(existing):
        raise OutputError(f"{named}: cannot write here ({existing} is not a writable folder)")


def _can_create_in(folder: Path) -> bool:
    """Whether a file can really be created in ``folder``: os.access says yes to root on a
    read-only mount or a folder like /proc, so try it."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".faceattr-probe.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True
