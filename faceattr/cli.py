"""The ``faceattr`` command line: parses arguments and calls the library, nothing more.

Options shared by several commands are defined once below (``weights_option`` ...), and every
command, present or future, prints faceattr's errors (``faceattr.errors.FaceattrError``) as one
line through the group (``FaceattrGroup``).
"""
from __future__ import annotations

import contextlib
import math
import os
import sys

import click

from .device import CPU_BATCH_SIZE, CUDA_BATCH_SIZE, PRECISIONS
from .faces.detect import DETECT_MAX_SIDE
from .faces.options import DEFAULT_MIN_FACE_SIZE, MIN_FACE_SIZE_FLOOR
from .generate_limits import MAX_SAMPLES, MAX_STEPS, MAX_STRENGTH, MAX_TSNE_FACES
from .inference.extract import CHUNK
from .inference.formats import printable
from .serve_limits import MAX_UPLOAD_BYTES, TIMEOUT_S, UPLOAD_TIMEOUT_S
from .nn.config import AUGMENTATIONS, SHIFT_PIXELS, TrainConfig
from .nn.taps import LAYER_NAMES

DEVICES = ("auto", "cpu", "cuda")
# What every seed must be: numpy's and scikit-learn's generators take 0 ... 2**32 - 1 (a negative
# seed would fail only after the work, in t-SNE).
SEED = click.IntRange(0, 2**32 - 1)
# Below this many updates the README's measurements show reconstructions that are still close to
# the average face (62 updates: 1.2% identified; 1,060: 15%; 6,375: 45%).
FEW_UPDATES = 1000


CLICK_FLOW = (click.ClickException, click.exceptions.Exit, click.Abort)  # Exit and Abort are RuntimeErrors
DEBUG_ENV = "FACEATTR_DEBUG"


class FaceattrGroup(click.Group):
    """Every command runs inside this group's invoke, so whatever faceattr refuses on purpose (a
    ``FaceattrError``: bad input or option, missing weights, an output in use) becomes ``Error:
    message`` and exit code 1, and so does a fault of the system it names (an ``OSError`` with an
    errno: a full disk, a permission). Anything else is a fault of faceattr's and shows its
    traceback; ``--debug`` (or FACEATTR_DEBUG=1) shows the traceback of every error."""

    def invoke(self, ctx):
        from .errors import FaceattrError
        try:
            return super().invoke(ctx)
        except CLICK_FLOW:
            raise
        except (FaceattrError, OSError) as e:
            if ctx.params.get("debug") or (isinstance(e, OSError) and not isinstance(e, FaceattrError)
                                           and e.errno is None):
                raise
            raise click.ClickException(str(e) or type(e).__name__) from None


