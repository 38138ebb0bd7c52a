"""Where ``faceattr extract`` writes: whole part files in ``OUT.parts/``, merged into OUT at the end.

What a user can rely on (tests/test_extract_safety.py checks each):

- One writer per output. ``OUT.parts/`` is locked (``flock``) for the whole run; a second run on
  the same OUT is refused with a clear error, and a crash releases the lock.
- Nothing replaced that the run did not make. An existing OUT is added to only with ``resume`` and
  replaced only with ``overwrite``; a folder at ``OUT.parts/`` without this module's marker file
  (``.faceattr-parts.json``) is never used or deleted.
- No row lost or doubled, whatever instant a run is killed at. Parts are written whole (temporary
  file, then rename). At the end the merged file is written under a temporary name and its
  identity (inode, size, mtime) recorded in the marker before it takes OUT's name; a later run that
  finds the marker and an OUT with that identity knows the merge finished, and only removes the
  leftover parts.
- A resume goes on with the same options. The marker records them (alignment, detection, frame
  sampling, the views' sha256, the format), and so does the finished OUT (parquet and npz in their
  metadata, CSV in a hidden record beside it, ``.OUT.faceattr.json``, valid while OUT is the file
  it describes); a resume with another value is refused, naming it, and so is a resume onto a CSV
  whose record is missing or stale.
- Relative file names mean one folder. OUT records the folder its relative ``file`` names are
  relative to; a resume from another folder writes its new names relative to that one too (and
  finds the inputs already there), so no row is doubled and every name in OUT means one file.
- A merge that fails (a full disk) leaves no half-written file, and says the parts are intact.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, check_writable, write_text
from .parts_folder import MARKER, TOOL, PartsFolder
from ..errors import InputError, OutputError, OutputExists, OutputInUse  # noqa: F401 - OutputInUse: its name here before faceattr.errors

FORMATS = (".parquet", ".csv", ".npz")
INDEX_COLUMNS = ("file", "frame", "time_s", "face")
METADATA_KEY = b"faceattr"  # parquet key-value metadata holding the options
# An option recorded by older versions that a newer one replaces: compared only where the output
# lacks its replacement (weights_sha256 covered heads and vectors too; views_sha256 the views only).
REPLACED_BY = {"weights_sha256": "views_sha256"}


def check_output(out) -> Path:
    """OUT's format is one we write and its folder is writable: checked before any work."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"{out}: unknown output format {out.suffix.lower()!r}; use one of {', '.join(FORMATS)}")
    return check_writable(out)


def identity(path: Path) -> list | None:
    """What tells one file from another at a path: [inode, size, mtime_ns] (None if absent)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def csv_record(out: Path) -> Path:
    """Where a finished CSV's options are recorded (CSV itself has no room for them)."""
    return out.with_name(f".{out.name}.faceattr.json")


def row_key(name: str, frame: int, cwd: str) -> tuple[str, int]:
    """The key ``resume`` compares: the resolved path (so ``d/x.jpg`` and ``/abs/d/x.jpg`` are one
    input) and the frame (-1 for a photo). In-memory inputs (``<ndarray>``) keep their name."""
    if name.startswith("<"):
        return name, int(frame)
    return os.path.realpath(os.path.join(cwd, name)), int(frame)


def _reached(stage: str) -> None:
    """A no-op at each step of the finish; the fault-injection tests kill a run here."""


