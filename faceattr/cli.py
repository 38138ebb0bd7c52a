"""The ``faceattr`` command line: parses arguments and calls the library, nothing more."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .config import LAYER_NAMES

DEVICE = click.Choice(["auto", "cpu", "cuda"])


def _fail(e: Exception):
    raise click.ClickException(str(e)) from None


@click.group()
@click.version_option(package_name="faceattr")
def main():
    """Facial attributes from multi-view VAE-WGAN features."""


@main.command()
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="CelebA folder")
@click.option("--layer", "layers", multiple=True, type=click.Choice(LAYER_NAMES), default=("relu3_1",),
              show_default=True, help="VGG19 layer(s) of the reconstruction loss; repeat for several")
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1))
@click.option("--max-images", type=click.IntRange(1), default=None, help="use the first N training faces")
@click.option("--epoch-images", type=click.IntRange(1), default=None,
              help="faces drawn per epoch (default: one pass over the training faces)")
@click.option("--out", default="runs/view", show_default=True, type=click.Path(file_okay=False),
              help="checkpoints, metrics.jsonl and PNG grids go here")
@click.option("--resume", is_flag=True, help="continue from OUT/checkpoint.pt")
@click.option("--device", default="auto", type=DEVICE, show_default=True)
@click.option("--precision", default="auto", type=click.Choice(["auto", "bf16", "float32"]), show_default=True,
              help="auto: bfloat16 autocast on CUDA and on CPUs with AMX, float32 elsewhere")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--balance", "rec_balance", default="reference", type=click.Choice(["reference", "literal"]),
              show_default=True, help="reconstruction weighting of a single-layer view (SPEC.md)")
@click.option("--checkpoint-every", default=500, show_default=True, type=click.IntRange(1))
@click.option("--vgg-weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="VGG19 weights (.h5 Keras or torchvision .pth); default: found automatically")
def train(root, layers, epochs, batch_size, max_images, epoch_images, out, resume, device, precision, seed,
          rec_balance, checkpoint_every, vgg_weights):
    """Train one view (Algorithm 1) on the train split of a CelebA folder."""
    from .trainer import train_view
    try:
        res = train_view(root, layers, out, epochs=epochs, batch_size=batch_size, max_images=max_images,
                         resume=resume, device=device, seed=seed, vgg_weights=vgg_weights,
                         precision=precision, epoch_images=epoch_images, rec_balance=rec_balance,
                         checkpoint_every=checkpoint_every)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(e)
    lat = res.latent
    click.echo(f"trained {'+'.join(layers)}: {res.steps} steps, {res.epochs} epochs -> {res.out_dir}")
    if lat:
        click.echo(f"mean KL per sample {lat['kl_per_sample']:.2f} nats, "
                   f"{lat['active_dims']}/{lat['latent_dim']} active latent dimensions")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
