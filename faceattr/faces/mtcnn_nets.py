"""MTCNN's three networks (Zhang et al. 2016) as facenet-pytorch defines them, with the weights its
wheel ships (``facenet_pytorch/data/{pnet,rnet,onet}.pt``), and the box arithmetic between them.

Defined here rather than imported: importing ``facenet_pytorch`` imports all of torchvision (its
``__init__`` pulls in every model and dataset), about 1.9 s of every command's start-up on a
2-core CPU (benchmarks/results/startup_speed.md), for three small networks and five functions.
The layers, their names (so the shipped state dicts load as they are), the thresholds and the
arithmetic are facenet-pytorch's (MIT licence, Tim Esler), unchanged; tests/test_detect.py
checks boxes and landmarks against facenet-pytorch's own ``detect``.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn
from ..errors import DetectorUnavailable

THRESHOLDS = (0.6, 0.7, 0.7)  # each stage's minimum face probability (facenet-pytorch's defaults)
FACTOR = 0.709  # the image pyramid's scale step


def _weights_file(name: str) -> Path:
    """facenet-pytorch's weights, found without importing the package (and torchvision with it)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable("face detection needs facenet-pytorch's MTCNN weights: pip install facenet-pytorch==2.5.3")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"{name}.pt"
    if not path.is_file():
        raise DetectorUnavailable(f"{path}: MTCNN weights missing from the facenet-pytorch install; reinstall it")
    return path


def _load(net: nn.Module, name: str) -> nn.Module:
    net.load_state_dict(torch.load(_weights_file(name), map_location="cpu", weights_only=True))
    return net.eval()


class PNet(nn.Module):
    """The proposal network: a 12x12 window -> (box regression (B, 4, h, w), face probability (B, 2, h, w))."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.softmax4_1 = nn.Conv2d(32, 2, 1), nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """The refinement network: a 24x24 crop -> (box regression (N, 4), face probability (N, 2))."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.softmax5_1 = nn.Linear(128, 2), nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()  # (N, 3, 3, 64), as trained
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """The output network: a 48x48 crop -> (box regression (N, 4), 5 landmarks (N, 10), probability (N, 2))."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()  # (N, 3, 3, 128), as trained
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def load_networks(device) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(pnet, rnet, onet) with the shipped weights, on ``device``, in channels_last memory (which
    runs MTCNN's max-pools and convolutions about 1.6x faster on the CPU with the same boxes)."""
    nets = (_load(PNet(), "pnet"), _load(RNet(), "rnet"), _load(ONet(), "onet"))
    return tuple(n.to(device).to(memory_format=torch.channels_last) for n in nets)


# ---- box arithmetic (facenet-pytorch's models/utils/detect_face.py) ----------------------------

def bbreg(boundingbox, reg):
    if reg.shape[1] == 1:
        reg = torch.reshape(reg, (reg.shape[2], reg.shape[3]))
    w = boundingbox[:, 2] - boundingbox[:, 0] + 1
    h = boundingbox[:, 3] - boundingbox[:, 1] + 1
    b1, b2 = boundingbox[:, 0] + reg[:, 0] * w, boundingbox[:, 1] + reg[:, 1] * h
    b3, b4 = boundingbox[:, 2] + reg[:, 2] * w, boundingbox[:, 3] + reg[:, 3] * h
    boundingbox[:, :4] = torch.stack([b1, b2, b3, b4]).permute(1, 0)
    return boundingbox


def generate_bounding_box(reg, probs, scale: float, thresh: float):
    """The first stage's windows whose face probability reaches ``thresh``, in photo pixels: (n, 9)
    boxes (x1, y1, x2, y2, score, 4 regressions) and the photo of each."""
    stride, cellsize = 2, 12
    reg = reg.permute(1, 0, 2, 3)
    mask = probs >= thresh
    mask_inds = mask.nonzero()
    image_inds = mask_inds[:, 0]
    score = probs[mask]
    reg = reg[:, mask].permute(1, 0)
    bb = mask_inds[:, 1:].type(reg.dtype).flip(1)
    q1 = ((stride * bb + 1) / scale).floor()
    q2 = ((stride * bb + cellsize - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), reg], dim=1), image_inds


def pad(boxes, w: int, h: int):
    """Boxes truncated to integers and clipped to the photo: (y, ey, x, ex), 1-based."""
    boxes = boxes.trunc().int().cpu().numpy()
    x, y, ex, ey = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    x[x < 1] = 1
    y[y < 1] = 1
    ex[ex > w] = w
    ey[ey > h] = h
    return y, ey, x, ex


def rerec(box):
    """Boxes made square around their centres."""
    h, w = box[:, 3] - box[:, 1], box[:, 2] - box[:, 0]
    side = torch.max(w, h)
    box[:, 0] = box[:, 0] + w * 0.5 - side * 0.5
    box[:, 1] = box[:, 1] + h * 0.5 - side * 0.5
    box[:, 2:4] = box[:, :2] + side.repeat(2, 1).permute(1, 0)
    return box


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS with overlap = intersection / the smaller area (+1 pixel areas), as facenet's."""
    if boxes.size == 0:
        return np.empty(0, np.int64)
    x1, y1, x2, y2 = (boxes[:, k].copy() for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, pick = np.argsort(scores), []
    while order.size > 0:
        i, rest = order[-1], order[:-1]
        pick.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[np.where(w * h / np.minimum(area[i], area[rest]) <= threshold)]
    return np.asarray(pick, np.int64)


def batched_nms_min(boxes, scores, idxs, threshold: float):
    """``_nms_min`` within each photo (``idxs``): boxes are offset per photo so photos never overlap."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    keep = _nms_min((boxes + offsets[:, None]).cpu().numpy(), scores.cpu().numpy(), threshold)
    return torch.as_tensor(keep, dtype=torch.long, device=boxes.device)


@functools.lru_cache(maxsize=None)
def _torchvision_ops() -> None:
    """torchvision's compiled operators (its NMS kernel), loaded without importing torchvision:
    what ``torchvision.extension`` does, less the package's 1.9 s of imports."""
    spec = importlib.util.find_spec("torchvision")
    folder = Path(list(spec.submodule_search_locations)[0])
    torch.ops.load_library(str(next(p for p in sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd")))))


def batched_nms(boxes, scores, idxs, iou_threshold: float):
    """torchvision.ops.batched_nms (intersection over union, greedy, per photo ``idxs``)."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    _torchvision_ops()
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return torch.ops.torchvision.nms(boxes + offsets[:, None], scores, iou_threshold)
