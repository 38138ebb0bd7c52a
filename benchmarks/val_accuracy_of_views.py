"""Quick check of a folder of trained views: multi-view val accuracy of 40 linear SVMs.

    python benchmarks/val_accuracy_of_views.py DIR --root ../shared/data/celeba-mini

DIR holds view_relu1_1.pt ... view_relu5_1.pt (as benchmarks/train_views_gpu.py writes them).
Features: latent means under bf16 autocast; heads: standardised features, sklearn LinearSVC
(C=0.01) per attribute, fitted on train, scored on val. Used to compare the one-pass-per-epoch
GPU run (87.68%) with the six-pass run that was shipped (88.34%).
"""
import argparse

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from faceattr.nn import checkpoint as ckpt
from faceattr.data.celeba import CelebA
from faceattr.nn.config import LAYER_NAMES
from faceattr.trainer import to_float_images

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--root", default="../shared/data/celeba-mini")
args = ap.parse_args()
sets = {s: CelebA.load(args.root, s) for s in ("train", "val")}
crops = {s: ds.crops() for s, ds in sets.items()}
feats = {s: [] for s in sets}
for v in LAYER_NAMES:
    vae = ckpt.load_view(f"{args.dir}/view_{v}.pt")
    for s in sets:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = [vae.encoder(to_float_images(c).contiguous(memory_format=torch.channels_last))[0].float()
                   for c in torch.from_numpy(crops[s]).split(512)]
        feats[s].append(torch.cat(out).numpy())
x = {s: np.concatenate(f, 1) for s, f in feats.items()}
sc = StandardScaler().fit(x["train"])
xt, xv = sc.transform(x["train"]), sc.transform(x["val"])
acc = [(LinearSVC(C=0.01, dual=False).fit(xt, sets["train"].labels[:, a]).predict(xv) == sets["val"].labels[:, a]).mean()
       for a in range(40)]
print(f"val mean accuracy, multi-view: {np.mean(acc):.4f}")