class FeatureWriter:
    """Streams chunks to ``OUT.parts/part-NNNNNN.EXT`` and merges them into OUT on ``close``.

    ``options``: what the rows depend on (recorded, and compared on ``resume``). ``resume`` goes on
    from a killed run's parts or adds to a finished OUT; ``overwrite`` replaces an existing OUT.
    Use as a context manager, or call ``release`` (``close`` does) to drop the lock.
    """

    def __init__(self, out, names: list[str], options: dict | None = None, resume: bool = False,
                 overwrite: bool = False):
        if resume and overwrite:
            raise InputError("resume and overwrite exclude each other: resume adds to OUT, overwrite replaces it")
        self.out = check_output(out)
        self.suffix = self.out.suffix.lower()
        self.names = list(names)
        self.options = {**(options or {}), "format": self.suffix}
        self.folder = PartsFolder(self.out)
        self.parts = self.folder.path
        self.cwd = os.getcwd()  # this run's relative names are relative to it
        self.rows = 0
        self.marker = self._open(resume, overwrite)
        self.n_parts = max([int(p.stem.split("-")[1]) for p in self._part_files()], default=0)

    # ---- starting: lock, marker, what OUT is -------------------------------------------------
    def _open(self, resume: bool, overwrite: bool) -> dict:
        if os.path.lexists(self.parts):
            self.folder.lock()
            marker = self.folder.read_marker()
            if marker.get("merged") and identity(self.out) == marker["merged"]:
                self._remove_parts(marker)  # the last run had finished: only its cleanup was cut short
            elif resume:
                return self._resume(marker)
            elif overwrite:
                self._remove_parts(marker)
            else:
                self.release()
                raise OutputExists(f"{self.parts}: a run that did not finish left its parts here; "
                                      f"--resume finishes it, --overwrite starts again")
        base, cwd = None, self.cwd
        if self.out.exists():
            if resume:
                stored = _stored_options(self.out)
                self._check_options(stored, self.out)
                base, cwd = identity(self.out), (stored or {}).get("cwd", self.cwd)
            elif not overwrite:
                raise OutputExists(f"{self.out}: already exists; --resume adds to it, --overwrite replaces it")
        # "cwd": the folder the output's relative names are relative to, whichever folder a resume runs from
        marker = {"tool": TOOL, "options": self.options, "names": len(self.names), "cwd": cwd,
                  "base": base, "overwrite": overwrite, "merged": None, "tmp": None}
        self.folder.create(marker)
        return marker

    def _resume(self, marker: dict) -> dict:
        self._check_options(marker["options"], self.parts)
        now = identity(self.out)
        if marker["base"] is not None and now != marker["base"]:
            self.release()
            raise OutputExists(f"{self.out}: changed since the interrupted run began (its rows were to be "
                                  f"kept); move it away or use --overwrite")
        if marker["base"] is None and now is not None and not marker["overwrite"]:
            self.release()
            raise OutputExists(f"{self.out}: appeared since the interrupted run began; move it away or "
                                  f"use --overwrite")
        if marker.get("tmp"):  # a merge cut short before its rename: the parts still hold every row
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.out.parent / marker["tmp"])
        return {**marker, "merged": None, "tmp": None}

    def _check_options(self, stored: dict | None, where: Path) -> None:
        if stored is None:
            return
        for key, value in self.options.items():
            newer = REPLACED_BY.get(key)
            if newer in stored and newer in self.options:
                continue
            if key in stored and stored[key] != value:
                self.release()
                raise InputError(f"{where}: written with {key}={stored[key]!r}, this run has {key}={value!r}; "
                                 f"resume with the same options, or --overwrite to start again")

    def _remove_parts(self, marker: dict) -> None:
        """Parts, then a leftover temporary file, then the marker, then the folder: a kill between
        any two leaves a marker that still says what the folder is."""
        for p in self._part_files():
            p.unlink()
        if marker.get("tmp"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.out.parent / marker["tmp"])
        _reached("cleanup")
        for p in self.parts.iterdir():
            if p.name != MARKER:
                p.unlink()  # a part's temporary file from a killed write
        self.folder.remove()

    def release(self) -> None:
        self.folder.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    # ---- writing -----------------------------------------------------------------------------
    def _part_files(self) -> list[Path]:
        return sorted(self.parts.glob(f"part-*{self.suffix}"))

    def _sources(self) -> list[Path]:
        return ([self.out] if self.marker["base"] is not None else []) + self._part_files()

    def name_in_output(self, name: str) -> str:
        """How OUT names an input of this run: as given, unless the name is relative and this run
        is not in the folder OUT's names are relative to; then relative to that folder."""
        base = self.marker["cwd"]
        if name.startswith("<") or os.path.isabs(name) or base == self.cwd:
            return name
        return os.path.relpath(os.path.join(self.cwd, name), base)

    def key(self, name: str, frame: int) -> tuple[str, int]:
        """``row_key`` of this run's input ``name``: what ``done_keys`` holds once it is written."""
        return row_key(self.name_in_output(name), frame, self.marker["cwd"])

    def done_keys(self) -> set[tuple[str, int]]:
        """``row_key`` of every photo or frame with rows already written (in the OUT this run adds
        to, or in its parts)."""
        done = set()
        for path in self._sources():
            index = _read(path, columns=["file", "frame"])
            done.update(row_key(f, fr, self.marker["cwd"]) for f, fr in zip(index["file"], index["frame"]))
        return done

    def write(self, chunk) -> None:
        if not chunk.files:
            return
        self.n_parts += 1
        files = [self.name_in_output(f) for f in chunk.files]
        with atomic_path(self.parts / f"part-{self.n_parts:06d}{self.suffix}") as tmp:
            _write(tmp, self.suffix, _index(files, chunk.frames, chunk.times, chunk.faces),
                   chunk.features, self.names)
        self.rows += len(chunk.files)
        _reached("part")

    def close(self) -> int:
        """Merge the rows (OUT's when resuming onto it, then the parts) into OUT; returns its rows."""
        # One name, known to the marker before the file exists: a kill mid-merge leaves nothing
        # that a resume cannot find and remove (the lock makes the name this run's alone).
        tmp = self.out.with_name(f".{self.out.name}.merging")
        self.marker.update(tmp=tmp.name)
        self.folder.save(self.marker)
        recorded = {**self.options, "cwd": self.marker["cwd"]}
        try:
            total = MERGERS[self.suffix](self._sources(), tmp, self.names, recorded)
            if self.suffix == ".csv":  # before OUT takes the name: a CSV is never there without its record
                _write_csv_record(self.out, {"tool": TOOL, "options": recorded, "identity": identity(tmp)})
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OutputError):  # refused on purpose: its own message says what to do
                raise
            raise OutputError(f"{self.out}: the final merge failed ({e.strerror or e}); nothing was written there "
                          f"and every row is intact in {self.parts}: free space, then run again with --resume "
                          f"to finish") from None
        _reached("merge")
        self.marker.update(merged=identity(tmp))
        self.folder.save(self.marker)
        _reached("rename")
        self._publish(tmp)
        self._remove_parts(self.marker)
        return total

    def _publish(self, tmp: Path) -> None:
        """The merged file takes OUT's name; one the run was not told it may replace is never replaced."""
        if self.marker["base"] is None and not self.marker["overwrite"]:
            try:
                os.link(tmp, self.out)
            except FileExistsError:
                raise OutputExists(f"{self.out}: appeared while the run was writing; not overwritten "
                                      f"(the rows are in {self.parts}; --resume after moving it away)") from None
            _reached("linked")
            os.unlink(tmp)
        else:
            if self.marker["base"] is not None and identity(self.out) != self.marker["base"]:
                raise OutputExists(f"{self.out}: changed while the run was writing; not overwritten")
            os.replace(tmp, self.out)
        _reached("published")


