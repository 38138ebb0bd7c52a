"""Run by tests/test_trainer.py under torchrun: a tiny view trained with DDP on gloo."""
import sys

import numpy as np

from faceattr.nn.config import ModelConfig, TrainConfig
from faceattr.train import Runtime, Trainer
from faceattr.nn.vgg import VGG19Taps

out = sys.argv[1]
rng = np.random.default_rng(0)
images = rng.integers(0, 255, (64, 64, 64, 3), dtype=np.uint8)
cfg = ModelConfig(latent_dim=8, encoder_widths=(8, 8, 16, 16), decoder_widths=(16, 8, 8),
                  critic_widths=(8, 8, 16, 16), layers=("relu1_1",))
t = Trainer(cfg, TrainConfig(epochs=1, batch_size=8, log_every=1, reference_images=16), images, out,
            VGG19Taps(), Runtime("cpu", "float32", progress=False))
res = t.fit()
print("RANK", t.place.rank, "WORLD", t.place.world, "STEPS", res.steps, "SUM", float(sum(p.sum() for p in t.vae.parameters())))