class FiniteFloat(click.FloatRange):
    """A float option that must be a finite number (``inf`` and ``nan`` are refused), in range."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


def _options(*decorators):
    def apply(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn
    return apply


weights_option = click.option("--weights", default="pretrained", show_default=True,
                              help="weights folder with manifest.json (default: the bundle installed with faceattr)")
device_option = click.option("--device", default="auto", type=click.Choice(DEVICES), show_default=True)
batch_size_option = click.option("--batch-size", default=None, type=click.IntRange(1),
                                 help=f"faces per encoder batch  [default: {CPU_BATCH_SIZE} on the CPU, "
                                      f"{CUDA_BATCH_SIZE} on CUDA]")
aligned_option = click.option("--aligned", is_flag=True,
                              help="inputs are CelebA aligned 178x218 images: crop only, no detection")
largest_face_option = click.option("--largest-face", is_flag=True, help="keep only the largest face of each photo")
min_face_size_option = click.option("--min-face-size", default=DEFAULT_MIN_FACE_SIZE, show_default=True,
                                    type=click.IntRange(MIN_FACE_SIZE_FLOOR),
                                    help="smallest face side searched for, in pixels of the photo scaled to "
                                         "at most --detect-size")
detect_size_option = click.option("--detect-size", default=DETECT_MAX_SIDE, show_default=True,
                                  type=click.IntRange(MIN_FACE_SIZE_FLOOR),
                                  help="faces are detected on a copy of each photo at most this many pixels "
                                       "on its longer side (larger finds smaller faces in big photos, slower)")
root_option = click.option("--root", required=True, type=click.Path(exists=True, file_okay=False),
                           help="CelebA folder in the official layout")
view_option = click.option("--view", default="relu3_1", type=click.Choice(LAYER_NAMES), show_default=True,
                           help="which view (named by its VGG19 layer)")


steps_option = click.option("--steps", default=11, type=click.IntRange(2, MAX_STEPS), show_default=True,
                            help="faces in the row")
every_option = click.option("--every", type=click.IntRange(1), default=None,
                            help="videos: every N-th frame  [default: every frame, or --fps]")
fps_option = click.option("--fps", type=FiniteFloat(0, min_open=True), default=None,
                          help="videos: about this many frames per second of video")
second_search_option = click.option("--second-search/--no-second-search", default=True, show_default=True,
                                     help="search a photo in which no face was found again, at lower thresholds")
# What every command that reads photos (and videos) takes: how to find faces, and where to run.
photo_options = _options(aligned_option, largest_face_option, weights_option, batch_size_option,
                         min_face_size_option, detect_size_option, second_search_option, device_option, every_option,
                         fps_option)


def out_option(help_text: str, required: bool = True, default=None):
    return click.option("--out", required=required, default=default, type=click.Path(dir_okay=False),
                        help=help_text)


def _folder(value, param):
    """An option that names a folder: one that exists and is a folder, said in those words."""
    from pathlib import Path
    if value is not None and not Path(value).is_dir():
        what = "is a file, not a folder" if Path(value).exists() else "does not exist"
        raise click.BadParameter(f"{value}: {what}", param=param)
    return value


def _align(aligned: bool) -> str:
    return "celeba" if aligned else "auto"


def _face_options(aligned: bool = False, largest_face: bool = False, min_face_size: int = DEFAULT_MIN_FACE_SIZE,
                  detect_size: int = DETECT_MAX_SIDE, second_search: bool = True):
    """The photo options as the one object the library takes."""
    from .faces.options import FaceOptions
    return FaceOptions(_align(aligned), largest_face, min_face_size, detect_size, second_search)


overwrite_option = click.option("--overwrite", is_flag=True, help="replace an existing OUT (never one of the inputs)")


def _check_out(out, overwrite: bool, inputs=()) -> None:
    """Before any work: OUT can be written, is not an input, and exists only with --overwrite."""
    from .atomic import check_new_output
    check_new_output(out, overwrite, inputs)


@contextlib.contextmanager
def _written(out, overwrite: bool):
    """Where a command that never replaces a file writes OUT: OUT itself, or with --overwrite a
    new name beside it that then takes OUT's place whole."""
    if not overwrite:
        yield out
        return
    from .atomic import atomic_path
    with atomic_path(out) as tmp:
        os.unlink(tmp)  # the library writes only where nothing is
        yield tmp


@click.group(cls=FaceattrGroup)
@click.version_option(package_name="faceattr")
@click.option("--debug", is_flag=True, envvar=DEBUG_ENV, help=f"show the traceback of an error ({DEBUG_ENV}=1 too)")
def main(debug):
    """Facial attributes from multi-view VAE-WGAN features."""


# ---- training ------------------------------------------------------------------------------------
@main.command()
@root_option
@click.option("--layer", "layers", multiple=True, type=click.Choice(LAYER_NAMES), default=None,
              help="VGG19 layer(s) of the reconstruction loss; repeat for several "
                   "[default: relu3_1, or the --init view's]")
@click.option("--epochs", default=TrainConfig.epochs, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=TrainConfig.batch_size, show_default=True, type=click.IntRange(1))
@click.option("--lr", default=TrainConfig.lr, show_default=True, type=FiniteFloat(0, min_open=True),
              help="learning rate of the first epoch (times --lr-decay after each)")
@click.option("--lr-decay", default=TrainConfig.lr_decay, show_default=True, type=FiniteFloat(0, 1, min_open=True))
@click.option("--kl-weight", "alpha", default=TrainConfig.alpha, show_default=True,
              type=FiniteFloat(0, min_open=True), help="alpha of eq. 8 (the KL term)")
