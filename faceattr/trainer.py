"""Algorithm 1: train one VAE-WGAN view on 64x64 faces (paper section 3, docs/method.md)."""
from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .nn import checkpoint as ckpt
from .atomic import write_text
from .nn.config import SHIFT_PIXELS, ModelConfig, TrainConfig
from .nn.taps import LAYER_NAMES
from .device import autocast, memory_format, resolve_device, use_bf16
from .grid import save_grid
from .locks import FolderLock
from .nn.losses import critic_loss, cross_correlation, feature_loss, generator_loss, kl_divergence, kl_per_sample, \
    layer_weight, reconstruction_loss, vae_loss
from .nn.models import VAE, Critic, to_float_images
from .errors import InputError, NonFiniteLoss, NotAFolder, OutputExists

ACTIVE_VARIANCE = 0.01  # a latent dimension is active when Var_x[E(z|x)] exceeds this
# TrainConfig fields a resumed run must share with the run it continues.
RESUME_MUST_MATCH = ("batch_size", "lr", "lr_decay", "alpha", "beta", "gan_label", "clip", "rec_balance",
                     "reference_images", "seed", "max_images", "epoch_images", "augment", "init",
                     "decorrelate", "decorrelate_from", "extra_share", "extra_faces_count", "extra_faces_sha256")
RUN_FILES = ("checkpoint.pt", "metrics.jsonl", "view.pt")  # what a run folder holds
GENERALISATION_FACES = 512  # train and held-out faces each, measured at every epoch's end
# Seeds of the three random streams, derived from TrainConfig.seed: primes apart, so no two streams
# (nor two processes' streams, offset by rank) start from the same state.
NOISE_SEED_FACTOR = 7919  # the reparameterisation noise, on the device
AUGMENT_SEED_FACTOR = 104_729  # flips and shifts, on the CPU
EPOCH_ORDER_SEED_FACTOR = 100_003  # each epoch's shuffle, shared by all processes


class _CriticPair(nn.Module):
    """One forward for real and reconstructed features, so DDP sees one call per step."""

    def __init__(self, critic: Critic):
        super().__init__()
        self.critic = critic

    def forward(self, real, fake):
        return self.critic(real), self.critic(fake)


@torch.no_grad()
def reference_terms(loss_net, images: torch.Tensor) -> dict[str, float]:
    """Each layer's weighted term (100/C_l^2) L_l when every image is replaced by the average face."""
    x = images.float()
    mean_face = x.mean(dim=0, keepdim=True)
    f_mean = loss_net(mean_face, LAYER_NAMES)
    totals = {l: 0.0 for l in LAYER_NAMES}
    for chunk in x.split(64):
        f = loss_net(chunk, LAYER_NAMES)
        for l in LAYER_NAMES:
            totals[l] += layer_weight(l) * feature_loss(f[l], f_mean[l].expand_as(f[l])).item() * len(chunk)
    return {l: v / len(x) for l, v in totals.items()}