def _index(files, frames, times, faces) -> dict:
    return {"file": list(files), "frame": list(frames), "time_s": list(times), "face": list(faces)}


def _write(path: Path, fmt: str, index: dict, feats: np.ndarray, names, options: dict | None = None) -> None:
    """One table of rows to ``path`` in format ``fmt`` (.parquet, .csv or .npz), directly."""
    if fmt == ".npz":
        with open(path, "wb") as fh:
            # np.savez's own first parameter is called "file", hence the plural keys.
            np.savez(fh, features=feats.astype(np.float32), files=np.asarray(index["file"], dtype=str),
                     frames=np.asarray(index["frame"], dtype=np.int64),
                     times=np.asarray(index["time_s"], dtype=np.float64),
                     faces=np.asarray(index["face"], dtype=np.int64), feature_names=np.asarray(names),
                     options=np.asarray(json.dumps(options or {})))
        return
    df = _frame(index, feats, names)
    if fmt == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)


def _frame(index: dict, feats: np.ndarray, names):
    import pandas as pd
    return pd.concat([pd.DataFrame({"file": pd.Series(index["file"], dtype=object),
                                    "frame": pd.Series(index["frame"], dtype=np.int64),
                                    "time_s": pd.Series(index["time_s"], dtype=np.float64),
                                    "face": pd.Series(index["face"], dtype=np.int64)}),
                      pd.DataFrame(feats, columns=names)], axis=1)


