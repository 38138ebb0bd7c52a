"""MultiViewVAEFeatures inside a scikit-learn Pipeline, on lists of image paths.

    python examples/pipeline.py --root CELEBA_MINI
"""
import argparse

from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from faceattr import ATTRIBUTE_NAMES, MultiViewVAEFeatures
from faceattr.data.celeba import CelebA, add_root_argument

ap = argparse.ArgumentParser()
add_root_argument(ap)
args = ap.parse_args()
train = CelebA.load(args.root, "train", max_images=2000)
test = CelebA.load(args.root, "test", max_images=500)
smiling = ATTRIBUTE_NAMES.index("Smiling")

pipe = Pipeline([
    ("features", MultiViewVAEFeatures(align="celeba")),  # "auto" detects and aligns any photo
    ("scale", StandardScaler()),
    ("svm", LinearSVC(C=0.01)),
])
pipe.fit([str(p) for p in train.paths()], train.labels[:, smiling])
acc = pipe.score([str(p) for p in test.paths()], test.labels[:, smiling])
print(f"Smiling, 2,000 training faces -> accuracy on 500 test faces: {acc:.3f}")