@click.option("--rec-weight", "beta", default=TrainConfig.beta, show_default=True,
              type=FiniteFloat(0, min_open=True), help="beta of eq. 8 (the reconstruction term)")
@click.option("--augment", default="", metavar="|".join(AUGMENTATIONS),
              help=f"comma-separated training augmentation: flip (mirror half the faces), shift (up to "
                   f"{SHIFT_PIXELS} px); default none, as in the paper")
@click.option("--init", default=None, metavar="pretrained:VIEW|PATH",
              help="start the VAE from a shipped view (pretrained:relu3_1) or a view/checkpoint file; "
                   "the critic starts fresh")
@click.option("--max-images", type=click.IntRange(1), default=None,
              help="use the first N training faces, and at most N of --extra-faces")
@click.option("--epoch-images", type=click.IntRange(1), default=None,
              help="faces drawn per epoch (default: one pass over the training faces)")
@click.option("--extra-faces", type=click.Path(), callback=lambda ctx, param, value: _folder(value, param), default=None,
              help="a folder of unlabeled faces mixed into the VAE and critic batches: 64x64 aligned crops, "
                   "or photos (their largest face is detected and aligned once, then cached)")
@click.option("--extra-share", type=FiniteFloat(0, 1, max_open=True), default=None,
              help="share of each batch drawn from --extra-faces  [default: in proportion to the two sets' sizes]")
@click.option("--out", default="runs/view", show_default=True, type=click.Path(file_okay=False),
              help="checkpoints, metrics.jsonl and PNG grids go in this folder")
@click.option("--resume", is_flag=True, help="continue the run in OUT from its checkpoint")
@click.option("--overwrite", is_flag=True, help="delete the run already in OUT and start afresh")
@device_option
@click.option("--precision", default="auto", type=click.Choice(PRECISIONS), show_default=True,
              help="auto: bfloat16 autocast where it was measured faster (CUDA; AMX; AVX512-BF16 on AMD)")
@click.option("--seed", default=TrainConfig.seed, show_default=True, type=SEED)
@click.option("--balance", "rec_balance", default=TrainConfig.rec_balance, type=click.Choice(["reference", "literal"]),
              show_default=True, help="reconstruction weighting of a single-layer view (docs/method.md)")
@click.option("--checkpoint-every", default=TrainConfig.checkpoint_every, show_default=True, type=click.IntRange(1))
@click.option("--vgg-weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="VGG19 weights (.h5 Keras or torchvision .pth); default: found automatically")
def train(root, layers, epochs, batch_size, lr, lr_decay, alpha, beta, augment, init, max_images, epoch_images,
          extra_faces, extra_share, out, resume, overwrite, device, precision, seed, rec_balance, checkpoint_every, vgg_weights):
    """Train one view (Algorithm 1) on the train split of a CelebA folder."""
    from .train import Runtime, train_view
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    tcfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, lr_decay=lr_decay, alpha=alpha, beta=beta,
                       augment=tuple(a for a in augment.split(",") if a), init=init, seed=seed,
                       max_images=max_images,
                       epoch_images=epoch_images, rec_balance=rec_balance, checkpoint_every=checkpoint_every,
                       extra_faces=extra_faces, extra_share=extra_share)
    res = train_view(root, out, tcfg, layers or None, resume=resume, overwrite=overwrite, vgg_weights=vgg_weights,
                     runtime=Runtime(device, precision))
    lat = res.latent
    click.echo(f"trained {res.name}: {res.steps} steps, {res.epochs} epochs -> {res.out_dir}")
    if lat:
        click.echo(f"mean KL per sample {lat['kl_per_sample']:.2f} nats, "
                   f"{lat['active_dims']}/{lat['latent_dim']} active latent dimensions")
    if res.steps < FEW_UPDATES and init is None:
        click.echo(f"note: {res.steps} updates is a short run; reconstructions take thousands of updates to "
                   "resemble their inputs (README, 'Training your own views'). --epoch-images draws more "
                   "faces per epoch.", err=True)


