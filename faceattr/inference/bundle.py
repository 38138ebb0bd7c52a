"""The shipped bundle: five views, the 40 attribute heads and attribute vectors, verified by sha256.

Like a torchvision weights enum, the bundle carries its preprocessing with its files: faces are
64x64 RGB in [0, 1], cropped from CelebA-aligned geometry (faceattr.geometry), so no caller has to
remember it.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import io
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..nn.config import ModelConfig
from ..faces.geometry import CROP_BOX, IMAGE_SIZE
from ..errors import BundleError

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "faceattr-bundle/1"
PREPROCESSING = {"pixels": "RGB in [0, 1]", "image_size": IMAGE_SIZE,
                 "celeba_crop_box": list(CROP_BOX), "alignment": "5-point similarity to CelebA template"}


# Where the shipped bundle is found, in order: FACEATTR_PRETRAINED; inside the installed package
# (a wheel maps the repository's pretrained/ to faceattr/weights/); the pretrained/ folder beside
# the package (a clone, or an editable install).
_PACKAGE = Path(str(importlib.resources.files("faceattr")))
PACKAGED = _PACKAGE / "weights"
IN_CLONE = _PACKAGE.parent / "pretrained"


def default_bundle_dir() -> Path:
    env = os.environ.get("FACEATTR_PRETRAINED")
    if env:
        return Path(env)
    for candidate in (PACKAGED, IN_CLONE):
        if (candidate / MANIFEST).is_file():
            return candidate
    raise BundleError(
        f"no faceattr weights bundle found: not in the installed package ({PACKAGED}), nor beside it "
        f"({IN_CLONE}). Reinstall faceattr from a wheel or a clone (pip install faceattr-*.whl, or "
        f"pip install . in a clone), set FACEATTR_PRETRAINED=DIR, or pass --weights DIR")


def is_installed_bundle(root: str | os.PathLike) -> bool:
    """Whether ``root`` is the bundle installed with faceattr (in the package, or a clone's
    pretrained/): commands never rewrite it; a user's changes go into a bundle of their own."""
    root = Path(root).resolve()
    return any((c / MANIFEST).is_file() and c.resolve() == root for c in (PACKAGED, IN_CLONE))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# A file's hash is checked once per process and identity: path, inode, size, modification and
# change time. Replacing a file (even at the same size with its mtime restored) changes the inode
# or the ctime, which no user can set back, so the next load hashes it again.
@lru_cache(maxsize=64)
def _verified(path: str, inode: int, size: int, mtime_ns: int, ctime_ns: int, expected: str) -> bool:
    return sha256_file(path) == expected


@dataclass
class Bundle:
    root: Path
    manifest: dict

    @classmethod
    def load(cls, weights: str | os.PathLike | None = "pretrained") -> "Bundle":
        root = default_bundle_dir() if weights in (None, "pretrained") else Path(weights)
        path = root / MANIFEST
        if not path.is_file():
            raise BundleError(f"{root}: no {MANIFEST}; expected a faceattr weights folder (the one "
                              f"installed with faceattr, FACEATTR_PRETRAINED=DIR, or --weights DIR)")
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise BundleError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(manifest, dict):
            raise BundleError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
        if manifest.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{path}: format {manifest.get('format')!r}, expected {BUNDLE_FORMAT!r}")
        return cls(root, manifest)

    @property
    def views(self) -> list[str]:
        return list(self.manifest["views"])

    @property
    def sha256(self) -> str:
        """One hash for the whole bundle: of its files' hashes."""
        entries = sorted(e["sha256"] for e in self._entries())
        return hashlib.sha256("".join(entries).encode()).hexdigest()

    def views_sha256(self, views=None) -> str:
        """One hash for the features of ``views`` (default: all, in order): of their names and
        files' hashes, and nothing else, so refitted heads or new attribute vectors leave it as it is."""
        names = list(views) if views else self.views
        return hashlib.sha256("".join(f"{v}:{self.view_entry(v)['sha256']};" for v in names).encode()).hexdigest()

    def _entries(self):
        yield from self.manifest["views"].values()
        for key in ("heads", "attribute_vectors"):
            if key in self.manifest:
                yield self.manifest[key]

    def file(self, entry: dict) -> Path:
        """The entry's file, after checking its sha256 against the manifest."""
        path = self.root / entry["file"]
        if not path.is_file():
            raise BundleError(f"{path}: listed in {self.root / MANIFEST} but missing")
        st = path.stat()
        if not _verified(str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, entry["sha256"]):
            raise BundleError(f"{path}: sha256 does not match {self.root / MANIFEST}; the file is "
                              f"corrupt or was replaced. Refusing to load it.")
        return path

    def view_slices(self, views=None) -> dict[str, slice]:
        """Each view's columns in the concatenated features of ``views`` (default: all, in order)."""
        out, start = {}, 0
        for v in (list(views) if views else self.views):
            d = self.view_entry(v)["model_config"]["latent_dim"]
            out[v] = slice(start, start + d)
            start += d
        return out

    def view_entry(self, name: str) -> dict:
        try:
            return self.manifest["views"][name]
        except KeyError:
            raise BundleError(f"view {name!r} not in {self.root}; available: {', '.join(self.views)}") from None

    def view_state(self, name: str) -> tuple[ModelConfig, dict]:
        """(config, float32 CPU state dict) of a view: what a pickled transformer keeps."""
        vae = self.load_vae(name)
        return vae.cfg, vae.state_dict()

    def load_vae(self, name: str, device="cpu"):
        """The view's VAE (float32, eval mode), after its sha256 is checked."""
        from ..nn.checkpoint import load_view
        return load_view(self.file(self.view_entry(name)), device)

    def head_views(self) -> list[str]:
        """The views whose features the heads were fitted on, in order."""
        if "heads" not in self.manifest:
            raise BundleError(f"{self.root}: the bundle has no attribute heads")
        return list(self.manifest["heads"].get("views", self.views))

    def heads(self) -> dict[str, np.ndarray]:
        if "heads" not in self.manifest:
            raise BundleError(f"{self.root}: the bundle has no attribute heads")
        with np.load(self.file(self.manifest["heads"]), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    # ---- writing ------------------------------------------------------------------------------
    def save_manifest(self) -> None:
        from ..atomic import write_text
        write_text(self.root / MANIFEST, json.dumps(self.manifest, indent=1))

    def put_arrays(self, key: str, arrays: dict[str, np.ndarray], **meta) -> Path:
        """Store ``arrays`` as the bundle's ``key`` entry (``heads``, ``attribute_vectors``).

        The file gets a new, content-derived name; then the manifest is replaced to point at it;
        then the file it replaced is removed. A crash at any step leaves a manifest whose every
        file matches its sha256 (at worst an unlisted file stays behind).
        """
        from ..atomic import atomic_path
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        name = f"{key}-{digest[:12]}.npz"
        with atomic_path(self.root / name) as tmp:
            tmp.write_bytes(data)
        old = self.manifest.get(key, {}).get("file")
        self.manifest[key] = {**meta, "file": name, "sha256": digest}
        self.save_manifest()
        if old and old != name:
            (self.root / old).unlink(missing_ok=True)
        return self.root / name

    def attribute_vectors(self) -> dict[str, np.ndarray]:
        if "attribute_vectors" not in self.manifest:
            raise BundleError(f"{self.root}: the bundle has no attribute vectors "
                              f"(faceattr attribute-vectors --root DIR computes them)")
        with np.load(self.file(self.manifest["attribute_vectors"]), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
