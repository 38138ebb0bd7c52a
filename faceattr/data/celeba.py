"""Reader for CelebA in its official layout (files at the root, or under ``celeba/``)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .attributes import ATTRIBUTE_NAMES, N_ATTRIBUTES
from ..faces.geometry import CROP_BOX, IMAGE_SIZE, crop_aligned
from ..faces.images import ImageError, load_rgb
from ..errors import DatasetError

ATTR_FILE = "list_attr_celeba.txt"
IDENTITY_FILE = "identity_CelebA.txt"  # file name -> person (optional)
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_DIR = "img_align_celeba"
SPLITS = {"train": 0, "val": 1, "test": 2}
SPLIT_NAMES = {v: k for k, v in SPLITS.items()}
SPLIT_CHOICES = ("train", "val", "test", "all")


# The project's scripts (benchmarks/, experiments/, tools/, examples/) and tests find a CelebA folder
# here when no --root is given: nothing defaults to a path of the machine they were written on.
ROOT_ENV = "FACEATTR_CELEBA_MINI"


def add_root_argument(parser, help: str = "a CelebA folder in the official layout") -> None:
    """``--root DIR`` on an argparse parser: required, unless $FACEATTR_CELEBA_MINI names the folder."""
    env = os.environ.get(ROOT_ENV)
    parser.add_argument("--root", default=env, required=env is None, metavar="DIR",
                        help=f"{help} (default: ${ROOT_ENV}{', ' + env if env else ', unset'})")


def find_root(root: str | os.PathLike) -> Path:
    """The folder holding the annotation files: ``root`` itself or ``root/celeba``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    for candidate in (root, root / "celeba"):
        if (candidate / ATTR_FILE).is_file():
            return candidate
    raise DatasetError(
        f"{root}: no {ATTR_FILE} found there or under {root / 'celeba'}; expected the official "
        f"CelebA layout ({ATTR_FILE}, {PARTITION_FILE}, {IMAGE_DIR}/)"
    )


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing")
    # splitlines() accepts CRLF and LF alike.
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def read_attributes(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """``list_attr_celeba.txt`` -> (file names, labels (N, 40) uint8 in {0, 1})."""
    path = Path(path)
    lines = _lines(path)
    if len(lines) < 2:
        raise DatasetError(f"{path}: too short; expected a count line and a names line")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DatasetError(f"{path}, line 1: expected the image count, got {lines[0][:40]!r}") from None
    names = tuple(lines[1].split())
    if names != ATTRIBUTE_NAMES:
        raise DatasetError(f"{path}, line 2: expected the 40 CelebA attribute names, got {len(names)} "
                          f"names starting {' '.join(names[:3])!r}")
    files, rows, line_of = [], [], []
    for lineno, line in enumerate(lines[2:], start=3):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != N_ATTRIBUTES + 1:
            raise DatasetError(f"{path}, line {lineno}: expected a file name and {N_ATTRIBUTES} values, "
                              f"got {len(tokens)} fields")
        files.append(tokens[0])
        rows.append(tokens[1:])
        line_of.append(lineno)
    # The values are checked and converted as one array: per value in Python, this file (200k
    # rows in full CelebA) took most of a benchmark run's loading time.
    # "<U3": three characters are enough to tell "1" and "-1" from anything else, however long
    values = np.array(rows, dtype="<U3").reshape(-1, N_ATTRIBUTES)
    bad = ~((values == "1") | (values == "-1"))
    if bad.any():
        raise DatasetError(f"{path}, line {line_of[int(np.argmax(bad.any(1)))]}: attribute values must be -1 or 1")
    for name, lineno in zip(files, line_of):
        _check_file_name(name, path, lineno)
    _refuse_repeated(files, values, line_of, path)
    if len(files) != count:
        raise DatasetError(f"{path}, line 1: says {count} images but {len(files)} rows follow")
    return files, (values == "1").astype(np.uint8)


def _refuse_repeated(files: list[str], values: np.ndarray, line_of: list[int], path: Path) -> None:
    """Each image has one row: the first file listed twice is named with both lines."""
    if len(set(files)) == len(files):
        return
    first = {}
    for i, name in enumerate(files):
        if name in first:
            same = "the same labels" if (values[first[name]] == values[i]).all() else "different labels"
            raise DatasetError(f"{path}, lines {line_of[first[name]]} and {line_of[i]}: {name!r} is listed twice, "
                              f"with {same}; each image must have one row")
        first[name] = i


def read_partition(path: str | os.PathLike) -> dict[str, int]:
    """``list_eval_partition.txt`` -> {file name: 0 train | 1 val | 2 test}."""
    path = Path(path)
    out, first_line = {}, {}
    for lineno, line in enumerate(_lines(path), start=1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 2 or tokens[1] not in ("0", "1", "2"):
            raise DatasetError(f"{path}, line {lineno}: expected 'NNNNNN.jpg 0|1|2', got {line[:60]!r}")
        name, split = tokens[0], int(tokens[1])
        _check_file_name(name, path, lineno)
        if name in out:
            earlier, was = first_line[name], out[name]
            what = "in two partitions" if was != split else "twice"
            raise DatasetError(f"{path}, lines {earlier} and {lineno}: {name!r} is listed {what} "
                              f"({SPLIT_NAMES[was]}, then {SPLIT_NAMES[split]}); each image belongs to one")
        out[name], first_line[name] = split, lineno
    return out


def _check_file_name(name: str, path: Path, lineno: int) -> None:
    """A listed image is a plain file name inside the image folder, never a path out of it."""
    if "/" in name or "\\" in name or name in (".", ".."):
        raise DatasetError(f"{path}, line {lineno}: {name!r} is not a plain file name in {IMAGE_DIR}/")


def _crop_file(path: str) -> np.ndarray:
    img = load_rgb(path)
    try:
        return crop_aligned(img)
    except ValueError as e:
        raise ImageError(f"{path}: {e}") from None


def _check_lists_agree(files: list[str], partition: dict[str, int], base: Path) -> None:
    """Every image of the attribute list has a split and every image of the partition a row."""
    listed = set(files)
    unlisted = [f for f in partition if f not in listed]
    if unlisted:
        raise DatasetError(f"{base / PARTITION_FILE}: {len(unlisted)} image(s) have no row in "
                          f"{ATTR_FILE}, e.g. {', '.join(unlisted[:5])}")
    without_split = [f for f in files if f not in partition]
    if without_split:
        raise DatasetError(f"{base / ATTR_FILE}: {len(without_split)} image(s) have no row in "
                          f"{PARTITION_FILE}, e.g. {', '.join(without_split[:5])}")


def _check_images_exist(base: Path, files: list[str]) -> None:
    """Every listed image is a file in the image folder: one listing of the folder, not a
    ``stat`` per image."""
    folder = base / IMAGE_DIR
    try:
        with os.scandir(folder) as entries:
            present = {e.name for e in entries if e.is_file()}
    except OSError:
        present = set()
    missing = [f for f in dict.fromkeys(files) if f not in present]
    if missing:
        raise DatasetError(f"{folder}: {len(missing)} listed image(s) missing, e.g. {', '.join(missing[:5])}")


@dataclass
class CelebA:
    """One split of a CelebA folder: file names, 0/1 labels, and the 64x64 training crops.

    ``split`` is train, val, test or all; ``max_images`` keeps the first N of the split in file order.
    Every listed image must exist; the error names the missing ones.
    """

    root: Path
    split: str
    files: list[str]
    labels: np.ndarray  # (N, 40) uint8, 1 = attribute present

    @classmethod
    def load(cls, root: str | os.PathLike, split: str = "train", max_images: int | None = None,
             check_images: bool = True) -> "CelebA":
        return cls.load_splits(root, (split,), max_images, check_images)[split]

    @classmethod
    def load_splits(cls, root: str | os.PathLike, splits, max_images: int | None = None,
                    check_images: bool = True) -> dict[str, "CelebA"]:
        """{split: CelebA} for each of ``splits``, the folder's lists read once for all of them."""
        for split in splits:
            if split not in SPLIT_CHOICES:
                raise DatasetError(f"split must be one of {', '.join(SPLIT_CHOICES)}, got {split!r}")
        if max_images is not None and max_images < 1:
            raise DatasetError(f"max_images must be at least 1, got {max_images}")
        base = find_root(root)
        files, labels = read_attributes(base / ATTR_FILE)
        partition = read_partition(base / PARTITION_FILE)
        _check_lists_agree(files, partition, base)
        out = {}
        for split in splits:
            keep = [i for i, f in enumerate(files) if split == "all" or partition[f] == SPLITS[split]][:max_images]
            out[split] = cls(base, split, [files[i] for i in keep], labels[keep])
        if check_images:
            _check_images_exist(base, [f for ds in out.values() for f in ds.files])
        return out

    def __len__(self) -> int:
        return len(self.files)

    def paths(self) -> list[Path]:
        return [self.root / IMAGE_DIR / f for f in self.files]

    def people(self) -> np.ndarray | None:
        """Each image's person (CelebA's identity number, from identity_CelebA.txt), or None where
        the folder has no identity list. A listed image without a person is an error naming it."""
        path = self.root / IDENTITY_FILE
        if not path.is_file():
            return None
        person = {}
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            cells = line.split()
            if not cells:
                continue
            if len(cells) != 2 or not cells[1].isdigit():
                raise DatasetError(f"{path}, line {number}: expected a file name and a person's number, got {line!r}")
            person[cells[0]] = int(cells[1])
        missing = [f for f in self.files if f not in person]
        if missing:
            raise DatasetError(f"{path}: {len(missing)} image(s) have no person, e.g. {', '.join(missing[:5])}")
        return np.array([person[f] for f in self.files], np.int64)

    def cache_key(self) -> str:
        """A hash of what the crops are made of: the crop geometry and every image's name, size
        and modification time (a replaced image changes the key)."""
        h = hashlib.sha256()
        h.update(f"{self.root.resolve()}|{CROP_BOX}|{IMAGE_SIZE}|".encode())
        for f, p in zip(self.files, self.paths()):
            st = p.stat()
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:20]

    def crops(self, cache_dir: str | os.PathLike | None = None, workers: int | None = None,
              progress: bool = False, use_cache: bool = True) -> np.ndarray:
        """All images as (N, 64, 64, 3) uint8 training crops.

        Decoded once in ``workers`` processes (default: all cores) and kept in the cache
        (faceattr.cache), so training is never starved by JPEG decoding.
        """
        from ..cache import cached_array
        return cached_array(
            f"crops-{self.cache_key()}-{len(self)}.npy",
            lambda a: a.shape == (len(self), IMAGE_SIZE, IMAGE_SIZE, 3),
            lambda: decode_crops([str(p) for p in self.paths()], workers=workers, progress=progress),
            folder=cache_dir, use_cache=use_cache)


def decode_crops(paths: list[str], workers: int | None = None, progress: bool = False) -> np.ndarray:
    """Decode and crop CelebA aligned images in parallel; errors name the file."""
    workers = workers or os.cpu_count() or 1
    out = np.empty((len(paths), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    if workers == 1 or len(paths) < 64:
        it = map(_crop_file, paths)
        pool = None
    else:
        pool = get_context("spawn" if os.name == "nt" else "fork").Pool(workers)
        it = pool.imap(_crop_file, paths, chunksize=64)
    try:
        if progress:
            from tqdm import tqdm
            it = tqdm(it, total=len(paths), desc="decoding faces", unit="img")
        for i, crop in enumerate(it):
            out[i] = crop
    finally:
        if pool is not None:
            pool.terminate()
    return out


def __getattr__(name: str):
    # The name before faceattr.errors; kept for one release.
    if name == "CelebAError":
        import warnings
        warnings.warn("faceattr.data.celeba.CelebAError is now faceattr.errors.DatasetError", DeprecationWarning,
                      stacklevel=2)
        return DatasetError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