def _read(path: Path, columns=None) -> dict:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {"file": list(z["files"]), "frame": list(z["frames"]), "time_s": list(z["times"]),
                    "face": list(z["faces"]), "features": z["features"]}
    import pandas as pd
    if suffix == ".csv":  # a file named "NA" or "007" stays that string
        df = pd.read_csv(path, usecols=columns, dtype={"file": str}, keep_default_na=False)
    else:
        df = pd.read_parquet(path, columns=columns)
    return {c: list(df[c]) for c in (columns or INDEX_COLUMNS)}


def _stored_options(path: Path) -> dict | None:
    """The options a finished OUT was written with (parquet and npz keep them; a CSV's are in its
    record beside it, refused when missing or written for another file)."""
    if path.suffix.lower() == ".csv":
        return _csv_options(path)
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq
            meta = pq.read_schema(path).metadata or {}
            return json.loads(meta[METADATA_KEY]) if METADATA_KEY in meta else None
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return json.loads(str(z["options"])) if "options" in z.files else None
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}: cannot be read as an earlier extract's output ({e})") from None
    return None


def _write_csv_record(out: Path, record: dict) -> None:
    """The CSV's record, replacing only a record of ours: a file of that name the user had stays."""
    path = csv_record(out)
    if path.exists():
        try:
            ours = json.loads(path.read_text(encoding="utf-8")).get("tool") == TOOL
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise OutputExists(f"{path}: exists and is not a record faceattr wrote; move it away (the rows are "
                               f"intact in {out.with_name(out.name + '.parts')})")
    write_text(path, json.dumps(record, indent=1))


def _csv_options(path: Path) -> dict:
    record = csv_record(path)
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        valid = stored.get("tool") == TOOL and stored.get("identity") == identity(path)
    except (OSError, ValueError, AttributeError):
        valid = False
    if not valid:
        raise InputError(f"{path}: a CSV cannot hold the options it was written with, and its record {record.name} "
                         f"is missing or describes another file, so a resume cannot check that its rows match "
                         f"this run's; --overwrite starts again (parquet and npz keep their options inside)")
    return stored["options"]


def _merge_parquet(sources, tmp: Path, names, options) -> int:
    import pyarrow.parquet as pq
    writer, total = None, 0
    try:
        for src in sources:
            table = pq.read_table(src)
            if writer is None:
                meta = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(options).encode()}
                writer = pq.ParquetWriter(tmp, table.schema.with_metadata(meta))
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata))
            total += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:  # no face at all: an empty table with the columns
        import pyarrow as pa
        table = pa.Table.from_pandas(_frame(_index([], [], [], []), np.zeros((0, len(names)), np.float32), names),
                                     preserve_index=False)
        pq.write_table(table.replace_schema_metadata({METADATA_KEY: json.dumps(options).encode()}), tmp)
    return total


def _merge_csv(sources, tmp: Path, names, options) -> int:
    total = 0
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(list(INDEX_COLUMNS) + list(names)) + "\n")
        for src in sources:
            with open(src, encoding="utf-8", newline="") as part:
                next(part)  # its header (column names hold no newline)
                # Copied line by line as csv.reader counts rows, not lines: a name may hold a newline.
                total += sum(1 for _ in csv.reader(_copied(part, fh)))
    return total


def _copied(lines, out):
    """``lines``, each written to ``out`` as it is read."""
    for line in lines:
        out.write(line)
        yield line


def _merge_npz(sources, tmp: Path, names, options) -> int:
    data = [_read(src) for src in sources]
    index = {c: [v for d in data for v in d[c]] for c in INDEX_COLUMNS}
    feats = np.concatenate([d["features"] for d in data]) if data else np.zeros((0, len(names)), np.float32)
    _write(tmp, ".npz", index, feats, names, options)
    return len(index["file"])


MERGERS = {".parquet": _merge_parquet, ".csv": _merge_csv, ".npz": _merge_npz}