@torch.no_grad()
def latent_statistics(encoder, images_uint8: torch.Tensor, device, bf16: bool, batch: int = 256) -> dict:
    """Mean KL per sample and the number of active latent dimensions on the given faces."""
    was_training = encoder.training
    encoder.eval()
    fmt = memory_format(device, bf16)
    means, kls = [], []
    for chunk in images_uint8.split(batch):
        x = to_float_images(chunk.to(device), fmt)
        with autocast(device, bf16):
            m, lv = encoder(x)
        means.append(m.float().cpu())
        kls.append(kl_per_sample(m, lv).cpu())
    encoder.train(was_training)
    mu = torch.cat(means)
    var = mu.var(dim=0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    return {"kl_per_sample": float(torch.cat(kls).mean()),
            "active_dims": int((var > ACTIVE_VARIANCE).sum()),
            "latent_dim": int(mu.shape[1])}


@dataclass
class TrainResult:
    name: str  # the view's layers, e.g. relu3_1
    out_dir: Path
    steps: int
    epochs: int
    final: dict = field(default_factory=dict)
    latent: dict = field(default_factory=dict)


def join_process_group(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device). Under torchrun (WORLD_SIZE > 1) the process
    group is started (nccl on CUDA, gloo on the CPU) and each CUDA process takes its LOCAL_RANK's
    GPU; a single process is rank 0 of 1 on ``device``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def _passes(n: int, count: int, g: torch.Generator) -> torch.Tensor:
    """``count`` indices of 0..n-1: as many reshuffled passes over them as it takes."""
    return torch.cat([torch.randperm(n, generator=g) for _ in range(-(-count // n))])[:count]


class StopRule:
    """When a run stops before its epochs are done: after ``max_steps`` steps in all, or once
    ``time_limit_s`` seconds have passed since it was made (as an interruption would)."""

    def __init__(self, max_steps: int | None = None, time_limit_s: float | None = None):
        self.max_steps, self.time_limit_s, self.started = max_steps, time_limit_s, time.perf_counter()

    def __call__(self, step: int) -> bool:
        return (self.max_steps is not None and step >= self.max_steps) or (
            self.time_limit_s is not None and time.perf_counter() - self.started > self.time_limit_s)


class ImageRate:
    """Training images per second since the last ``take``."""

    def __init__(self):
        self.t0, self.n = time.perf_counter(), 0

    def add(self, n: int) -> None:
        self.n += n

    def take(self) -> float:
        rate = self.n / max(time.perf_counter() - self.t0, 1e-9)
        self.t0, self.n = time.perf_counter(), 0
        return rate


class Trainer:
    """Trains one view. ``images`` are (N, 64, 64, 3) uint8 training crops.

    Runs unchanged under ``torchrun --nproc_per_node N`` (DistributedDataParallel; gloo on CPU,
    nccl on CUDA): each process takes every N-th face of the epoch's shuffled order and
    ``batch_size`` is per process.
    """

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, images: np.ndarray,
                 out_dir: str | os.PathLike, loss_net, device="auto", precision: str = "auto",
                 progress: bool = True, vae_state: dict | None = None, data: str | None = None,
                 compile: bool = False, other_latents: np.ndarray | None = None,
                 extra_images: np.ndarray | None = None, held_out: np.ndarray | None = None):
        self.model_cfg, self.cfg = model_cfg, train_cfg
        self.out_dir = Path(out_dir)
        self.data = data  # what the images are, e.g. "ROOT train split, 13603 faces"; checked on resume
        device = resolve_device(device)
        self.bf16 = use_bf16(device, precision)
        self.fmt = memory_format(device, self.bf16)
        self.progress = progress
        self.rank, self.world, self.device = join_process_group(device)
        self.n_main = len(images)  # the labelled set's faces come first; extra faces (unlabeled) after
        self.images = self._put_images(images if extra_images is None else np.concatenate([images, extra_images]))
        self.other_latents = self._put_other_latents(other_latents)  # (N, e) or None
        self.loss_net, self.step_loss_net = self._put_loss_networks(loss_net)
        self.layers_needed = tuple(l for l in LAYER_NAMES
                                   if l in model_cfg.layers or l == model_cfg.critic_input_layer)
        self._build_networks(vae_state)
        self.noise = torch.Generator(device=self.device)
        self.noise.manual_seed(train_cfg.seed * NOISE_SEED_FACTOR + self.rank)
        self.augment_rng = torch.Generator()  # on the CPU: the draws are per face, not per pixel
        self.augment_rng.manual_seed(train_cfg.seed * AUGMENT_SEED_FACTOR + self.rank)
        self.epoch, self.step_in_epoch, self.step = 0, 0, 0
        self.last_latent: dict = {}
        self._reference: dict | None = None
        self.vae_ddp, self.critic_ddp = self._wrapped(compile)
        # faces the view never trains on (val): the generalisation measure at each epoch's end
        self.held_out = None if held_out is None else torch.from_numpy(np.require(held_out, np.uint8, ["C", "W"]))
        self.last_generalisation: dict = {}

    def _put_images(self, images: np.ndarray) -> torch.Tensor:
        """The training faces on the device, after checking there is a batch of them per process."""
        side, cfg = self.model_cfg.image_size, self.cfg
        if images.ndim != 4 or images.shape[1:] != (side, side, 3):
            raise InputError(f"images must be (N, {side}, {side}, 3) uint8, got {images.shape}")
        if len(images) // self.world < cfg.batch_size:
            raise InputError(f"{len(images)} images are fewer than one batch of {cfg.batch_size} per process")
        self.epoch_images = cfg.epoch_images or len(images)
        self.steps_per_epoch = self.epoch_images // self.world // cfg.batch_size
        return torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).to(self.device)

    def _put_other_latents(self, other_latents) -> torch.Tensor | None:
        """The other views' latent means of each face, which TrainConfig.decorrelate needs."""
        if self.cfg.decorrelate <= 0:
            return None
        n = len(self.images)
        if other_latents is None or other_latents.ndim != 2 or len(other_latents) != n:
            got = None if other_latents is None else other_latents.shape
            raise InputError(f"decorrelate={self.cfg.decorrelate} needs the other views' latents of the "
                             f"{n} faces as an (N, e) array (other_view_latents), got {got}")
        return torch.as_tensor(np.asarray(other_latents, np.float32), device=self.device)

    def _put_loss_networks(self, loss_net):
        """(the loss network, the one the steps use). The second is the frozen VGG's weights stored
        once in bfloat16 (instead of autocast casting them twice a step); the preprocessing and the
        reference terms stay float32."""
        loss_net = loss_net.to(self.device).to(memory_format=self.fmt)
        if not self.bf16:
            return loss_net, loss_net
        step_net = copy.deepcopy(loss_net)
        step_net.features.to(torch.bfloat16)
        return loss_net, step_net

    def _build_networks(self, vae_state: dict | None) -> None:
        torch.manual_seed(self.cfg.seed)
        vae = VAE(self.model_cfg)
        if vae_state is not None:  # fine-tuning from an existing view (TrainConfig.init)
            vae.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in vae_state.items()})
        self.vae = vae.to(self.device).to(memory_format=self.fmt)
        self.critic = Critic(self.model_cfg).to(self.device).to(memory_format=self.fmt)
        self.opt_vae = torch.optim.Adam(self.vae.parameters(), lr=self.cfg.lr)
        self.opt_critic = torch.optim.Adam(self.critic.parameters(), lr=self.cfg.lr)

    def _wrapped(self, compile: bool):
        """The modules the steps call: compiled (a speed option only: the state dicts stay the
        plain modules'), and wrapped in DistributedDataParallel under torchrun."""
        vae, critic_pair = self.vae, _CriticPair(self.critic)
        if compile:
            vae, critic_pair = torch.compile(vae), torch.compile(critic_pair)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [self.device.index] if self.device.type == "cuda" else None
            vae, critic_pair = DDP(self.vae, device_ids=ids), DDP(critic_pair, device_ids=ids)
        return vae, critic_pair

    # ---- set-up -------------------------------------------------------------------------------
    @property
    def reference(self) -> dict:
        """The balancing of this view's reconstruction term (docs/method.md, "Balancing a
        single-layer view"): each layer's weighted term for the average-face output on the first
        ``reference_images`` training faces, their total, and the scale applied. Computed once, at
        the first step; a resumed run takes it from its checkpoint."""
        if self._reference is None:
            n = min(self.cfg.reference_images, len(self.images))
            per_layer = reference_terms(self.loss_net, to_float_images(self.images[:n], self.fmt))
            total = sum(per_layer.values())
            chosen = sum(per_layer[l] for l in self.model_cfg.layers)
            scale = total / chosen if self.cfg.rec_balance == "reference" else 1.0
            self._reference = {"per_layer": per_layer, "total": total, "scale": scale, "images": n}
        return self._reference

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def state(self) -> dict:
        return {
            "model_config": self.model_cfg.to_dict(), "train_config": self.cfg.to_dict(),
            "vae": self.vae.state_dict(), "critic": self.critic.state_dict(),
            "opt_vae": self.opt_vae.state_dict(), "opt_critic": self.opt_critic.state_dict(),
            "noise": self.noise.get_state(), "augment_rng": self.augment_rng.get_state(), "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch, "step": self.step, "latent": self.last_latent,
            "n_images": len(self.images), "data": self.data, "reference": self.reference,
        }

    def load_state(self, obj: dict) -> None:
        saved = ModelConfig.from_dict(obj["model_config"])
        if saved != self.model_cfg:
            raise InputError(f"{self.checkpoint_path}: checkpoint was trained with {saved}, "
                             f"not {self.model_cfg}")
        # Resuming with other data or other hyperparameters would record values the weights were
        # not trained with. epochs may grow (train longer); logging cadence may change.
        old = TrainConfig.from_dict(obj["train_config"]).to_dict()
        new = self.cfg.to_dict()
        for name in RESUME_MUST_MATCH:
            if old.get(name) != new.get(name):
                raise InputError(f"{self.checkpoint_path}: the run was started with {name}={old.get(name)!r}, "
                                 f"not {new.get(name)!r}; resume with the same value, or start a new run "
                                 f"in another --out")
        if obj.get("data") is not None and self.data is not None and obj["data"] != self.data:
            raise InputError(f"{self.checkpoint_path}: the run was started on {obj['data']}, not {self.data}; "
                             f"resume with the same --root and --max-images")
        self.vae.load_state_dict(obj["vae"])
        self.critic.load_state_dict(obj["critic"])
        self.opt_vae.load_state_dict(obj["opt_vae"])
        self.opt_critic.load_state_dict(obj["opt_critic"])
        self.noise.set_state(obj["noise"])
        if "augment_rng" in obj:
            self.augment_rng.set_state(obj["augment_rng"])
        self.epoch, self.step_in_epoch, self.step = obj["epoch"], obj["step_in_epoch"], obj["step"]
        # Checkpoints before the reference left TrainConfig kept it there.
        self._reference = obj.get("reference") or obj["train_config"]["reference"]
        self.last_latent = obj.get("latent", {})

    def save_checkpoint(self) -> None:
        if self.rank == 0:
            ckpt.save(self.state(), self.checkpoint_path)

    def _check_finite(self, metrics: dict) -> None:
        """Stop with one line that says when, which term, and where to resume from."""
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if not bad:
            return
        if self.checkpoint_path.is_file():
            saved = ckpt.load(self.checkpoint_path).get("step", "?")
            # --resume refuses another --lr (RESUME_MUST_MATCH); --init carries the weights over.
            where = (f"the last checkpoint is {self.checkpoint_path} (step {saved}); start again with a lower "
                     f"--lr and --init {self.checkpoint_path} in another --out")
        else:
            where = f"no checkpoint was written yet in {self.out_dir}; start again with a lower --lr"
        terms = ", ".join(f"{k} = {metrics[k]}" for k in bad)
        raise NonFiniteLoss(f"training diverged at step {self.step}: {terms}; {where}")

    # ---- one step of Algorithm 1 ---------------------------------------------------------------
    def train_step(self, x: torch.Tensor, others: torch.Tensor | None = None) -> dict:
        """One update; ``others`` (B, e) are the other views' latent means of the batch's faces,
        needed when ``cfg.decorrelate`` is set."""
        cfg = self.cfg
        if cfg.decorrelate > 0 and others is None:
            raise InputError(f"decorrelate={cfg.decorrelate}: train_step needs the batch's other-view latents")
        with autocast(self.device, self.bf16):
            x_hat, mean, logvar = self.vae_ddp(x, self.noise)  # (B, 3, 64, 64), (B, 100) x2
            with torch.no_grad():
                f_x = self.step_loss_net(x, self.layers_needed)
            f_xhat = self.step_loss_net(x_hat, self.layers_needed)
            tap = self.model_cfg.critic_input_layer
            d_real, d_fake = self.critic_ddp(f_x[tap], f_xhat[tap])  # (B,), (B,)
        kl = kl_divergence(mean, logvar)
        scale = self.reference["scale"]
        rec = reconstruction_loss(f_x, f_xhat, self.model_cfg.layers, scale)
        gan = generator_loss(d_fake, cfg.gan_label)
        vae_without_gan = vae_loss(kl, rec, 0.0, cfg.alpha, cfg.beta)
        extra = {}
        if cfg.decorrelate > 0:
            decor = cross_correlation(mean, others)
            vae_without_gan = vae_without_gan + cfg.decorrelate * decor
            extra["decorrelation"] = decor.detach()
        loss = vae_without_gan + gan  # eq. 8 (plus the decorrelation term when set)
        loss_c = critic_loss(d_real, d_fake, cfg.gan_label)

        self.opt_vae.zero_grad(set_to_none=True)
        self.opt_critic.zero_grad(set_to_none=True)
        # Algorithm 1 updates all three networks from the same forward pass: the critic from its
        # own loss, encoder and decoder from eq. 8 (KL reaches only the encoder). One backward
        # through the critic serves both: the VAE's adversarial term is -label * E D(x^), the
        # critic's fake term +label * E D(x^), so the gradient reaching x^'s features from the
        # former is exactly minus the one from the latter.
        fake_in = f_xhat[tap]
        loss_c.backward(inputs=list(self.critic.parameters()) + [fake_in], retain_graph=True)
        minus_g_fake = fake_in.grad.neg_()  # in place: a relu1_1-sized map, needed only here
        torch.autograd.backward([vae_without_gan, fake_in], [None, minus_g_fake], inputs=list(self.vae.parameters()))
        self.opt_vae.step()
        self.opt_critic.step()
        with torch.no_grad():
            for p in self.critic.parameters():
                p.clamp_(-cfg.clip, cfg.clip)
        # Tensors, not floats: reading them forces a device sync, done only when logging.
        return {"kl": kl.detach(), "rec": rec.detach() / scale, "rec_scaled": rec.detach(),
                "gan": gan.detach(), "critic": loss_c.detach(),
                "wasserstein": (d_real.float().mean() - d_fake.float().mean()).detach(), "loss": loss.detach(),
                **extra}

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """TrainConfig.augment applied to a (B, 3, H, W) batch; new tensor, same memory format."""
        if not self.cfg.augment:
            return x
        b = x.shape[0]
        if "flip" in self.cfg.augment:
            flip = (torch.rand(b, generator=self.augment_rng) < 0.5).to(x.device)
            x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
        if "shift" in self.cfg.augment:
            s, side = SHIFT_PIXELS, x.shape[-1]
            d = torch.randint(0, 2 * s + 1, (b, 2), generator=self.augment_rng).tolist()
            padded = torch.nn.functional.pad(x, (s, s, s, s), mode="replicate")  # (B, 3, H+2s, W+2s)
            x = torch.stack([padded[i, :, dy:dy + side, dx:dx + side] for i, (dy, dx) in enumerate(d)])
        return x.contiguous(memory_format=self.fmt)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        """The epoch's draws, this process's share: reshuffled passes over the faces; with
        ``extra_share``, each batch takes that share from the extra faces and the rest from the
        labelled set's, each set in its own reshuffled passes."""
        g = torch.Generator().manual_seed(self.cfg.seed * EPOCH_ORDER_SEED_FACTOR + epoch)
        n_extra, share = len(self.images) - self.n_main, self.cfg.extra_share
        if n_extra == 0 or share is None:  # one pool: the extra faces in proportion to their number
            perm = _passes(len(self.images), self.epoch_images, g)
        else:
            b = self.cfg.batch_size
            k = int(round(share * b))
            batches = -(-self.epoch_images // b)
            main = _passes(self.n_main, batches * (b - k), g).view(batches, b - k)
            extra = (self.n_main + _passes(n_extra, batches * k, g)).view(batches, k)
            perm = torch.cat([main, extra], dim=1).flatten()
        return perm[: self.epoch_images][self.rank::self.world][: self.steps_per_epoch * self.cfg.batch_size]

    # ---- the loop ------------------------------------------------------------------------------
    def fit(self, resume: bool = False, max_steps: int | None = None,
            time_limit_s: float | None = None, overwrite: bool = False) -> TrainResult:
        """Train for ``cfg.epochs``; ``resume`` continues from ``out_dir/checkpoint.pt``.
        ``max_steps`` or ``time_limit_s`` stop early (after a checkpoint), as an interruption would.
        A folder that already holds a run is refused unless ``resume`` or ``overwrite`` (which
        deletes that run's files first); so is a folder another training process is writing
        (FolderInUse): two writers would double its log's rows and overwrite each other's checkpoints."""
        self.out_dir = run_folder(self.out_dir)
        lock = FolderLock(self.out_dir, "another faceattr train", "wait for it to finish, or train into another --out")
        if self.rank == 0:
            lock.acquire()
        try:
            return self._fit(resume, StopRule(max_steps, time_limit_s), overwrite)
        finally:
            lock.release()

    def _fit(self, resume: bool, stop: "StopRule", overwrite: bool) -> TrainResult:
        self._start_or_resume(resume, overwrite)
        bar = self._progress_bar()
        self.vae.train()
        self.critic.train()
        stopped = False
        while self.epoch < self.cfg.epochs and not stopped:
            stopped = self._run_epoch(bar, stop)
            if not stopped:
                self._end_epoch()
        if bar is not None:
            bar.close()
        if stopped:
            self.save_checkpoint()
        elif self.rank == 0:
            self.save_view()
        return TrainResult(self.model_cfg.name, self.out_dir, self.step, self.epoch, self._last_metrics(), self.last_latent)

    def _start_or_resume(self, resume: bool, overwrite: bool) -> None:
        if not resume:
            self._claim_out_dir(overwrite)
        if resume and self.checkpoint_path.is_file():
            self.load_state(ckpt.load(self.checkpoint_path))
            self._truncate_log(self.step)
        elif self.rank == 0:
            self.log_path.unlink(missing_ok=True)
            self._log({"event": "start", "reference": self.reference,
                       "model_config": self.model_cfg.to_dict(), "train_config": self.cfg.to_dict(),
                       "device": str(self.device), "bf16": self.bf16, "world_size": self.world})

    def _progress_bar(self):
        if not (self.progress and self.rank == 0):
            return None
        from tqdm import tqdm
        return tqdm(total=self.cfg.epochs * self.steps_per_epoch, initial=self.step,
                    desc=f"train {self.model_cfg.name}", unit="step", dynamic_ncols=True)

    def _set_epoch_lr(self) -> float:
        lr = self.cfg.lr * self.cfg.lr_decay ** self.epoch
        for opt in (self.opt_vae, self.opt_critic):
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    def _run_epoch(self, bar, stop: "StopRule") -> bool:
        """The rest of the current epoch's steps; True when ``stop`` ended it early."""
        lr, order, rate = self._set_epoch_lr(), self._epoch_order(self.epoch), ImageRate()
        for i in range(self.step_in_epoch, self.steps_per_epoch):
            idx = order[i * self.cfg.batch_size:(i + 1) * self.cfg.batch_size].to(self.device)
            x = self.augment(to_float_images(self.images[idx], self.fmt))
            m = self.train_step(x, None if self.other_latents is None else self.other_latents[idx])
            self.step += 1
            self.step_in_epoch = i + 1
            rate.add(len(idx) * self.world)
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
        self._check_finite(m)
        m.update(step=self.step, epoch=self.epoch, lr=lr, images_per_s=images_per_s)
        self._log(m)
        if bar is not None:
            bar.set_postfix(kl=f"{m['kl']:.1f}", rec=f"{m['rec']:.3g}", critic=f"{m['critic']:.2f}",
                            W=f"{m['wasserstein']:.2f}", ips=f"{m['images_per_s']:.0f}")

    def save_view(self, measure_latent: bool = False) -> Path:
        """Write ``view.pt``: the VAE with its history (steps, config, latent statistics). A run
        stopped early (a device call's time is up) can still hand over its view so far with
        ``measure_latent=True``, which measures the latent now rather than at the last epoch end;
        its checkpoint stays, so ``fit(resume=True)`` continues it."""
        if measure_latent:
            self._measure_latent()
        path = self.out_dir / "view.pt"
        ckpt.save_view(self.vae, path,
                       meta={"latent": self.last_latent, "steps": self.step, "epochs": self.epoch,
                             "train_config": self.cfg.to_dict(), "reference": self.reference,
                             "final": self._last_metrics(), "data": self.data})
        return path

    def _claim_out_dir(self, overwrite: bool) -> None:
        old = [self.out_dir / f for f in RUN_FILES if (self.out_dir / f).exists()]
        old += sorted(self.out_dir.glob("reconstructions_epoch*.png"))
        if not old or self.rank != 0:
            return
        if not overwrite:
            raise OutputExists(f"{self.out_dir}: already holds a training run ({', '.join(p.name for p in old[:3])}); "
                                  f"pass --resume to continue it, --overwrite to replace it, or another --out")
        for p in old:
            p.unlink()

    def _measure_latent(self) -> None:
        stats_images = self.images[: min(2048, len(self.images))]
        self.last_latent = latent_statistics(self.vae.encoder, stats_images, self.device, self.bf16)

    def _measure_generalisation(self) -> dict:
        """The view's reconstruction error and KL on training and held-out faces, and their ratio."""
        if self.held_out is None or self.rank != 0:
            return {}
        from .nn.generalisation import generalisation
        n = min(GENERALISATION_FACES, self.n_main, len(self.held_out))
        g = generalisation(self.vae, self.loss_net, self.images[:n], self.held_out[:n], self.device)
        if self.progress:
            print(f"epoch {self.epoch + 1}: reconstruction error held-out/train {g['rec_ratio']:.3f} "
                  f"({g['held_out_rec']:.4g} / {g['train_rec']:.4g}), KL {g['held_out_kl']:.1f} / "
                  f"{g['train_kl']:.1f} nats", file=sys.stderr, flush=True)
        return g

    def _end_epoch(self) -> None:
        self._measure_latent()
        self.last_generalisation = self._measure_generalisation()
        if self.rank == 0:
            gen = {"generalisation": self.last_generalisation} if self.last_generalisation else {}
            self._log({"event": "epoch_end", "epoch": self.epoch + 1, "step": self.step, **self.last_latent, **gen})
            self.write_grid(self.out_dir / f"reconstructions_epoch{self.epoch + 1}.png")
        self.epoch += 1
        self.step_in_epoch = 0
        self.save_checkpoint()

    @torch.no_grad()
    def write_grid(self, path: Path, n: int = 16) -> None:
        """Inputs (odd rows) above their reconstructions from the latent mean (even rows)."""
        self.vae.eval()
        x = to_float_images(self.images[:n], self.fmt)
        with autocast(self.device, self.bf16):
            mean, _ = self.vae.encoder(x)
            x_hat = self.vae.decoder(mean)
        self.vae.train()
        save_grid(path, [x.float().cpu(), x_hat.float().cpu()], per_row=8)

    # ---- metrics log ---------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    def _log(self, record: dict) -> None:
        if self.rank != 0:
            return
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def _records(self) -> list[dict]:
        """The log's records. A torn last line (the process was killed mid-write) is skipped;
        a bad line before the last is an error naming the file and line."""
        if not self.log_path.is_file():
            return []
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        out = []
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines):
                    break
                raise InputError(f"{self.log_path}, line {i}: not a JSON record; the log is damaged") from None
        return out

    def _truncate_log(self, step: int) -> None:
        """Drop records written after the checkpoint we resume from, so the log reads as one run."""
        if self.rank != 0 or not self.log_path.is_file():
            return
        keep = [rec for rec in self._records() if rec.get("step", 0) <= step]
        write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in keep))

    def _last_metrics(self) -> dict:
        last = {}
        for rec in self._records():
            if "kl" in rec and "event" not in rec:
                last = rec
        return last


