"""The ``faceattr`` command line: parses arguments and calls the library, nothing more."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .nn.config import SHIFT_PIXELS, TrainConfig
from .nn.taps import LAYER_NAMES

DEVICE = click.Choice(["auto", "cpu", "cuda"])


def _fail(e: Exception):
    raise click.ClickException(str(e)) from None


# Below this many updates the README's measurements show reconstructions that are still close to
# the average face (62 updates: 1.2% identified; 1,060: 15%; 6,375: 45%).
FEW_UPDATES = 1000


@click.group()
@click.version_option(package_name="faceattr")
def main():
    """Facial attributes from multi-view VAE-WGAN features."""


@main.command()
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="CelebA folder")
@click.option("--layer", "layers", multiple=True, type=click.Choice(LAYER_NAMES), default=None,
              help="VGG19 layer(s) of the reconstruction loss; repeat for several "
                   "[default: relu3_1, or the --init view's]")
@click.option("--epochs", default=TrainConfig.epochs, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=TrainConfig.batch_size, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=TrainConfig.lr, show_default=True, type=click.FloatRange(0, min_open=True),
              help="learning rate of the first epoch (halved after each)")
@click.option("--kl-weight", "alpha", default=TrainConfig.alpha, show_default=True,
              type=click.FloatRange(0, min_open=True), help="alpha of eq. 8 (the KL term)")
@click.option("--rec-weight", "beta", default=TrainConfig.beta, show_default=True,
              type=click.FloatRange(0, min_open=True), help="beta of eq. 8 (the reconstruction term)")
@click.option("--augment", default="", metavar="flip[,shift]",
              help="training augmentation: flip (mirror half the faces), shift (up to "
                   f"{SHIFT_PIXELS} px); default none, as in the paper")
@click.option("--init", default=None, metavar="pretrained:VIEW|PATH",
              help="start the VAE from a shipped view (pretrained:relu3_1) or a view/checkpoint file; "
                   "the critic starts fresh")
@click.option("--max-images", type=click.IntRange(1), default=None, help="use the first N training faces")
@click.option("--epoch-images", type=click.IntRange(1), default=None,
              help="faces drawn per epoch (default: one pass over the training faces)")
@click.option("--out", default="runs/view", show_default=True, type=click.Path(file_okay=False),
              help="checkpoints, metrics.jsonl and PNG grids go here")
@click.option("--resume", is_flag=True, help="continue from OUT/checkpoint.pt")
@click.option("--device", default="auto", type=DEVICE, show_default=True)
@click.option("--precision", default="auto", type=click.Choice(["auto", "bf16", "float32"]), show_default=True,
              help="auto: bfloat16 autocast where it is faster (CUDA; CPUs with AMX or AVX512-BF16)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--balance", "rec_balance", default="reference", type=click.Choice(["reference", "literal"]),
              show_default=True, help="reconstruction weighting of a single-layer view (docs/method.md)")
@click.option("--checkpoint-every", default=TrainConfig.checkpoint_every, show_default=True, type=click.IntRange(1))
@click.option("--vgg-weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="VGG19 weights (.h5 Keras or torchvision .pth); default: found automatically")
def train(root, layers, epochs, batch_size, lr, alpha, beta, augment, init, max_images, epoch_images, out,
          resume, device, precision, seed, rec_balance, checkpoint_every, vgg_weights):
    """Train one view (Algorithm 1) on the train split of a CelebA folder."""
    from .trainer import train_view
    try:
        tcfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, alpha=alpha, beta=beta,
                           augment=tuple(a for a in augment.split(",") if a), init=init, seed=seed,
                           max_images=max_images, epoch_images=epoch_images, rec_balance=rec_balance,
                           checkpoint_every=checkpoint_every)
        res = train_view(root, out, tcfg, layers or None, resume=resume, device=device,
                         vgg_weights=vgg_weights, precision=precision)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(e)
    lat = res.latent
    click.echo(f"trained {'+'.join(layers)}: {res.steps} steps, {res.epochs} epochs -> {res.out_dir}")
    if lat:
        click.echo(f"mean KL per sample {lat['kl_per_sample']:.2f} nats, "
                   f"{lat['active_dims']}/{lat['latent_dim']} active latent dimensions")
    if res.steps < FEW_UPDATES:
        click.echo(f"note: {res.steps} updates is a short run; reconstructions take thousands of updates to "
                   "resemble their inputs (README, 'Training your own views'). --epoch-images draws more "
                   "faces per epoch.", err=True)


def _table(records: list[dict]) -> str:
    from .data.attributes import ATTRIBUTE_NAMES
    lines = []
    for r in records:
        if r["error"]:
            lines.append(f"{r['file']}: ERROR {r['error']}")
            continue
        if not r["faces"]:
            lines.append(f"{r['file']}: no face found")
            continue
        for i, face in enumerate(r["faces"]):
            head = f"{r['file']}  face {i + 1}/{len(r['faces'])}"
            if face.get("box"):
                head += f"  box {[round(v) for v in face['box']]}  confidence {face['confidence']:.3f}"
            lines.append(head)
            attrs = face["attributes"]
            rows = [f"  {'+' if attrs[n]['present'] else '-'} {n:<20} {attrs[n]['probability']:6.1%}" for n in ATTRIBUTE_NAMES]
            for k in range(0, len(rows), 2):
                lines.append("".join(f"{cell:<34}" for cell in rows[k:k + 2]).rstrip())
    return "\n".join(lines)


def _csv(records: list[dict]) -> str:
    import csv
    import io
    from .data.attributes import ATTRIBUTE_NAMES
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "face", "error", "x1", "y1", "x2", "y2", "confidence"]
               + [f"{n}_{k}" for n in ATTRIBUTE_NAMES for k in ("present", "probability", "score")])
    for r in records:
        if r["error"] or not r["faces"]:
            w.writerow([r["file"], "", r["error"] or "no face found"] + [""] * (5 + 3 * len(ATTRIBUTE_NAMES)))
        for i, face in enumerate(r["faces"]):
            box = face.get("box") or [""] * 4
            a = face["attributes"]
            w.writerow([r["file"], i, ""] + list(box) + [face.get("confidence", "")]
                       + [v for n in ATTRIBUTE_NAMES for v in (int(a[n]["present"]), a[n]["probability"], a[n]["score"])])
    return buf.getvalue()


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "json", "csv"]), show_default=True)
@click.option("--aligned", is_flag=True, help="inputs are CelebA aligned 178x218 images: skip detection")
@click.option("--largest-face", is_flag=True, help="keep only the largest face of each photo")
@click.option("--weights", default="pretrained", show_default=True, help="weights folder with manifest.json")
@click.option("--batch-size", default=None, type=click.IntRange(1),
              help="faces per encoder batch  [default: 64 on the CPU, 256 on CUDA]")
@click.option("--min-face-size", default=20, show_default=True, type=click.IntRange(12))
@click.option("--device", default="auto", type=DEVICE, show_default=True)
def predict(paths, fmt, aligned, largest_face, weights, batch_size, min_face_size, device):
    """Detect, align and print the 40 CelebA attributes of every face in PATHS (files or folders)."""
    import json
    from .inference.predictor import AttributePredictor, collect_inputs
    files = collect_inputs(paths)
    if not files:
        raise click.ClickException(f"no image files found in {', '.join(paths)}")
    try:
        predictor = AttributePredictor(weights, device=device, batch_size=batch_size,
                                       align="celeba" if aligned else "auto", largest_face=largest_face,
                                       min_face_size=min_face_size)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(e)
    records = predictor.predict_images([str(f) for f in files], progress=len(files) > 1 and sys.stderr.isatty())
    if fmt == "json":
        click.echo(json.dumps(records, indent=1))
    elif fmt == "csv":
        click.echo(_csv(records), nl=False)
    else:
        click.echo(_table(records))
    failed = [r for r in records if r["error"]]
    for r in failed:
        click.echo(f"error: {r['error']}", err=True)
    if failed:
        sys.exit(1)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help=".parquet, .csv or .npz")
@click.option("--aligned", is_flag=True, help="inputs are CelebA aligned 178x218 images: skip detection")
@click.option("--largest-face", is_flag=True, help="keep only the largest face of each photo")
@click.option("--weights", default="pretrained", show_default=True)
@click.option("--batch-size", default=None, type=click.IntRange(1),
              help="faces per encoder batch  [default: 64 on the CPU, 256 on CUDA]")
@click.option("--device", default="auto", type=DEVICE, show_default=True)
def extract(paths, out, aligned, largest_face, weights, batch_size, device):
    """Write multi-view features, one row per face (with file and face index), to OUT."""
    from .inference.extract import FORMATS, extract_features, write_features
    from .inference.predictor import collect_inputs
    if Path(out).suffix.lower() not in FORMATS:
        raise click.ClickException(f"{out}: unknown output format; use one of {', '.join(FORMATS)}")
    files = collect_inputs(paths)
    try:
        index, names, feats, errors = extract_features([str(f) for f in files], weights,
                                                       "celeba" if aligned else "auto", largest_face,
                                                       batch_size, device, progress=sys.stderr.isatty())
        write_features(out, index, names, feats)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(e)
    click.echo(f"wrote {len(feats)} faces x {len(names)} features from {len(files)} files to {out}")
    for e in errors:
        click.echo(f"error: {e['error']}", err=True)
    if errors:
        sys.exit(1)


@main.group()
def benchmark():
    """Measure the toolkit against the paper and baselines."""


@benchmark.command("celeba")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="CelebA folder")
@click.option("--split", default="test", type=click.Choice(["test", "val", "train", "all"]), show_default=True)
@click.option("--heads", default="pretrained", type=click.Choice(["pretrained", "fit"]), show_default=True,
              help="the shipped heads, or 40 linear SVMs fitted on ROOT's train split (C chosen on val)")
@click.option("--views", default=None, help="comma-separated views, e.g. relu3_1,relu4_1 (default: all)")
@click.option("--baselines", default="majority", show_default=True,
              help="comma-separated: majority, pixels, pca, views")
@click.option("--max-images", type=click.IntRange(1), default=None, help="first N images of each split")
@click.option("--out", default="benchmark-results", show_default=True, type=click.Path(file_okay=False))
@click.option("--weights", default="pretrained", show_default=True)
@click.option("--batch-size", default=None, type=click.IntRange(1),
              help="faces per encoder batch  [default: 64 on the CPU, 256 on CUDA]")
@click.option("--device", default="auto", type=DEVICE, show_default=True)
def benchmark_celeba(root, split, heads, views, baselines, max_images, out, weights, batch_size, device):
    """Reproduce the paper's Table 1 on a CelebA folder, with baselines, side by side."""
    from .benchmark import run_benchmark, summary_text
    try:
        res = run_benchmark(root, split, heads, views.split(",") if views else None,
                            tuple(b for b in baselines.split(",") if b), max_images, out, batch_size, device,
                            weights, progress=sys.stderr.isatty())
    except (ValueError, RuntimeError, OSError) as e:
        _fail(e)
    click.echo(summary_text(res))
    click.echo(f"results in {out}/ (results.json, results.md, results.csv, per_attribute.png)")


