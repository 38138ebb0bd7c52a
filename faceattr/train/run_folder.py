"""A training run's folder: ``RunFolder`` (its lock, checkpoint, metrics log and reconstruction
grids), and when a run stops early (``StopRule``)."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from ..atomic import write_text
from ..errors import InputError, NonFiniteLoss, NotAFolder, OutputExists
from ..locks import FolderLock

RUN_FILES = ("checkpoint.pt", "metrics.jsonl", "view.pt")  # what a run folder holds
GRIDS = "reconstructions_epoch*.png"


def run_folder(out: Path) -> Path:
    """The folder a run writes into, made if missing. A link to a folder is followed (the run's
    lock and files are then on the folder itself, whichever name a second run uses); anything
    else that is not a folder is refused, naming what it is."""
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        what = f"a link to {os.readlink(out)}, which is not a folder" if out.is_symlink() else "a file, not a folder"
        raise NotAFolder(f"{out}: is {what}; --out takes a folder for the run")
    if out.is_symlink():
        out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


class RunFolder:
    """The files of one run. Only rank 0 writes (``writer``); every process reads the checkpoint."""

    def __init__(self, path, writer: bool = True):
        self.path, self.writer = Path(path), writer
        self._lock: FolderLock | None = None

    checkpoint = property(lambda self: self.path / "checkpoint.pt")
    log_path = property(lambda self: self.path / "metrics.jsonl")
    view = property(lambda self: self.path / "view.pt")

    def grid(self, epoch: int) -> Path:
        return self.path / f"reconstructions_epoch{epoch}.png"

    def open(self) -> "RunFolder":
        """Make (or follow) the folder and take its lock: a second process writing the same run
        would double its log's rows and overwrite its checkpoints (FolderInUse)."""
        self.path = run_folder(self.path)
        if self.writer:
            self._lock = FolderLock(self.path, "another faceattr train",
                                    "wait for it to finish, or train into another --out").acquire()
        return self

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def claim(self, overwrite: bool) -> None:
        """A fresh run: a folder holding another run is refused, or (``overwrite``) emptied of it."""
        old = [self.path / f for f in RUN_FILES if (self.path / f).exists()] + sorted(self.path.glob(GRIDS))
        if not old or not self.writer:
            return
        if not overwrite:
            raise OutputExists(f"{self.path}: already holds a training run ({', '.join(p.name for p in old[:3])}); "
                               f"pass --resume to continue it, --overwrite to replace it, or another --out")
        for p in old:
            p.unlink()

    # ---- the metrics log ----------------------------------------------------------------------
    def log(self, record: dict) -> None:
        if self.writer:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    def records(self) -> list[dict]:
        """The log's records. A torn last line (the process was killed mid-write) is skipped;
        a bad line before the last is an error naming the file and line."""
        if not self.log_path.is_file():
            return []
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        out = []
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines):
                    break
                raise InputError(f"{self.log_path}, line {i}: not a JSON record; the log is damaged") from None
        return out

    def restart_log(self) -> None:
        if self.writer:
            self.log_path.unlink(missing_ok=True)

    def truncate_log(self, step: int) -> None:
        """Drop records written after the checkpoint we resume from, so the log reads as one run."""
        if self.writer and self.log_path.is_file():
            keep = [rec for rec in self.records() if rec.get("step", 0) <= step]
            write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in keep))

    def last_metrics(self) -> dict:
        last = {}
        for rec in self.records():
            if "kl" in rec and "event" not in rec:
                last = rec
        return last


def check_finite(metrics: dict, step: int, checkpoint: Path) -> None:
    """Stop a diverged run with one line that says when, which term, and where to resume from."""
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if not bad:
        return
    if checkpoint.is_file():
        from ..nn import checkpoint as ckpt
        saved = ckpt.load(checkpoint).get("step", "?")
        # --resume refuses another --lr (RESUME_MUST_MATCH); --init carries the weights over.
        where = (f"the last checkpoint is {checkpoint} (step {saved}); start again with a lower "
                 f"--lr and --init {checkpoint} in another --out")
    else:
        where = f"no checkpoint was written yet in {checkpoint.parent}; start again with a lower --lr"
    terms = ", ".join(f"{k} = {metrics[k]}" for k in bad)
    raise NonFiniteLoss(f"training diverged at step {step}: {terms}; {where}")


class StopRule:
    """When a run stops before its epochs are done: after ``max_steps`` steps in all, or once
    ``time_limit_s`` seconds have passed since it was made (as an interruption would)."""

    def __init__(self, max_steps: int | None = None, time_limit_s: float | None = None):
        self.max_steps, self.time_limit_s, self.started = max_steps, time_limit_s, time.perf_counter()

    def __call__(self, step: int) -> bool:
        return (self.max_steps is not None and step >= self.max_steps) or (
            self.time_limit_s is not None and time.perf_counter() - self.started > self.time_limit_s)


class ImageRate:
    """Training images per second since the last ``take``."""

    def __init__(self):
        self.t0, self.n = time.perf_counter(), 0

    def add(self, n: int) -> None:
        self.n += n

    def take(self) -> float:
        rate = self.n / max(time.perf_counter() - self.t0, 1e-9)
        self.t0, self.n = time.perf_counter(), 0
        return rate
