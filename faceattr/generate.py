"""The generative side (paper sections 4.2-4.3): reconstruct, sample, interpolate, manipulate, t-SNE.

Each returns its faces as an array and, given ``out``, writes them as a PNG grid there; a file
already at ``out`` is never replaced (FileExistsError), as every faceattr command that writes."""
from __future__ import annotations

import numpy as np
import torch

from .data.attributes import ATTRIBUTE_NAMES
from .generate_limits import MAX_SAMPLES, MAX_TSNE_FACES, check_steps, check_strength
from .grid import save_grid
from .errors import ImageError, InputError, OutputExists

MAX_PER_CLASS = 2000


def attribute_vectors(latents: np.ndarray, labels: np.ndarray, slices: dict, max_per_class: int = MAX_PER_CLASS,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Per view: (40, latent_dim) = mean latent of up to ``max_per_class`` positive faces minus the
    mean of up to ``max_per_class`` negative ones (a seeded random draw when there are more)."""
    rng = np.random.default_rng(seed)
    out = {}
    for view, sl in slices.items():
        z = latents[:, sl]
        vecs = np.zeros((len(ATTRIBUTE_NAMES), z.shape[1]), np.float32)
        for a in range(len(ATTRIBUTE_NAMES)):
            pos, neg = np.flatnonzero(labels[:, a] == 1), np.flatnonzero(labels[:, a] == 0)
            if len(pos) == 0 or len(neg) == 0:
                continue
            pos = rng.choice(pos, min(len(pos), max_per_class), replace=False)
            neg = rng.choice(neg, min(len(neg), max_per_class), replace=False)
            vecs[a] = z[pos].mean(0) - z[neg].mean(0)
        out[view] = vecs
    return out


# ---- grids from the shipped views ---------------------------------------------------------------

def _faces(items, align: str) -> np.ndarray:
    """The largest face of each input (a photo, or a ready face with ``align`` "celeba" or "none"),
    found as every entry point finds faces (``FaceFinder``); an input without one is an error."""
    from .faces.finder import FaceFinder
    from .faces.options import FaceOptions
    out = []
    for p in FaceFinder(FaceOptions(align, largest_face=True)).faces(items):
        if p.error:
            raise ImageError(p.error)
        if not len(p.faces):
            raise InputError(f"{p.name}: no face found")
        out.append(p.faces[0])
    return np.stack(out)


def _to_tensor(faces: np.ndarray) -> torch.Tensor:
    from .nn.models import to_float_images
    return to_float_images(torch.from_numpy(np.require(faces, np.uint8, ["C", "W"])))


@torch.inference_mode()
def encode_means(vae, faces: np.ndarray) -> torch.Tensor:
    return vae.encoder(_to_tensor(faces))[0]


@torch.inference_mode()
def decode(vae, z: torch.Tensor) -> torch.Tensor:
    return vae.decoder(z.float())


def reconstruct(bundle, items, align: str = "auto", views=None, out=None) -> np.ndarray:
    """Per input, a row: the aligned face, then its reconstruction by each view (from the mean)."""
    faces = _faces(items, align)
    views = list(views) if views else bundle.views
    x = _to_tensor(faces)
    cols = [x]
    for v in views:
        vae = bundle.load_vae(v)
        cols.append(decode(vae, encode_means(vae, faces)))
    tiles = torch.stack(cols, dim=1).flatten(0, 1)  # (n * (1 + views), 3, 64, 64)
    if out:
        save_grid(out, [tiles], per_row=1 + len(views), scale=2, overwrite=False)
    return tiles.numpy()


def sample(bundle, view: str = "relu3_1", n: int = 64, seed: int = 0, out=None) -> np.ndarray:
    """Faces decoded from z ~ N(0, I)."""
    if not 1 <= n <= MAX_SAMPLES:
        raise InputError(f"n must be from 1 to {MAX_SAMPLES}, got {n!r}")
    vae = bundle.load_vae(view)
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, vae.cfg.latent_dim, generator=g)
    imgs = decode(vae, z)
    if out:
        save_grid(out, [imgs], per_row=min(8, n), scale=2, overwrite=False)
    return imgs.numpy()


def interpolate(bundle, a, b, steps: int = 11, view: str = "relu3_1", align: str = "auto", out=None) -> np.ndarray:
    """Decoded (1 - t) z_A + t z_B for t = 0 ... 1 in ``steps`` steps (latent means)."""
    steps = check_steps(steps)
    vae = bundle.load_vae(view)
    z = encode_means(vae, _faces([a, b], align))
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    imgs = decode(vae, (1 - t) * z[0] + t * z[1])
    if out:
        save_grid(out, [imgs], per_row=steps, scale=2, overwrite=False)
    return imgs.numpy()


def manipulate_latent(z: torch.Tensor, vector: torch.Tensor, strength: float, steps: int) -> torch.Tensor:
    """z + a * v for a from 0 to ``strength`` in ``steps`` steps: (steps, latent_dim)."""
    a = torch.linspace(0, strength, steps).unsqueeze(1)
    return z.unsqueeze(0) + a * vector.unsqueeze(0)


def manipulate(bundle, item, attribute: str, strength: float = 1.0, steps: int = 11, view: str = "relu3_1",
               align: str = "auto", out=None) -> np.ndarray:
    """Add (strength > 0) or remove (strength < 0) an attribute by its latent vector, decoded."""
    from .data.attributes import attribute_index
    steps, strength = check_steps(steps), check_strength(strength)
    a = attribute_index(attribute)
    vecs = bundle.attribute_vectors()
    if view not in vecs:
        raise InputError(f"no attribute vectors for view {view!r}; available: {', '.join(vecs)}")
    vae = bundle.load_vae(view)
    z = encode_means(vae, _faces([item], align))[0]
    imgs = decode(vae, manipulate_latent(z, torch.from_numpy(vecs[view][a]), strength, steps))
    if out:
        save_grid(out, [imgs], per_row=steps, scale=2, overwrite=False)
    return imgs.numpy()


def grid_assignment(embedding: np.ndarray, side: int) -> np.ndarray:
    """Place side*side 2-D points on a side x side grid: each point gets one cell, minimising the
    total squared distance between the points (rescaled to the unit square) and cell centres
    (an optimal assignment, scipy's linear_sum_assignment). Returns the cell index of each point."""
    from scipy.optimize import linear_sum_assignment
    e = embedding - embedding.min(0)
    e = e / np.maximum(e.max(0), 1e-12)
    g = (np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2) + 0.5) / side
    cost = ((e[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    cell = np.empty(len(e), dtype=np.int64)
    cell[rows] = cols
    return cell


def tsne_map(bundle, faces: np.ndarray, view: str = "relu3_1", side: int = 25, seed: int = 0, out=None) -> np.ndarray:
    """Faces laid out on a side x side grid by a 2-D t-SNE of their latent means (paper 4.3.3)."""
    from sklearn.manifold import TSNE
    n = side * side
    if n > MAX_TSNE_FACES:
        raise InputError(f"a t-SNE map holds at most {MAX_TSNE_FACES} faces, asked for {side}x{side} = {n}")
    if len(faces) < n:
        raise InputError(f"need {n} faces for a {side}x{side} map, got {len(faces)}")
    faces = faces[:n]
    vae = bundle.load_vae(view)
    z = encode_means(vae, faces).numpy()
    distinct = len(np.unique(z.round(5), axis=0))
    if distinct < 4:
        # scikit-learn's t-SNE crashes (even segfaults) on identical points.
        raise InputError(f"the {n} faces give only {distinct} distinct latent codes; a t-SNE map needs "
                         f"different faces")
    emb = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30.0, n - 1.0)).fit_transform(z)
    cell = grid_assignment(emb, side)
    ordered = np.empty_like(faces)
    ordered[cell] = faces
    if out:
        save_grid(out, [ordered], per_row=side, overwrite=False)
    return ordered


def write_attribute_vectors(bundle, root, out=None, device=None, max_images: int | None = None, *,
                            overwrite: bool = False) -> str:
    """Recompute attribute vectors from ROOT's train split; write them to a new ``out`` (an
    existing one only with ``overwrite``), or into the bundle (Bundle.put_arrays: the manifest
    never points at a half-written file), which must not be the one installed with faceattr."""
    from .atomic import atomic_new_path, atomic_path, check_new_output, check_writable
    from .inference.bundle import MANIFEST, is_installed_bundle
    if out is not None:
        check_new_output(out, overwrite)
    elif is_installed_bundle(bundle.root):
        raise OutputExists(f"{bundle.root}: is the bundle installed with faceattr, which is never rewritten; "
                              f"give --out FILE.npz, or --weights a bundle of your own "
                              f"(faceattr heads fit --out DIR makes one)")
    else:
        check_writable(bundle.root / MANIFEST)
    vecs, data = compute_attribute_vectors(bundle, root, device, max_images)
    if out is not None:
        with (atomic_path if overwrite else atomic_new_path)(out) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **vecs)
        return str(out)
    return str(bundle.put_arrays("attribute_vectors", vecs, data=data))


def compute_attribute_vectors(bundle, root, device=None, max_images: int | None = None) -> tuple[dict, str]:
    """(per view (40, latent_dim) vectors from ROOT's train split, what they were computed from)."""
    from .data.celeba import CelebA
    from .inference.feature_cache import FeatureCache
    ds = CelebA.load(root, "train", max_images=max_images)
    feats = FeatureCache(bundle, device=device).features(ds)
    return (attribute_vectors(feats, ds.labels, bundle.view_slices()),
            f"{ds.root} train split: mean latent of up to {MAX_PER_CLASS} positive faces minus "
            f"that of up to {MAX_PER_CLASS} negative faces, per attribute and view")