def resolve_init(spec: str) -> tuple[Path, dict]:
    """``pretrained:VIEW`` (the shipped bundle's view) or a view file / checkpoint path ->
    (the file, its loaded contents). The file's sha256 is checked when it comes from a bundle."""
    if spec.startswith("pretrained:"):
        from .inference.bundle import Bundle
        bundle = Bundle.load()
        path = bundle.file(bundle.view_entry(spec.removeprefix("pretrained:")))
    else:
        path = Path(spec)
    return path, ckpt.load(path)


def load_init(tcfg: TrainConfig) -> tuple[ModelConfig, dict]:
    """The architecture and VAE weights that ``tcfg.init`` names (a view file or a checkpoint),
    recording that file's sha256 in ``tcfg.init_sha256``: the bundling of a fine-tuned view checks
    that it started from the bundle's file."""
    from .inference.bundle import sha256_file
    path, obj = resolve_init(tcfg.init)
    tcfg.init_sha256 = sha256_file(path)
    return ModelConfig.from_dict(obj["model_config"]), ckpt.vae_state(obj)


def other_view_latents(tcfg: TrainConfig, model_cfg: ModelConfig, images: np.ndarray, device="auto") -> np.ndarray:
    """The latent means (N, e) of ``images`` under every view of ``tcfg.decorrelate_from`` except the one
    being trained (same layers): what ``TrainConfig.decorrelate`` keeps this view's latent apart from."""
    from .inference.bundle import Bundle
    from .inference.encoder import MultiViewEncoder
    source = tcfg.decorrelate_from or "pretrained"
    if source == "pretrained":
        bundle = Bundle.load()
        vaes = {v: bundle.load_vae(v) for v in bundle.views if v != model_cfg.name}
    else:
        files = sorted(Path(source).glob("view_*.pt"))
        vaes = {f.stem.removeprefix("view_"): ckpt.view_from(ckpt.load(f)) for f in files}
        vaes = {v: vae for v, vae in vaes.items() if vae.cfg.name != model_cfg.name}
    if not vaes:
        raise InputError(f"decorrelate_from={source!r}: no view other than {model_cfg.name} to keep apart from")
    return MultiViewEncoder(vaes, device=device).encode(images)