# ---- the generative side ------------------------------------------------------------------------
def _bundle(weights):
    from .inference.bundle import Bundle
    try:
        return Bundle.load(weights)
    except RuntimeError as e:
        _fail(e)


VIEW = click.Choice(LAYER_NAMES)


@main.command()
@click.argument("photos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--aligned", is_flag=True, help="inputs are CelebA aligned images")
@click.option("--weights", default="pretrained", show_default=True)
def reconstruct(photos, out, aligned, weights):
    """Each aligned input beside its reconstruction by every view."""
    from . import generate
    try:
        generate.reconstruct(_bundle(weights), photos, "celeba" if aligned else "auto", out=out)
    except ValueError as e:
        _fail(e)
    click.echo(f"wrote {out}")


@main.command()
@click.option("--view", default="relu3_1", type=VIEW, show_default=True)
@click.option("-n", "n", default=64, type=click.IntRange(1, 1024), show_default=True)
@click.option("--seed", default=0, type=int, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--weights", default="pretrained", show_default=True)
def sample(view, n, seed, out, weights):
    """Faces decoded from z ~ N(0, I)."""
    from . import generate
    generate.sample(_bundle(weights), view, n, seed, out=out)
    click.echo(f"wrote {out}")


@main.command()
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
@click.option("--steps", default=11, type=click.IntRange(2), show_default=True)
@click.option("--view", default="relu3_1", type=VIEW, show_default=True)
@click.option("--aligned", is_flag=True, help="inputs are CelebA aligned images")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--weights", default="pretrained", show_default=True)
def interpolate(a, b, steps, view, aligned, out, weights):
    """Decode (1 - t) z_A + t z_B from A to B."""
    from . import generate
    try:
        generate.interpolate(_bundle(weights), a, b, steps, view, "celeba" if aligned else "auto", out=out)
    except ValueError as e:
        _fail(e)
    click.echo(f"wrote {out}")


@main.command()
@click.argument("photo", type=click.Path(exists=True, dir_okay=False))
@click.option("--attribute", required=True, help="a CelebA attribute name, e.g. Smiling")
@click.option("--strength", default=1.0, type=float, show_default=True, help="negative removes the attribute")
@click.option("--steps", default=11, type=click.IntRange(2), show_default=True)
@click.option("--view", default="relu3_1", type=VIEW, show_default=True)
@click.option("--aligned", is_flag=True, help="the input is a CelebA aligned image")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--weights", default="pretrained", show_default=True)
def manipulate(photo, attribute, strength, steps, view, aligned, out, weights):
    """Add or remove an attribute: decode z + a * v_attribute for a from 0 to STRENGTH."""
    from . import generate
    try:
        generate.manipulate(_bundle(weights), photo, attribute, strength, steps, view,
                            "celeba" if aligned else "auto", out=out)
    except (ValueError, RuntimeError) as e:
        _fail(e)
    click.echo(f"wrote {out}")


@main.command("attribute-vectors")
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="CelebA folder")
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="where to write the .npz (default: the weights folder's attribute_vectors.npz, "
                   "updating its manifest)")