# ---- photos in, attributes and features out -------------------------------------------------------
def _inputs(paths):
    from .inference.predictor import collect_inputs
    from .inference.annotate import is_annotated_output
    files, skipped = collect_inputs(paths)
    drawn = [f for f in skipped if is_annotated_output(f)]
    other = [f for f in skipped if not is_annotated_output(f)]
    if other:
        click.echo(f"skipped {len(other)} file(s) without an image extension, e.g. {printable(str(other[0]))}", err=True)
    if drawn:
        click.echo(f"skipped {len(drawn)} picture(s) drawn by an earlier --annotate (*.annotated.png), "
                   f"e.g. {printable(str(drawn[0]))}", err=True)
    if not files:
        raise click.ClickException(f"no image files found in {', '.join(paths)}")
    return [str(f) for f in files]


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", default="table", type=click.Choice(["table", "json", "csv"]), show_default=True,
              help="json: one array of per-file (per-frame) records, streamed as they are computed")
@click.option("--annotate", type=click.Path(file_okay=False), default=None,
              help="write each photo (or sampled frame) with its faces, landmarks and surest attributes "
                   "drawn to this folder")
@click.option("--decision", default="accuracy", show_default=True,
              help="what makes an attribute present: accuracy (the sign of the score, the paper's rule) or "
                   "balanced (per-attribute thresholds chosen on val: finds rare attributes such as Bald or "
                   "Eyeglasses, at a lower mean accuracy); the JSON record names the rule")
@photo_options
def predict(paths, fmt, annotate, decision, aligned, largest_face, weights, batch_size, min_face_size, detect_size,
            second_search, device, every, fps):
    """Detect, align and print the 40 CelebA attributes of every face in PATHS (photos, videos or
    folders). A video gives one record per sampled frame, with its frame index and time.

    A file that cannot be read gets its error and the others go on; the exit code is then 1."""
    from .atomic import check_writable_dir
    from .inference import formats
    from .inference.predictor import AttributePredictor
    if annotate:
        check_writable_dir(annotate)
    files = _inputs(paths)
    from .faces.video import FrameSampling
    predictor = AttributePredictor(weights, device=device, batch_size=batch_size, decision=decision,
                                   faces=_face_options(aligned, largest_face, min_face_size, detect_size,
                                                       second_search))
    failed = []

    def records():
        for result in predictor.iter_results(files, progress=sys.stderr.isatty(), sampling=FrameSampling(every, fps),
                                             annotate_dir=annotate):
            r = result.to_dict()
            if r["error"]:
                failed.append(r)
            yield r
    for piece in formats.stream(records(), fmt):
        click.echo(piece, nl=False)
    for r in failed:
        click.echo(f"error: {printable(r['error'])}", err=True)
    if failed:
        sys.exit(1)


@main.group()
def heads():
    """The 40 attribute heads: refit them, and their decision thresholds, on your own labelled faces."""


@heads.command("fit")
@root_option
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="the new bundle folder (must not exist): the views copied, the new heads beside them")
@click.option("--decision", "decisions", multiple=True, default=("balanced",), show_default=True,
              help="operating points to fit on val besides the sign rule: balanced, precision>=P or "
                   "recall>=R (repeat for several)")
@click.option("--max-images", type=click.IntRange(1), default=None, help="at most this many images per split")
@weights_option
@device_option
def heads_fit(root, out, decisions, max_images, weights, device):
    """Fit the 40 linear SVMs on ROOT's train split (C per attribute and Platt calibration on val,
    as the shipped heads) and their operating points on val; write them with the views of
    --weights as a new bundle in OUT. Use it with --weights OUT in every other command."""
    from .inference.bundle import Bundle
    from .inference.heads_fit import fit_heads_bundle
    path = fit_heads_bundle(root, out, weights, tuple(decisions), device=device, max_images=max_images)
    click.echo(f"wrote {path}: heads and operating points accuracy, {', '.join(dict.fromkeys(('balanced', *decisions)))}")
    for rule, names in Bundle.load(path).manifest["heads"].get("sign_rule_fallback", {}).items():
        click.echo(f"warning: {rule}: {len(names)} attribute(s) keep the sign rule (one class in val, or no "
                   f"threshold reaches the target): {', '.join(names)}", err=True)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@out_option(".parquet, .csv or .npz; streamed in parts to OUT.parts/ and merged at the end")