def run_folder(out: Path) -> Path:
    """The folder a run writes into, made if missing. A link to a folder is followed (the run's
    lock and files are then on the folder itself, whichever name a second run uses); anything
    else that is not a folder is refused, naming what it is."""
    if os.path.lexists(out) and not out.is_dir():
        what = f"a link to {os.readlink(out)}, which is not a folder" if out.is_symlink() else "a file, not a folder"
        raise NotAFolder(f"{out}: is {what}; --out takes a folder for the run")
    if out.is_symlink():
        out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def train_view(root, out="runs/view", train_config: TrainConfig | None = None, layers=None, *,
               resume: bool = False, overwrite: bool = False, device="auto",
               vgg_weights=None, precision: str = "auto", progress: bool = True) -> TrainResult:
    """Train one view on the train split of a CelebA folder: what ``faceattr train`` runs.

    ``layers`` names the reconstruction layers (default relu3_1); with ``train_config.init`` the
    view's architecture comes from the init file, and ``layers``, if given, must match it.
    """
    from .data.celeba import CelebA
    from .nn.vgg import load_loss_network
    tcfg = copy.deepcopy(train_config) if train_config is not None else TrainConfig()
    vae_state = None
    if tcfg.init is not None:
        cfg, vae_state = load_init(tcfg)
        if layers is not None and tuple(layers) != cfg.layers:
            raise InputError(f"--init {tcfg.init} is a {cfg.name} view, but layers {'+'.join(layers)} "
                             f"were asked for; leave out --layer to take the init's")
    else:
        cfg = ModelConfig(layers=tuple(layers or ("relu3_1",)))
    loss_net = load_loss_network(vgg_weights)  # fails early, before any decoding, without weights
    ds = CelebA.load(root, "train", max_images=tcfg.max_images)
    images = ds.crops(progress=progress)
    others = other_view_latents(tcfg, cfg, images, device) if tcfg.decorrelate > 0 else None
    extra = None
    if tcfg.extra_faces is not None:
        from .data.extra_faces import load_extra_faces
        extra, record = load_extra_faces(tcfg.extra_faces, max_faces=tcfg.max_images)
        tcfg.extra_faces_count, tcfg.extra_faces_sha256 = record["count"], record["sha256"]
    held_out = _held_out_faces(root)
    trainer = Trainer(cfg, tcfg, images, out, loss_net, device=device, precision=precision,
                      progress=progress, vae_state=vae_state, other_latents=others, extra_images=extra,
                      held_out=held_out, data=f"{ds.root.resolve()} train split, {len(ds)} faces")
    return trainer.fit(resume=resume, overwrite=overwrite)


def _held_out_faces(root) -> np.ndarray | None:
    """Up to GENERALISATION_FACES val faces for the generalisation measure; None without a val split."""
    from .data.celeba import CelebA
    try:
        val = CelebA.load(root, "val", max_images=GENERALISATION_FACES)
    except ValueError:
        return None
    return val.crops(progress=False) if len(val) else None