@click.option("--max-images", type=click.IntRange(1), default=None, help="use the first N training faces")
@click.option("--weights", default="pretrained", show_default=True)
@click.option("--device", default="auto", type=DEVICE, show_default=True)
def attribute_vectors_cmd(root, out, max_images, weights, device):
    """Recompute the attribute vectors from ROOT's train split, for every view."""
    from .generate import write_attribute_vectors
    try:
        path = write_attribute_vectors(_bundle(weights), root, out, device, max_images)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(e)
    click.echo(f"wrote {path}")


@main.command()
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="CelebA folder")
@click.option("-n", "n", default=625, show_default=True, type=click.IntRange(4),
              help="number of faces; a square number (side x side grid)")
@click.option("--split", default="test", type=click.Choice(["train", "val", "test", "all"]), show_default=True)
@click.option("--view", default="relu3_1", type=VIEW, show_default=True)
@click.option("--seed", default=0, type=int, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--weights", default="pretrained", show_default=True)
def tsne(root, n, split, view, seed, out, weights):
    """Faces laid out on a grid by a t-SNE of their latent codes."""
    import math
    from . import generate
    from .data.celeba import CelebA
    side = math.isqrt(n)
    if side * side != n:
        raise click.ClickException(f"-n must be a square number (e.g. 625 = 25 x 25), got {n}")
    try:
        ds = CelebA.load(root, split, max_images=n)
        generate.tsne_map(_bundle(weights), ds.crops(), view, side, seed, out=out)
    except (ValueError, RuntimeError) as e:
        _fail(e)
    click.echo(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
