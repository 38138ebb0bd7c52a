"""``faceattr export onnx OUT_DIR``: the multi-view features and the 40 heads as one ONNX model,
for onnxruntime where torch is not (``pip install 'faceattr[onnx]'``).

The model reads a batch of aligned 64x64 RGB faces as uint8 NHWC (``faces``: (n, 64, 64, 3), any
n) and gives ``features`` (n, 500) float32, ``probabilities`` (n, 40) float32 (Platt-calibrated)
and ``decisions`` (n, 40) bool under the chosen rule. Its metadata carries the attribute names,
the preprocessing, the decision thresholds, the views with their sha256, faceattr's version and
the weights' licence; ``OUT_DIR/README.md`` says how to call it and how to align faces for it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .atomic import write_text
from .data.attributes import ATTRIBUTE_NAMES
from .errors import InputError, OutputExists
from .faces.align import CELEBA_TEMPLATE
from .faces.geometry import IMAGE_SIZE, aligned_to_crop_matrix
from .version import __version__

MODEL_FILE = "model.onnx"
EXPORT_FILES = (MODEL_FILE, "README.md")
OPSET = 18  # the torch.export-based exporter's own
INPUT, OUTPUTS = "faces", ("features", "probabilities", "decisions")


def template_in_face_pixels() -> np.ndarray:
    """The 5-point template (left eye, right eye, nose, mouth left, mouth right) in the 64x64
    face's pixels: a similarity fit of a face's landmarks to these gives the model's input."""
    m = aligned_to_crop_matrix()
    return np.hstack([CELEBA_TEMPLATE, np.ones((5, 1))]) @ m.T


def _module(bundle, views, decision: str):
    """The torch module the export traces: uint8 faces -> features, probabilities, decisions."""
    import torch
    from torch import nn
    from .inference.encoder import MultiViewEncoder
    from .inference.heads import LinearHeads

    encoder = MultiViewEncoder.from_bundle(bundle, views, device="cpu", precision="float32")
    heads = LinearHeads(bundle.heads(), "cpu")
    thresholds = torch.as_tensor(heads.threshold(decision))

    class FacesToAttributes(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoders = nn.ModuleList(encoder.encoders)
            for name, value in (("weight", heads.weight), ("bias", heads.bias), ("platt_a", heads.platt_a),
                                ("platt_b", heads.platt_b), ("thresholds", thresholds)):
                self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32))

        def forward(self, faces):  # (n, 64, 64, 3) uint8
            x = faces.permute(0, 3, 1, 2).to(torch.float32) / 255.0  # (n, 3, 64, 64) in [0, 1]
            feats = torch.cat([e.mean(e.features(x).flatten(1)) for e in self.encoders], dim=1)  # (n, 500)
            scores = feats @ self.weight.T + self.bias  # (n, 40)
            return feats, torch.sigmoid(scores * self.platt_a + self.platt_b), scores > self.thresholds

    return FacesToAttributes().eval(), encoder


def metadata(bundle, views, decision: str, thresholds: np.ndarray) -> dict[str, str]:
    """What the model says of itself (ONNX metadata_props: string to string)."""
    preprocessing = {"input": "uint8 (n, 64, 64, 3) RGB, NHWC", "scaling": "x / 255 in the model",
                     "alignment": "similarity transform of 5 landmarks to template_64 (README.md)",
                     "template_64": np.round(template_in_face_pixels(), 3).tolist()}
    return {"faceattr_version": __version__, "attributes": json.dumps(list(ATTRIBUTE_NAMES)),
            "preprocessing": json.dumps(preprocessing), "decision": decision,
            "thresholds": json.dumps([round(float(t), 6) for t in thresholds]),
            "views": json.dumps({v: bundle.view_entry(v)["sha256"] for v in views}),
            "views_sha256": bundle.views_sha256(views),
            "licence": str(bundle.manifest.get("licence", "see the weights' MODEL_CARD.md"))}


