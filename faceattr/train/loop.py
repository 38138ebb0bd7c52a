"""Algorithm 1: train one VAE-WGAN view on 64x64 faces (paper section 3, docs/method.md).

``Trainer`` reads top to bottom: one step (``train_step``), the epochs around it (``fit``), and
what is measured and saved at their ends. What it holds lives in its parts: the networks and
their state (``Networks``), the faces and their order (``FaceFeed``), the run's files
(``RunFolder``). Its one extension point is extra loss terms (faceattr.train.terms).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..device import autocast
from ..nn import checkpoint as ckpt
from ..nn.config import ModelConfig, TrainConfig
from ..nn.losses import critic_loss, generator_loss, kl_divergence, reconstruction_loss, vae_loss
from ..nn.models import to_float_images
from ..nn.taps import LAYER_NAMES
from .feeding import FaceFeed
from .measures import LATENT_FACES, balancing, generalisation_report, latent_statistics, write_grid
from .networks import Networks
from .resume import check_resumable
from .run_folder import ImageRate, RunFolder, StopRule, check_finite
from .runtime import Placement, Runtime
from .terms import StepBatch, term_records


@dataclass
class TrainResult:
    name: str  # the view's layers, e.g. relu3_1
    out_dir: Path
    steps: int
    epochs: int
    final: dict = field(default_factory=dict)
    latent: dict = field(default_factory=dict)


class Trainer:
    """Trains one view on ``feed`` (a ``FaceFeed``, or the (N, 64, 64, 3) uint8 crops alone) into
    the run folder ``out_dir``, with the frozen ``loss_net`` (VGG19's taps). ``runtime``: device,
    precision, compile, progress; ``vae_state``: the VAE to start from; ``terms``: extra loss terms.

    Runs unchanged under ``torchrun --nproc_per_node N`` (DistributedDataParallel; gloo on CPU,
    nccl on CUDA): each process takes every N-th face of the epoch's shuffled order and
    ``batch_size`` is per process.
    """

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, feed, out_dir, loss_net,
                 runtime: Runtime = Runtime(), vae_state: dict | None = None, terms=()):
        self.model_cfg, self.cfg, self.runtime = model_cfg, train_cfg, runtime
        self.place = Placement.of(runtime)
        feed = feed if isinstance(feed, FaceFeed) else FaceFeed(np.asarray(feed))
        self.feed = feed.put(train_cfg, self.place, model_cfg.image_size)
        self.nets = Networks(model_cfg, train_cfg, loss_net, self.place, vae_state, runtime.compile)
        self.run = RunFolder(out_dir, writer=self.place.rank == 0)
        self.terms = list(terms)
        self.layers_needed = tuple(l for l in LAYER_NAMES if l in model_cfg.layers or l == model_cfg.critic_input_layer)
        self.epoch, self.step_in_epoch, self.step = 0, 0, 0
        self.last_latent: dict = {}
        self.last_generalisation: dict = {}
        self._reference: dict | None = None

    # What callers and studies read, under the names they had.
    vae = property(lambda self: self.nets.vae)
    critic = property(lambda self: self.nets.critic)
    loss_net = property(lambda self: self.nets.loss_net)
    device = property(lambda self: self.place.device)
    images = property(lambda self: self.feed.images)
    steps_per_epoch = property(lambda self: self.feed.steps_per_epoch)
    out_dir = property(lambda self: self.run.path)
    checkpoint_path = property(lambda self: self.run.checkpoint)

    @property
    def reference(self) -> dict:
        """The balancing of this view's reconstruction term, on the first ``reference_images``
        training faces; computed at the first step, taken from the checkpoint on resume."""
        if self._reference is None:
            n = min(self.cfg.reference_images, len(self.images))
            faces = to_float_images(self.images[:n], self.place.fmt)
            self._reference = balancing(self.nets.loss_net, faces, self.model_cfg.layers, self.cfg.rec_balance)
        return self._reference

    # ---- one step of Algorithm 1 ---------------------------------------------------------------
    def train_step(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> dict:
        """One update on the batch ``x`` (B, 3, 64, 64) of the feed's faces ``idx``."""
        cfg, nets, tap = self.cfg, self.nets, self.model_cfg.critic_input_layer
        with autocast(self.place.device, self.place.bf16):
            x_hat, mean, logvar = nets.vae_step(x, nets.noise)  # (B, 3, 64, 64), (B, 100) x2
            with torch.no_grad():
                f_x = nets.step_loss_net(x, self.layers_needed)
            f_xhat = nets.step_loss_net(x_hat, self.layers_needed)
            d_real, d_fake = nets.critic_step(f_x[tap], f_xhat[tap])  # (B,), (B,)
        kl = kl_divergence(mean, logvar)
        scale = self.reference["scale"]
        rec = reconstruction_loss(f_x, f_xhat, self.model_cfg.layers, scale)
        gan = generator_loss(d_fake, cfg.gan_label)
        vae_without_gan = vae_loss(kl, rec, 0.0, cfg.alpha, cfg.beta)
        extra = {}
        if self.terms:
            batch = StepBatch(idx, x, mean, logvar, x_hat)
            for term in self.terms:
                value = term(batch)
                vae_without_gan = vae_without_gan + value
                extra[term.name] = value.detach()
        loss_c = critic_loss(d_real, d_fake, cfg.gan_label)
        nets.update(vae_without_gan, loss_c, f_xhat[tap], cfg.clip)
        # Tensors, not floats: reading them forces a device sync, done only when logging.
        return {"kl": kl.detach(), "rec": rec.detach() / scale, "rec_scaled": rec.detach(),
                "gan": gan.detach(), "critic": loss_c.detach(),
                "wasserstein": (d_real.float().mean() - d_fake.float().mean()).detach(),
                "loss": (vae_without_gan + gan).detach(), **extra}

    # ---- the epochs ----------------------------------------------------------------------------
    def fit(self, resume: bool = False, max_steps: int | None = None, time_limit_s: float | None = None,
            overwrite: bool = False) -> TrainResult:
        """Train for ``cfg.epochs``; ``resume`` continues from the run folder's checkpoint.
        ``max_steps`` or ``time_limit_s`` stop early (after a checkpoint), as an interruption would.
        A folder that already holds a run is refused unless ``resume`` or ``overwrite`` (which
        deletes that run's files first); so is a folder another training process is writing."""
        self.run.open()
        try:
            self._start_or_resume(resume, overwrite)
            bar = progress_bar(self) if self.runtime.progress and self.run.writer else None
            stop = StopRule(max_steps, time_limit_s)
            self.nets.train()
            stopped = False
            while self.epoch < self.cfg.epochs and not stopped:
                stopped = self._run_epoch(bar, stop)
                if not stopped:
                    self._end_epoch()
            if bar is not None:
                bar.close()
            if stopped:
                self.save_checkpoint()
            elif self.run.writer:
                self.save_view()
        finally:
            self.run.close()
        return TrainResult(self.model_cfg.name, self.out_dir, self.step, self.epoch, self.run.last_metrics(),
                           self.last_latent)

    def _start_or_resume(self, resume: bool, overwrite: bool) -> None:
        if not resume:
            self.run.claim(overwrite)
        if resume and self.checkpoint_path.is_file():
            self.load_state(ckpt.load(self.checkpoint_path))
            self.run.truncate_log(self.step)
        else:
            self.run.restart_log()
            self.run.log({"event": "start", "reference": self.reference, "model_config": self.model_cfg.to_dict(),
                          "train_config": self.cfg.to_dict(), "terms": term_records(self.terms),
                          "device": str(self.device), "bf16": self.place.bf16, "world_size": self.place.world})

    def _run_epoch(self, bar, stop: StopRule) -> bool:
        """The rest of the current epoch's steps; True when ``stop`` ended it early."""
        lr = self.cfg.lr * self.cfg.lr_decay ** self.epoch
        self.nets.set_lr(lr)
        order, rate, b = self.feed.order(self.epoch), ImageRate(), self.cfg.batch_size
        for i in range(self.step_in_epoch, self.steps_per_epoch):
            idx = order[i * b:(i + 1) * b].to(self.device)
            m = self.train_step(self.feed.augment(to_float_images(self.images[idx], self.place.fmt)), idx)
            self.step, self.step_in_epoch = self.step + 1, i + 1
            rate.add(len(idx) * self.place.world)
            if self.step % self.cfg.log_every == 0 or self.step_in_epoch == self.steps_per_epoch:
                self._log_step(m, lr, rate.take(), bar)
            if bar is not None:
                bar.update(1)
            if self.step % self.cfg.checkpoint_every == 0:
                self.save_checkpoint()
            if stop(self.step):
                return True
        return False

    def _log_step(self, metrics: dict, lr: float, images_per_s: float, bar) -> None:
        """One logged step: the metrics read off the device (a sync), checked finite, written."""
        m = {k: float(v) for k, v in metrics.items()}
        check_finite(m, self.step, self.checkpoint_path)
        m.update(step=self.step, epoch=self.epoch, lr=lr, images_per_s=images_per_s)
        self.run.log(m)
        if bar is not None:
            bar.set_postfix(kl=f"{m['kl']:.1f}", rec=f"{m['rec']:.3g}", critic=f"{m['critic']:.2f}",
                            W=f"{m['wasserstein']:.2f}", ips=f"{m['images_per_s']:.0f}")

    def _end_epoch(self) -> None:
        self._measure_latent()
        held = self.feed.held_out if self.run.writer else None
        self.last_generalisation = {} if held is None else generalisation_report(
            self.vae, self.loss_net, self.feed, self.device, self.epoch + 1 if self.runtime.progress else None)
        if self.run.writer:
            gen = {"generalisation": self.last_generalisation} if self.last_generalisation else {}
            self.run.log({"event": "epoch_end", "epoch": self.epoch + 1, "step": self.step, **self.last_latent, **gen})
            write_grid(self.vae, self.images, self.place, self.run.grid(self.epoch + 1))
        self.epoch += 1
        self.step_in_epoch = 0
        self.save_checkpoint()

    # ---- what is measured and saved ------------------------------------------------------------
    def _measure_latent(self) -> None:
        faces = self.images[: min(LATENT_FACES, len(self.images))]
        self.last_latent = latent_statistics(self.vae.encoder, faces, self.device, self.place.bf16)

    def state(self) -> dict:
        return {"model_config": self.model_cfg.to_dict(), "train_config": self.cfg.to_dict(),
                **self.nets.state_dict(), "augment_rng": self.feed.augment_rng.get_state(),
                "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "step": self.step,
                "latent": self.last_latent, "n_images": len(self.images), "data": self.feed.description,
                "reference": self.reference, "terms": term_records(self.terms)}

    def load_state(self, obj: dict) -> None:
        check_resumable(self.checkpoint_path, obj, self.model_cfg, self.cfg, self.feed.description,
                        term_records(self.terms))
        self.nets.load_state_dict(obj)
        if "augment_rng" in obj:
            self.feed.augment_rng.set_state(obj["augment_rng"])
        self.epoch, self.step_in_epoch, self.step = obj["epoch"], obj["step_in_epoch"], obj["step"]
        # Checkpoints before the reference left TrainConfig kept it there.
        self._reference = obj.get("reference") or obj["train_config"]["reference"]
        self.last_latent = obj.get("latent", {})

    def save_checkpoint(self) -> None:
        if self.run.writer:
            ckpt.save(self.state(), self.checkpoint_path)

    def save_view(self, measure_latent: bool = False) -> Path:
        """Write ``view.pt``: the VAE with its history (steps, config, latent statistics). A run
        stopped early can still hand over its view so far with ``measure_latent=True``, which
        measures the latent now; its checkpoint stays, so ``fit(resume=True)`` continues it."""
        if measure_latent:
            self._measure_latent()
        ckpt.save_view(self.vae, self.run.view,
                       meta={"latent": self.last_latent, "steps": self.step, "epochs": self.epoch,
                             "train_config": self.cfg.to_dict(), "reference": self.reference,
                             "final": self.run.last_metrics(), "data": self.feed.description,
                             "terms": term_records(self.terms)})
        return self.run.view


def progress_bar(trainer: Trainer):
    from tqdm import tqdm
    return tqdm(total=trainer.cfg.epochs * trainer.steps_per_epoch, initial=trainer.step,
                desc=f"train {trainer.model_cfg.name}", unit="step", dynamic_ncols=True)
