"""``OUT.parts/``, the folder ``faceattr extract`` writes its parts into (faceattr.inference.
feature_writer): made whole with its marker inside, locked for the run, and read back only when
the marker says faceattr made it."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..atomic import write_text
from ..errors import OutputExists, OutputInUse
from ..locks import try_lock_folder

MARKER = ".faceattr-parts.json"
TOOL = "faceattr extract"


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


class PartsFolder:
    """The parts folder of output ``out`` and the lock this run holds on it (an open descriptor)."""

    def __init__(self, out: Path):
        self.out = out
        self.path = out.with_name(out.name + ".parts")
        self._fd: int | None = None

    def lock(self) -> None:
        """Take the lock of a folder that is there; refused while another run holds it."""
        try:
            fd = try_lock_folder(self.path)
        except OSError:
            raise OutputExists(f"{self.path}: exists and is not a folder faceattr made; move it away") from None
        if fd is None:
            raise OutputInUse(f"{self.out}: another faceattr extract is writing it ({self.path} is locked); "
                              f"wait for it to finish or choose another --out")
        if _inode(self.path) != os.fstat(fd).st_ino:
            os.close(fd)  # the other run finished and removed it while we waited
            raise OutputInUse(f"{self.out}: another faceattr extract has just finished writing it; run again")
        self._fd = fd

    def read_marker(self) -> dict:
        try:
            marker = json.loads((self.path / MARKER).read_text(encoding="utf-8"))
            if marker.get("tool") != TOOL:
                raise ValueError
        except (OSError, ValueError):
            self.release()
            raise OutputExists(f"{self.path}: exists and was not made by {TOOL} (no {MARKER}); it is left "
                               f"as it is: move it away or choose another --out") from None
        return marker

    def create(self, marker: dict) -> None:
        """The folder appears whole, marker inside and locked: made under a temporary name,
        locked, then renamed into place."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.new-", dir=self.out.parent))
        write_text(tmp / MARKER, json.dumps(marker, indent=1))
        fd = try_lock_folder(tmp)  # a folder only we know of yet: always ours
        try:
            if os.path.lexists(self.path):
                raise OSError
            os.rename(tmp, self.path)
        except OSError:
            os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
            raise OutputInUse(f"{self.out}: another faceattr extract started writing it just now") from None
        self._fd = fd

    def save(self, marker: dict) -> None:
        write_text(self.path / MARKER, json.dumps(marker, indent=1))

    def remove(self) -> None:
        """The marker, then the folder (emptied of everything else first by the writer), then the lock."""
        (self.path / MARKER).unlink()
        self.path.rmdir()
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
