"""The five VGG19 layers a view can be trained against, by name: where each sits in torchvision's
``vgg19().features`` and the shape of its feature map relative to the input."""
from __future__ import annotations

LAYER_NAMES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
TAP_INDEX = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29}
TAP_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}
# Max-pools before the tap: the map's side is the input's side divided by this.
TAP_STRIDE = {"relu1_1": 1, "relu2_1": 2, "relu3_1": 4, "relu4_1": 8, "relu5_1": 16}
