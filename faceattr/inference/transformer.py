"""``MultiViewVAEFeatures``: the multi-view latent features as a scikit-learn transformer."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..faces.detect import DETECT_MAX_SIDE
from ..faces.options import DEFAULT_MIN_FACE_SIZE, FaceOptions
from ..faces.prepare import FLAT_SIZE
from ..errors import InputError


# What a photo in which no face is found gives: "image" (the whole image, centred and resized,
# encoded as if it were the face: a row an estimator that refuses NaN can take), "nan" (a row of
# NaN) or "error" (transform raises, naming the inputs).
NO_FACE_POLICIES = ("image", "nan", "error")
MAX_NAMED = 10  # inputs a warning or an error names before "and N more"


class MultiViewVAEFeatures(TransformerMixin, BaseEstimator):
    """Concatenated latent means of the VAE-WGAN views (100 per view; 500 for the shipped five).

    Parameters
    ----------
    weights : "pretrained" or a path to a weights folder (with manifest.json).
    views : list of view names (e.g. ["relu3_1", "relu4_1"]), or one string of them separated by
        commas ("relu3_1,relu4_1"); None takes all of the bundle's.
    align : "auto" detects and aligns the largest face of each photo; "celeba" takes CelebA
        aligned 178x218 images (crop only); "none" takes ready 64x64 faces, also as flat float
        arrays of 64*64*3 values in [0, 1].
    batch_size : faces per encoder batch; None: the encoder's default for the device
        (faceattr.inference.encoder.default_batch_size).
    device : "cpu", "cuda" or None (CUDA when present).
    min_face_size : smallest face side in pixels searched for (align="auto").
    detect_size : faces are detected on a copy of each photo at most this many pixels on its
        longer side (align="auto"; larger finds smaller faces in big photos, slower).

    no_face : what a photo in which no face is found gives (align="auto"): "image" (default;
        the whole image, centred and resized, encoded as the face, so a Pipeline with an estimator
        that refuses NaN works), "nan" (a row of NaN) or "error" (transform raises, naming the
        inputs). Either way one warning names those inputs, and ``no_face_`` holds their indices
        (of the last transform).

    Input X: a list of image paths, PIL images or uint8 arrays, or an array (N, H, W, 3)
    (align="none": (N, 64, 64, 3) or (N, 12288)). Output: float32 (N, 100 * n_views), one row
    per input. An input that cannot be read gives a row of NaN and a warning naming it.
    """

    def __init__(self, weights="pretrained", views=None, align="auto", batch_size=None, device=None,
                 min_face_size=DEFAULT_MIN_FACE_SIZE, detect_size=DETECT_MAX_SIDE, no_face="image"):
        self.weights = weights
        self.views = views
        self.align = align
        self.batch_size = batch_size
        self.device = device
        self.min_face_size = min_face_size
        self.detect_size = detect_size
        self.no_face = no_face

    # ---- fitting: load the weights -------------------------------------------------------------
    def fit(self, X=None, y=None):
        from .bundle import Bundle
        self._face_options()  # align, min_face_size and detect_size checked here, not at transform
        if self.no_face not in NO_FACE_POLICIES:
            raise InputError(f"no_face must be one of {', '.join(NO_FACE_POLICIES)}, got {self.no_face!r}")
        if self.batch_size is not None and (isinstance(self.batch_size, (bool, np.bool_))
                                            or not isinstance(self.batch_size, (int, np.integer))
                                            or self.batch_size < 1):
            raise InputError(f"batch_size must be a positive integer or None, got {self.batch_size!r}")
        bundle = Bundle.load(self.weights)
        views = _view_list(self.views) if self.views is not None else bundle.views
        if not views:
            raise InputError("views must name at least one view")
        unknown = [v for v in views if v not in bundle.views]
        if unknown:
            raise InputError(f"view {unknown[0]!r} not in {bundle.root}; available: {', '.join(bundle.views)}")
        # CPU state dicts: the fitted transformer pickles, and loads on a machine without a GPU.
        self.view_states_ = {v: bundle.view_state(v) for v in views}
        self.views_ = views
        self.bundle_sha256_ = bundle.sha256
        self.latent_dims_ = [cfg.latent_dim for cfg, _ in self.view_states_.values()]
        self.n_features_out_ = int(sum(self.latent_dims_))
        if X is not None and _is_numeric_array(X):
            from sklearn.utils.validation import validate_data
            # Checks numeric inputs as any estimator does (sparse, complex, empty, NaN, 1-D) and
            # records n_features_in_; transform then requires flattened 64x64x3 faces.
            validate_data(self, X, accept_sparse=False, ensure_min_features=1, allow_nd=True)
        self._pipeline = None
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_pipeline", None)
        return state

    def __setstate__(self, state):
        # As skorch does: a transformer fitted on a GPU machine still loads where there is none.
        device = state.get("device")
        if device is not None and str(device).startswith("cuda"):
            import torch
            if not torch.cuda.is_available():
                warnings.warn(f"MultiViewVAEFeatures was saved with device={device!r} but CUDA is not "
                              f"available here; using the CPU", UserWarning, stacklevel=2)
                state = {**state, "device": "cpu"}
        self.__dict__.update(state)

    def _get_pipeline(self):
        pipe = getattr(self, "_pipeline", None)
        if pipe is None:
            from .encoder import MultiViewEncoder
            from .pipeline import FacePipeline
            from ..nn.models import VAE
            vaes = {name: VAE.from_state_dict(cfg, state) for name, (cfg, state) in self.view_states_.items()}
            encoder = MultiViewEncoder(vaes, device=self.device, batch_size=self.batch_size)
            pipe = self._pipeline = FacePipeline(encoder, options=self._face_options())
        return pipe

    def _face_options(self) -> FaceOptions:
        """The parameters as FaceOptions: one row per input, so its largest face."""
        return FaceOptions(self.align, largest_face=True, min_face_size=self.min_face_size,
                           detect_size=self.detect_size)

    # ---- transforming -------------------------------------------------------------------------
    def transform(self, X):
        check_is_fitted(self, "view_states_")
        if _is_numeric_array(X):
            from sklearn.utils.validation import validate_data
            X = validate_data(self, X, reset=False, accept_sparse=False, allow_nd=True,
                              ensure_min_features=1)
        items = _as_items(X, self.align)
        results = self._results(items)
        if not results:  # as validate_data says of an empty array, so a list and an array agree
            raise InputError(f"Found 0 inputs while a minimum of 1 is required by {type(self).__name__}.")
        out = np.full((len(results), self.n_features_out_), np.nan, dtype=np.float32)
        for i, r in enumerate(results):
            if r.faces:
                out[i] = r.faces[0].features
            elif r.error:
                warnings.warn(f"input {i} ({r.name}): {r.error}; its row is NaN", UserWarning, stacklevel=2)
        self._fill_no_face(out, items, results)
        return out

    def _fill_no_face(self, out: np.ndarray, items: list, results) -> None:
        """The rows of inputs that were read but hold no face, as ``no_face`` says; their indices
        go to ``no_face_``."""
        missing = [i for i, r in enumerate(results) if r.no_face]
        self.no_face_ = np.asarray(missing, dtype=np.int64)
        if not missing:
            return
        named = ", ".join(f"{i} ({results[i].name})" for i in missing[:MAX_NAMED])
        named += f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
        if self.no_face == "error":
            raise InputError(f"no face found in input(s) {named} (no_face='error'; no_face='image' uses the whole "
                             f"image instead, no_face='nan' gives a row of NaN)")
        if self.no_face == "image":
            from ..faces.prepare import whole_image_face
            out[missing] = self._get_pipeline().encode(np.stack([whole_image_face(items[i]) for i in missing])).features
            what = "the whole image, centred and resized, stands in for the face (no_face='image')"
        else:
            what = "their rows are NaN (no_face='nan')"
        warnings.warn(f"no face found in input(s) {named}: {what}; their indices are in no_face_",
                      UserWarning, stacklevel=3)

    def _results(self, items: list) -> list:
        """One ``FrameResult`` per input (its largest face), through the shared ``FacePipeline``."""
        from ..faces.finder import units_of
        return self._get_pipeline().run_units(units_of(items))

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "view_states_")
        from .encoder import feature_names
        return np.asarray(feature_names(self.views_, self.latent_dims_), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = self.align == "none"
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags


def _view_list(views) -> list[str]:
    """``views`` as a list of names: a string is one view or several, comma-separated (as the
    CLI's ``--views``), never iterated letter by letter."""
    if isinstance(views, str):
        return [v.strip() for v in views.split(",") if v.strip()]
    if not all(isinstance(v, str) for v in views):
        raise InputError(f"views must be view names (e.g. ['relu3_1', 'relu4_1']), got {views!r}")
    return list(views)


def _is_numeric_array(X) -> bool:
    import scipy.sparse
    from PIL import Image
    if scipy.sparse.issparse(X):
        return True
    if isinstance(X, Image.Image):
        return False
    a = X if isinstance(X, np.ndarray) else (np.asarray(X) if hasattr(X, "__array__") else None)
    if a is None and isinstance(X, list) and X and all(isinstance(r, (list, tuple)) for r in X):
        a = np.asarray(X)
    return a is not None and a.dtype != object and (np.issubdtype(a.dtype, np.number) or a.dtype == bool)


def _as_items(X, align: str) -> list:
    """Split X into per-input items."""
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):  # pandas
        X = X.to_numpy()
    elif hasattr(X, "__array__") and not isinstance(X, (np.ndarray, list)):
        X = np.asarray(X)
    if isinstance(X, np.ndarray):
        if X.ndim == 1 and X.dtype != object:
            raise InputError("Expected a 2D array of flattened faces or a list of images, got a 1D array. "
                             "Reshape your data using array.reshape(1, -1) if it holds a single face.")
        if X.dtype == object:
            return list(X.ravel()) if X.ndim <= 2 and (X.ndim == 1 or X.shape[1] == 1) else list(X)
        if X.ndim == 2 and align == "none":
            if X.shape[1] != FLAT_SIZE:
                raise InputError(f"align='none' with a 2-D array needs {FLAT_SIZE} columns "
                                 f"(64*64*3 values in [0, 1]), got {X.shape[1]}")
            return [row for row in X]
        if X.ndim == 4:
            return [x for x in X]
        raise InputError(f"X must be a list of images or an (N, H, W, 3) array, got an array of shape {X.shape}")
    if isinstance(X, (str, bytes)) or not hasattr(X, "__iter__"):
        raise InputError("X must be a list of images (paths, PIL images or arrays), not a single item")
    return list(X)
