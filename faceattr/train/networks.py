"""The networks of one view's training and what changes as they train: the VAE and the critic,
their Adam optimisers, the frozen loss network, and the reparameterisation noise."""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..nn.config import ModelConfig, TrainConfig
from ..nn.models import VAE, Critic
from .runtime import Placement

# The noise stream's seed, derived from TrainConfig.seed: a prime apart from the other streams'
# (faceattr.train.feeding), so no two streams (nor two processes', offset by rank) start alike.
NOISE_SEED_FACTOR = 7919


class CriticPair(nn.Module):
    """One forward for real and reconstructed features, so DDP sees one call per step."""

    def __init__(self, critic: Critic):
        super().__init__()
        self.critic = critic

    def forward(self, real, fake):
        return self.critic(real), self.critic(fake)


class Networks:
    """``vae`` and ``critic`` (plain modules: their state dicts are what is saved), ``vae_step``
    and ``critic_step`` (what a step calls: compiled and/or DDP-wrapped), the optimisers, the loss
    network (``loss_net``, float32) and its copy for the steps (``step_loss_net``: its weights
    stored once in bfloat16 under bf16, instead of autocast casting them twice a step)."""

    def __init__(self, model_cfg: ModelConfig, cfg: TrainConfig, loss_net, place: Placement,
                 vae_state: dict | None = None, compile: bool = False):
        self.place = place
        torch.manual_seed(cfg.seed)
        vae = VAE(model_cfg)
        if vae_state is not None:  # fine-tuning from an existing view (TrainConfig.init)
            vae.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in vae_state.items()})
        self.vae = vae.to(place.device).to(memory_format=place.fmt)
        self.critic = Critic(model_cfg).to(place.device).to(memory_format=place.fmt)
        self.opt_vae = torch.optim.Adam(self.vae.parameters(), lr=cfg.lr)
        self.opt_critic = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr)
        self.loss_net = loss_net.to(place.device).to(memory_format=place.fmt)
        self.step_loss_net = self.loss_net
        if place.bf16:
            self.step_loss_net = copy.deepcopy(self.loss_net)
            self.step_loss_net.features.to(torch.bfloat16)
        self.vae_step, self.critic_step = self._wrapped(compile)
        self.noise = torch.Generator(device=place.device)
        self.noise.manual_seed(cfg.seed * NOISE_SEED_FACTOR + place.rank)

    def _wrapped(self, compile: bool):
        vae, critic_pair = self.vae, CriticPair(self.critic)
        if compile:
            vae, critic_pair = torch.compile(vae), torch.compile(critic_pair)
        if self.place.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP
            ids = [self.place.device.index] if self.place.device.type == "cuda" else None
            vae, critic_pair = DDP(self.vae, device_ids=ids), DDP(critic_pair, device_ids=ids)
        return vae, critic_pair

    def update(self, vae_without_gan: torch.Tensor, loss_c: torch.Tensor, fake_in: torch.Tensor, clip: float) -> None:
        """Algorithm 1 updates all three networks from the same forward pass: the critic from its
        own loss, encoder and decoder from eq. 8 (KL reaches only the encoder). One backward
        through the critic serves both: the VAE's adversarial term is -label * E D(x^), the
        critic's fake term +label * E D(x^), so the gradient reaching x^'s features (``fake_in``)
        from the former is exactly minus the one from the latter. Then the critic is clipped."""
        self.opt_vae.zero_grad(set_to_none=True)
        self.opt_critic.zero_grad(set_to_none=True)
        loss_c.backward(inputs=list(self.critic.parameters()) + [fake_in], retain_graph=True)
        minus_g_fake = fake_in.grad.neg_()  # in place: a relu1_1-sized map, needed only here
        torch.autograd.backward([vae_without_gan, fake_in], [None, minus_g_fake], inputs=list(self.vae.parameters()))
        self.opt_vae.step()
        self.opt_critic.step()
        with torch.no_grad():
            for p in self.critic.parameters():
                p.clamp_(-clip, clip)

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_vae, self.opt_critic):
            for group in opt.param_groups:
                group["lr"] = lr

    def train(self, mode: bool = True) -> None:
        self.vae.train(mode)
        self.critic.train(mode)

    def state_dict(self) -> dict:
        return {"vae": self.vae.state_dict(), "critic": self.critic.state_dict(),
                "opt_vae": self.opt_vae.state_dict(), "opt_critic": self.opt_critic.state_dict(),
                "noise": self.noise.get_state()}

    def load_state_dict(self, obj: dict) -> None:
        self.vae.load_state_dict(obj["vae"])
        self.critic.load_state_dict(obj["critic"])
        self.opt_vae.load_state_dict(obj["opt_vae"])
        self.opt_critic.load_state_dict(obj["opt_critic"])
        self.noise.set_state(obj["noise"])
