"""Configuration dataclasses. A checkpoint stores these, and they rebuild every network."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..faces.geometry import IMAGE_SIZE
from .taps import LAYER_NAMES, TAP_STRIDE
from ..errors import InputError

AUGMENTATIONS = ("flip", "shift")
SHIFT_PIXELS = 4


class _DictRoundTrip:
    """to_dict/from_dict for checkpoints; unknown keys (from a newer version) are ignored."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class ModelConfig(_DictRoundTrip):
    """The networks of one view. The five shipped views differ only in ``layers``."""

    latent_dim: int = 100
    image_size: int = IMAGE_SIZE
    encoder_widths: tuple[int, ...] = (32, 64, 128, 256)
    decoder_widths: tuple[int, ...] = (128, 64, 32)  # then a last conv to 3 channels
    critic_widths: tuple[int, ...] = (64, 128, 256, 512)
    critic_input_layer: str = "relu1_1"
    layers: tuple[str, ...] = ("relu3_1",)  # VGG19 layers of the feature reconstruction loss

    def __post_init__(self):
        for name in ("encoder_widths", "decoder_widths", "critic_widths", "layers"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.layers:
            raise InputError("layers must name at least one VGG19 layer")
        for layer in self.layers + (self.critic_input_layer,):
            if layer not in LAYER_NAMES:
                raise InputError(f"unknown VGG19 layer {layer!r}; expected one of {', '.join(LAYER_NAMES)}")
        down = 2 ** len(self.encoder_widths)
        if self.image_size % down or self.image_size // down < 1:
            raise InputError(f"image_size {self.image_size} is not divisible by 2**{len(self.encoder_widths)}")
        if len(self.decoder_widths) + 1 != len(self.encoder_widths):
            raise InputError("decoder_widths must have one entry fewer than encoder_widths "
                             "(the last decoder conv outputs 3 channels)")
        if self.critic_side < 1:
            raise InputError(f"image_size {self.image_size} is too small for a {self.critic_input_layer} critic")

    @property
    def critic_side(self) -> int:
        """Side of the VGG19 map the critic reads."""
        return self.image_size // TAP_STRIDE[self.critic_input_layer]

    @property
    def critic_stages(self) -> int:
        """Down-sampling stages of the critic: its widths, fewer where a deep tap's map is small."""
        stages, side = 0, self.critic_side
        while stages < len(self.critic_widths) and side >= 2:
            stages, side = stages + 1, side // 2
        return stages

    @property
    def name(self) -> str:
        return "+".join(self.layers)


@dataclass
class TrainConfig(_DictRoundTrip):
    """Algorithm 1's hyperparameters (paper section 4.1) and the balancing docs/method.md decides."""

    epochs: int = 5
    batch_size: int = 64
    lr: float = 5e-4
    lr_decay: float = 0.5  # multiplied in after each epoch
    alpha: float = 1.0  # KL weight (eq. 8); `faceattr train --kl-weight`
    beta: float = 0.5  # reconstruction weight (eq. 8); `faceattr train --rec-weight`
    gan_label: float = 10.0  # relaxed WGAN labels +10 / -10
    clip: float = 0.01  # critic weights clipped to [-clip, clip]
    # "reference": scale a view's reconstruction term to the five-layer model's size (docs/method.md,
    # "Balancing a single-layer view"); "literal": eq. 6 as printed.
    rec_balance: str = "reference"
    reference_images: int = 256
    seed: int = 0
    checkpoint_every: int = 500  # steps; a checkpoint is also written at each epoch end
    log_every: int = 10
    max_images: int | None = None
    # Faces drawn per epoch (reshuffled passes over the data); None = one pass. The paper's epoch
    # is one pass over CelebA's 162,770 training faces: on a smaller set this keeps the paper's
    # number of updates per learning-rate stage.
    epoch_images: int | None = None
    # Training-time augmentation of the crops: "flip" (horizontal mirror, half the faces) and
    # "shift" (up to SHIFT_PIXELS in each direction, replicated border). Empty = the paper.
    augment: tuple[str, ...] = ()
    # Start the VAE from an existing view: "pretrained:relu3_1" (the shipped bundle) or a view
    # file / checkpoint path. The critic starts fresh. None = random initialisation (the paper).
    init: str | None = None
    init_sha256: str | None = None  # of the file that ``init`` resolved to, filled at start
    # Not in the paper: unlabeled faces mixed into the VAE and critic batches (faceattr.data.
    # extra_faces). ``extra_share`` is the share of each batch drawn from them; None = in
    # proportion to the two sets' sizes. Their source, count and the sha256 of their file list are
    # filled at start and checked on resume.
    extra_faces: str | None = None
    extra_share: float | None = None
    extra_faces_count: int | None = None
    extra_faces_sha256: str | None = None

    def __post_init__(self):
        self.augment = tuple(self.augment)
        for a in self.augment:
            if a not in AUGMENTATIONS:
                raise InputError(f"unknown augmentation {a!r}; expected any of {', '.join(AUGMENTATIONS)}")
        for name in ("alpha", "beta", "lr", "gan_label", "clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be positive and finite, got {value}")
        if not (math.isfinite(self.lr_decay) and 0 < self.lr_decay <= 1):
            raise InputError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.rec_balance not in ("reference", "literal"):
            raise InputError(f"rec_balance must be 'reference' or 'literal', got {self.rec_balance!r}")
        if self.extra_share is not None:
            if self.extra_faces is None:
                raise InputError("extra_share needs extra_faces (a folder of unlabeled faces)")
            if not (math.isfinite(self.extra_share) and 0 <= self.extra_share < 1):
                raise InputError(f"extra_share must be in [0, 1), got {self.extra_share}")
        if self.epoch_images is not None and self.epoch_images < self.batch_size:
            raise InputError(f"epoch_images must be at least batch_size, got {self.epoch_images}")
        for name in ("epochs", "batch_size", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