@click.option("--resume", is_flag=True, help="skip inputs already in OUT (or in OUT.parts/ of a killed run) "
                                            "and add the rest; refused if the options differ")
@click.option("--overwrite", is_flag=True, help="replace an existing OUT (without it, an existing OUT is refused)")
@click.option("--chunk-size", default=CHUNK, show_default=True, type=click.IntRange(1),
              help="inputs per part file (what a killed run can lose at most)")
@photo_options
def extract(paths, out, resume, overwrite, chunk_size, aligned, largest_face, weights, batch_size, min_face_size,
            detect_size, second_search, device, every, fps):
    """Write multi-view features, one row per face (file, frame, time_s, face index), to OUT."""
    from .faces.video import FrameSampling
    from .inference.bundle import Bundle
    from .inference.extract import check_output, extract_to_file
    from .inference.pipeline import FacePipeline
    check_output(out)  # before the inputs are listed
    sampling = FrameSampling(every, fps)
    files = _inputs(paths)
    pipeline = FacePipeline.from_bundle(Bundle.load(weights), heads=False, device=device, batch_size=batch_size,
                                        options=_face_options(aligned, largest_face, min_face_size, detect_size,
                                                              second_search))
    s = extract_to_file(files, out, pipeline, sampling, resume=resume, overwrite=overwrite, chunk=chunk_size,
                        progress=sys.stderr.isatty())
    skipped = f", {s['skipped']} already there" if s["skipped"] else ""
    click.echo(f"wrote {s['rows']} faces x {s['features']} features from {s['inputs'] - s['skipped']} files "
               f"to {out} ({s['total_rows']} rows in all{skipped})")
    for name in s["no_face"][:20]:
        click.echo(f"no face found: {printable(name)}", err=True)
    if len(s["no_face"]) > 20:
        click.echo(f"... and {len(s['no_face']) - 20} more without a face", err=True)
    for e in s["errors"]:
        click.echo(f"error: {printable(e['error'])}", err=True)
    if s["total_rows"] == 0:
        click.echo(f"warning: no face in any input; {out} has no rows", err=True)
    if s["errors"]:
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-upload-mb", default=MAX_UPLOAD_BYTES / 2**20, show_default=True, type=FiniteFloat(0, min_open=True),
              help="largest accepted upload")
@click.option("--timeout", "timeout_s", default=TIMEOUT_S, show_default=True, type=FiniteFloat(0, min_open=True),
              help="seconds a request may take")
@click.option("--upload-timeout", "upload_timeout_s", default=UPLOAD_TIMEOUT_S, show_default=True,
              type=FiniteFloat(0, min_open=True), help="seconds a client may take to send its upload (then 408)")
@min_face_size_option
@detect_size_option
@weights_option
@batch_size_option
@device_option
def serve(host, port, max_upload_mb, timeout_s, upload_timeout_s, min_face_size, detect_size, weights, batch_size,
          device):
    """Serve predictions over HTTP: POST /predict (multipart field 'file'), GET /health,
    GET /metadata, docs at /docs. Needs the [serve] extra."""
    try:
        from .serve import Limits, serve as run
    except ImportError:
        raise click.ClickException("faceattr serve needs FastAPI and uvicorn: pip install 'faceattr[serve]'") from None
    run(host, port, weights=weights, device=device, batch_size=batch_size,
        faces=_face_options(min_face_size=min_face_size, detect_size=detect_size),
        limits=Limits(int(max_upload_mb * 1024 * 1024), timeout_s, upload_timeout_s))


# ---- benchmark -------------------------------------------------------------------------------------
@main.group()
def benchmark():
    """Measure the toolkit against the paper and baselines."""


@benchmark.command("celeba")
@root_option
@click.option("--split", default="test", type=click.Choice(["test", "val", "train", "all"]), show_default=True)
@click.option("--heads", default="pretrained", type=click.Choice(["pretrained", "fit"]), show_default=True,
              help="the shipped heads, or 40 linear SVMs fitted on ROOT's train split (C chosen on val)")
