"""Would int8 encoders pay? The five views' encoders quantised with onnxruntime (static QDQ,
per-channel int8 weights, uint8 activations calibrated on train faces in each of CALIBRATIONS'
ways; the convolutions only, the latent-mean layer kept in float32 as the bf16 path keeps it),
against torch's own float32 and bf16 paths and onnxruntime's float32, on the same val faces in
one run.

    pip install onnxruntime onnx onnxscript
    python -m experiments.int8_encoder_trial --root CELEBA_MINI

Speed: faces/s of the five encoders (batches of 64, this machine's threads), median of
``--repeats``, the paths alternating. Accuracy: the shipped heads on each path's features of all
val faces, mean accuracy over the 40 attributes, against float32's. The rule for shipping
(issue 27): at least 1.5x the faces/s of bf16 with at most 0.05 points less mean val accuracy.
Writes experiments/results/int8_encoder_trial.json and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parent / "results"
BATCH = 64
CALIBRATION_FACES = 1024
SHIP_SPEEDUP = 1.5  # over bf16, the rule
SHIP_MAX_LOSS_POINTS = 0.05


class FiveEncoders(nn.Module):
    """(B, 3, 64, 64) float in [0, 1] -> (B, 500) latent means: MultiViewEncoder's float32 graph."""

    def __init__(self, encoder):
        super().__init__()
        self.encoders = nn.ModuleList(encoder.encoders)

    def forward(self, x):
        return torch.cat([e.mean(e.features(x).flatten(1)) for e in self.encoders], dim=1)