def check_out_dir(out_dir, overwrite: bool) -> Path:
    """Before any work: OUT_DIR is new, empty, or (with ``overwrite``) holds only an earlier export."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputExists(f"{out}: is a file; export onnx writes a folder")
    if out.is_dir():
        held = sorted(p.name for p in out.iterdir())
        if MODEL_FILE in held and not overwrite:
            raise OutputExists(f"{out}: holds a model already ({MODEL_FILE}); --overwrite replaces it")
        if "README.md" in held and not overwrite:
            raise OutputExists(f"{out}: holds a README.md already; not replaced (--overwrite replaces an export)")
        other = [n for n in held if n not in EXPORT_FILES]
        if other:
            raise OutputExists(f"{out}: holds files that are not an export's ({', '.join(other[:3])}); "
                               f"choose a new or empty folder")
    return out


def export_onnx(out_dir, weights="pretrained", views=None, decision: str = "accuracy",
                overwrite: bool = False) -> Path:
    """Write ``OUT_DIR/model.onnx`` and ``OUT_DIR/README.md``; returns the model's path. The
    files are written in a temporary folder beside OUT_DIR and moved in whole."""
    import torch
    from .inference.bundle import Bundle
    out = check_out_dir(out_dir, overwrite)
    bundle = Bundle.load(weights)
    views = _check_views(bundle, views)
    model, encoder = _module(bundle, views, decision)
    meta = metadata(bundle, views, decision, model.thresholds.numpy())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    try:
        faces = torch.zeros((2, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=torch.uint8)
        torch.onnx.export(model, (faces,), str(tmp / MODEL_FILE), input_names=[INPUT], output_names=list(OUTPUTS),
                          dynamic_shapes={INPUT: {0: torch.export.Dim("n")}}, opset_version=OPSET, dynamo=True,
                          verbose=False)
        _add_metadata(tmp / MODEL_FILE, meta)
        write_text(tmp / "README.md", readme(meta, encoder.n_features))
        _move_in(tmp, out, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / MODEL_FILE


def _check_views(bundle, views) -> list[str]:
    views = list(views) if views else bundle.head_views()
    unknown = [v for v in views if v not in bundle.views]
    if unknown:
        raise InputError(f"unknown view(s) {', '.join(unknown)}; {bundle.root} has {', '.join(bundle.views)}")
    if views != bundle.head_views():
        raise InputError(f"the heads of {bundle.root} read views {', '.join(bundle.head_views())}; export those, "
                         f"or fit heads on {', '.join(views)} first (faceattr heads fit)")
    return views


def _add_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx
    model = onnx.load(str(path))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name, model.doc_string = "faceattr", "faceattr: 40 CelebA attributes from multi-view VAE-WGAN features"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _move_in(tmp: Path, out: Path, overwrite: bool) -> None:
    """The finished files take their names in OUT_DIR (made if missing): each by a rename with
    ``overwrite``, else by a link that fails on a file that appeared there meanwhile."""
    out.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_FILES:
        if overwrite:
            os.replace(tmp / name, out / name)
            continue
        try:
            os.link(tmp / name, out / name)
        except FileExistsError:
            raise OutputExists(f"{out / name}: appeared while the model was exported; not replaced") from None


def readme(meta: dict[str, str], n_features: int) -> str:
    template = json.loads(meta["preprocessing"])["template_64"]
    return f"""# faceattr's model, exported to ONNX

`model.onnx` ({meta['faceattr_version']}): the multi-view VAE-WGAN features of aligned faces and
the 40 CelebA attributes. Input `faces`: uint8 (n, 64, 64, 3), RGB, NHWC, any n. Outputs:
`features` float32 (n, {n_features}), `probabilities` float32 (n, 40), calibrated, and
`decisions` bool (n, 40) under the `{meta['decision']}` rule. The attribute names, in order, the
thresholds and the views' sha256 are in the model's metadata.

```python
import json
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("model.onnx")
names = json.loads(session.get_modelmeta().custom_metadata_map["attributes"])
faces = np.zeros((1, 64, 64, 3), np.uint8)            # your aligned faces
features, probabilities, decisions = session.run(None, {{"faces": faces}})
print({{n: round(float(p), 3) for n, p in zip(names, probabilities[0])}})
```

## Aligning faces for it

Find the five landmarks of a face (left eye, right eye, nose tip, left and right mouth corners,
as seen in the image) with any detector, fit the similarity transform (rotation, uniform scale,
translation; least squares) that maps them to these points of the 64x64 face, and warp the photo
with it to 64x64:

| point | x | y |
|---|---|---|
""" + "".join(f"| {p} | {x:.3f} | {y:.3f} |\n" for p, (x, y) in
              zip(("left eye", "right eye", "nose", "mouth left", "mouth right"), template)) + f"""
That is faceattr's own alignment (`faceattr.faces.align`: MTCNN landmarks, the CelebA aligned-image
template, the training crop), so the same faces give the same answers as `faceattr predict
--aligned` on CelebA's aligned images, and as `faceattr predict` on photos.

Licence of the weights: {meta['licence']}.
"""