@click.option("--views", default=None, help="comma-separated views, e.g. relu3_1,relu4_1 (default: all)")
@click.option("--baselines", default="majority", show_default=True,
              help="comma-separated: majority, pixels, pca, views, vgg19 (needs the [train] extra), hidden")
@click.option("--max-images", type=click.IntRange(1), default=None, help="first N images of each split")
@click.option("--out", default="benchmark-results", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-cache", is_flag=True, help="neither read nor write the crop and feature cache")
@click.option("--by", default=None, metavar="ATTRIBUTES|CSV",
              help="also report accuracy by group: attributes, comma-separated (e.g. Male,Young), or a CSV of "
                   "file,group rows (groups.csv, groups.md, groups.png)")
@click.option("--overwrite", is_flag=True, help="replace the files of an earlier run in OUT")
@weights_option
@batch_size_option
@device_option
def benchmark_celeba(root, split, heads, views, baselines, max_images, out, no_cache, by, overwrite, weights, batch_size,
                     device):
    """Reproduce the paper's Table 1 on a CelebA folder, with baselines, side by side."""
    from .benchmark import BenchmarkConfig, files_written, run_benchmark, summary_text
    config = BenchmarkConfig(heads, tuple(views.split(",")) if views else None,
                             tuple(b for b in baselines.split(",") if b), max_images, weights, batch_size, device,
                             progress=sys.stderr.isatty(), use_cache=not no_cache, by=by)
    res = run_benchmark(root, split, config, out, overwrite=overwrite)
    click.echo(summary_text(res))
    click.echo(f"results in {out}/ ({', '.join(files_written(by is not None))})")


@main.command()
@click.option("--clear", is_flag=True, help="delete every cached crop and feature file")
def cache(clear):
    """Where the crop and feature cache lives and how big it is (FACEATTR_CACHE, FACEATTR_CACHE_MAX_GB)."""
    from . import cache as cache_mod
    folder = cache_mod.cache_dir()
    if clear:
        n, size = cache_mod.clear()
        click.echo(f"removed {n} files ({size / 1e6:.1f} MB) from {folder}")
        return
    files = cache_mod.entries()
    size = cache_mod.total_bytes(files)
    click.echo(f"{folder}: {len(files)} files, {size / 1e6:.1f} MB (limit {cache_mod.max_bytes() / 1e9:g} GB"
               f"{'; disabled by FACEATTR_NO_CACHE' if not cache_mod.enabled() else ''})")


# ---- export -----------------------------------------------------------------------------------------
@main.group()
def export():
    """Take the model where torch is not."""


@export.command("onnx")
@click.argument("out_dir", type=click.Path(dir_okay=True, file_okay=False))
@click.option("--views", default=None, help="comma-separated views (default: those the heads read)")
@click.option("--decision", default="accuracy", show_default=True,
              help="the rule of the model's decisions output: accuracy (the sign) or balanced (or another "
                   "operating point the heads carry)")
@click.option("--overwrite", is_flag=True, help="replace the model already in OUT_DIR")
@weights_option
def export_onnx_cmd(out_dir, views, decision, overwrite, weights):
    """One ONNX model: aligned 64x64 uint8 faces in; the multi-view features, the 40 calibrated
    probabilities and decisions out; its description in its metadata, and OUT_DIR/README.md on
    how to run it with onnxruntime. Needs the [onnx] extra."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise click.ClickException("faceattr export onnx needs onnx: pip install 'faceattr[onnx]'") from None
    from .onnx_export import check_out_dir, export_onnx
    check_out_dir(out_dir, overwrite)  # before the weights load
    path = export_onnx(out_dir, weights, views.split(",") if views else None, decision, overwrite)
    click.echo(f"wrote {path} and {path.parent / 'README.md'}")


# ---- the generative side ---------------------------------------------------------------------------
def _bundle(weights):
    from .inference.bundle import Bundle
    return Bundle.load(weights)


@main.command()
@click.argument("photos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@out_option("PNG grid: each input beside its reconstruction by every view")
@overwrite_option
@aligned_option
@weights_option
def reconstruct(photos, out, overwrite, aligned, weights):
    """Each aligned input beside its reconstruction by every view."""
    from . import generate
    _check_out(out, overwrite, photos)
    with _written(out, overwrite) as target:
        generate.reconstruct(_bundle(weights), photos, _align(aligned), out=target)
    click.echo(f"wrote {out}")


@main.command()
@view_option
@click.option("-n", "n", default=64, type=click.IntRange(1, MAX_SAMPLES), show_default=True)
@click.option("--seed", default=0, type=SEED, show_default=True)
@out_option("PNG grid of the samples")
@overwrite_option
@weights_option
def sample(view, n, seed, out, overwrite, weights):
    """Faces decoded from z ~ N(0, I)."""
    from . import generate
    _check_out(out, overwrite)
    with _written(out, overwrite) as target:
        generate.sample(_bundle(weights), view, n, seed, out=target)
    click.echo(f"wrote {out}")


@main.command()
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
@steps_option
@view_option
@aligned_option
@out_option("PNG row from A to B")
@overwrite_option
@weights_option
def interpolate(a, b, steps, view, aligned, out, overwrite, weights):
    """Decode (1 - t) z_A + t z_B from A to B."""
    from . import generate
    _check_out(out, overwrite, (a, b))
    with _written(out, overwrite) as target:
        generate.interpolate(_bundle(weights), a, b, steps, view, _align(aligned), out=target)
    click.echo(f"wrote {out}")


@main.command()
@click.argument("photo", type=click.Path(exists=True, dir_okay=False))
@click.option("--attribute", required=True, help="a CelebA attribute name, e.g. Smiling")
@click.option("--strength", default=1.0, type=FiniteFloat(-MAX_STRENGTH, MAX_STRENGTH), show_default=True,
              help="attribute vectors added (negative removes the attribute)")
@steps_option
@view_option
@aligned_option
@out_option("PNG row from the input to STRENGTH")
@overwrite_option
@weights_option
def manipulate(photo, attribute, strength, steps, view, aligned, out, overwrite, weights):
    """Add or remove an attribute: decode z + a * v_attribute for a from 0 to STRENGTH."""
    from . import generate
    from .data.attributes import attribute_index
    attribute_index(attribute)  # an unknown name fails before the weights load
    _check_out(out, overwrite, (photo,))
    with _written(out, overwrite) as target:
        generate.manipulate(_bundle(weights), photo, attribute, strength, steps, view, _align(aligned), out=target)
    click.echo(f"wrote {out}")


@main.command("attribute-vectors")
@root_option
@out_option(".npz to write (default: into the --weights folder, updating its manifest; never into the "
            "bundle installed with faceattr)", required=False)
@overwrite_option
@click.option("--max-images", type=click.IntRange(1), default=None, help="use the first N training faces")
@weights_option
@device_option
def attribute_vectors_cmd(root, out, overwrite, max_images, weights, device):
    """Recompute the attribute vectors from ROOT's train split, for every view."""
    from .generate import write_attribute_vectors
    path = write_attribute_vectors(_bundle(weights), root, out, device, max_images, overwrite=overwrite)
    click.echo(f"wrote {path}")


@main.command()
@root_option
@click.option("-n", "n", default=625, show_default=True, type=click.IntRange(4, MAX_TSNE_FACES),
              help="number of faces; a square number (side x side grid)")
@click.option("--split", default="test", type=click.Choice(["train", "val", "test", "all"]), show_default=True)
@view_option
@click.option("--seed", default=0, type=SEED, show_default=True)
@out_option("PNG map")
@overwrite_option
@weights_option
def tsne(root, n, split, view, seed, out, overwrite, weights):
    """Faces laid out on a grid by a t-SNE of their latent codes."""
    import math
    from . import generate
    from .data.celeba import CelebA
    side = math.isqrt(n)
    if side * side != n:
        raise click.ClickException(f"-n must be a square number (e.g. 625 = 25 x 25), got {n}")
    _check_out(out, overwrite)
    ds = CelebA.load(root, split, max_images=n)
    with _written(out, overwrite) as target:
        generate.tsne_map(_bundle(weights), ds.crops(), view, side, seed, out=target)
    click.echo(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