def floats(faces: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(faces.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


# name -> quantize_static options beyond the common ones; "first conv float" keeps each view's
# first convolution (which reads the image) in float32
CALIBRATIONS = {
    "minmax": {},
    "entropy": {"calibrate_method": "Entropy"},
    "percentile 99.99": {"calibrate_method": "Percentile", "extra_options": {"CalibPercentile": 99.99}},
    "percentile 99.99, first conv float": {"calibrate_method": "Percentile",
                                           "extra_options": {"CalibPercentile": 99.99}, "first_float": True},
}


def export_fp32(encoder, folder: Path) -> Path:
    from onnxruntime.quantization.shape_inference import quant_pre_process
    fp32, pre = folder / "fp32.onnx", folder / "pre.onnx"
    model = FiveEncoders(encoder).eval().to(memory_format=torch.contiguous_format)
    torch.onnx.export(model, (torch.rand(BATCH, 3, 64, 64),), str(fp32), input_names=["x"], output_names=["z"],
                      dynamic_axes={"x": {0: "n"}, "z": {0: "n"}}, dynamo=False)
    quant_pre_process(str(fp32), str(pre))
    return pre


def quantise(pre: Path, calib: np.ndarray, options: dict, out: Path) -> Path:
    """``pre``'s int8 QDQ quantisation, calibrated on ``calib`` as ``options`` say."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": calib[i:i + BATCH]} for i in range(0, len(calib), BATCH)])

        def get_next(self):
            return next(self.batches, None)

    kw = {k: v for k, v in options.items() if k != "first_float"}
    if "calibrate_method" in kw:
        kw["calibrate_method"] = getattr(CalibrationMethod, kw["calibrate_method"])
    if options.get("first_float"):
        kw["nodes_to_exclude"] = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type == "Conv" and "x" in n.input]
    # the latent head (Gemm) stays float32: quantising it rounds every feature the heads read
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"], **kw)
    return out


def ort_encoder(path: Path):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: np.concatenate([sess.run(None, {"x": x[i:i + BATCH]})[0] for i in range(0, len(x), BATCH)])


def torch_encoder(bundle, precision: str):
    from faceattr.inference.encoder import MultiViewEncoder
    enc = MultiViewEncoder.from_bundle(bundle, bundle.head_views(), device="cpu", precision=precision, batch_size=BATCH)
    return enc, enc.encode


def timed(paths: dict, inputs: dict, repeats: int) -> dict:
    for name, f in paths.items():
        f(inputs[name][:BATCH])  # warm-up
    times = {n: [] for n in paths}
    for _ in range(repeats):
        for name, f in paths.items():
            t0 = time.perf_counter()
            f(inputs[name])
            times[name].append(time.perf_counter() - t0)
    n = len(next(iter(inputs.values())))
    return {name: n / statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, help="a CelebA folder in the official layout")
    ap.add_argument("--faces", type=int, default=1024, help="val faces timed")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from faceattr.atomic import write_text
    from faceattr.data.celeba import CelebA
    from faceattr.device import machine_description
    from faceattr.inference.bundle import Bundle
    from faceattr.inference.heads import decision_scores
    bundle = Bundle.load()
    val = CelebA.load(args.root, "val")
    faces, labels = val.crops(progress=False), np.asarray(val.labels)
    calib = floats(CelebA.load(args.root, "train", max_images=CALIBRATION_FACES).crops(progress=False))
    f32_enc, f32 = torch_encoder(bundle, "float32")
    _, bf16 = torch_encoder(bundle, "bf16")
    with tempfile.TemporaryDirectory() as tmp:
        pre = export_fp32(f32_enc, Path(tmp))
        paths = {"torch float32": f32, "torch bf16": bf16, "onnxruntime float32": ort_encoder(pre)}
        for name, options in CALIBRATIONS.items():
            paths[f"onnxruntime int8, {name}"] = ort_encoder(quantise(pre, calib, options, Path(tmp) / f"{len(paths)}.onnx"))
        uint8_input = {"torch float32", "torch bf16"}
        inputs = {n: faces[:args.faces] if n in uint8_input else floats(faces[:args.faces]) for n in paths}
        speed = timed(paths, inputs, args.repeats)
        feats = {n: f(faces if n in uint8_input else floats(faces)) for n, f in paths.items()}
    heads = bundle.heads()
    acc = {n: float(((decision_scores(heads, x) > 0) == (labels > 0)).mean()) for n, x in feats.items()}
    best = max((n for n in paths if "int8" in n), key=lambda n: acc[n])
    res = {"machine": machine_description(), "faces_timed": args.faces, "repeats": args.repeats,
           "val_faces": len(faces), "faces_per_s": speed, "val_mean_accuracy": acc, "best_int8": best,
           "int8_over_bf16": speed[best] / speed["torch bf16"],
           "int8_over_best_torch": speed[best] / max(speed["torch bf16"], speed["torch float32"]),
           "int8_loss_points": 100 * (acc["torch float32"] - acc[best]),
           "max_feature_error": {n: float(np.abs(x - feats["torch float32"]).max()) for n, x in feats.items()}}
    res["ships"] = bool(res["int8_over_bf16"] >= SHIP_SPEEDUP and res["int8_loss_points"] <= SHIP_MAX_LOSS_POINTS)
    write_text(OUT / "int8_encoder_trial.json", json.dumps(res, indent=1))
    write_text(OUT / "int8_encoder_trial.md", report(res))
    print(report(res))


def report(res: dict) -> str:
    md = [f"`python -m experiments.int8_encoder_trial --root CELEBA_MINI` on {res['machine']['cpu']}, "
          f"{res['machine']['threads']} threads: the five encoders on {res['faces_timed']} val faces (median of "
          f"{res['repeats']}), and the shipped heads on all {res['val_faces']} val faces.", "",
          "| path | faces/s | val mean accuracy | largest feature difference from torch float32 |", "|---|---|---|---|"]
    md += [f"| {n} | {fps:.0f} | {100 * res['val_mean_accuracy'][n]:.2f}% | {res['max_feature_error'][n]:.3g} |"
           for n, fps in res["faces_per_s"].items()]
    md += ["", f"The most accurate int8 ({res['best_int8']}) is {res['int8_over_bf16']:.2f}x torch bf16 and {res['int8_over_best_torch']:.2f}x the faster "
           f"torch path, {res['int8_loss_points']:.3f} points of mean val accuracy below float32: "
           + ("**ships** (at least 1.5x bf16, at most 0.05 points lost)." if res["ships"] else
              "**not shipped** (the rule: at least 1.5x bf16 with at most 0.05 points lost).")]
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    main()
