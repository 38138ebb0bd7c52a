"""Encoder, decoder and critic of one VAE-WGAN view (paper section 3.2, docs/method.md "Model")."""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .taps import TAP_CHANNELS

LEAK = 0.2


class ResidualBlock(nn.Module):
    """conv3x3 -> BN -> LeakyReLU -> conv3x3 -> BN, plus the identity."""

    def __init__(self, channels: int, padding_mode: str = "zeros"):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False, padding_mode=padding_mode),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(LEAK, inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False, padding_mode=padding_mode),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x):
        return x + self.body(x)


def _down(c_in: int, c_out: int) -> nn.Sequential:
    """conv4x4 stride 2 -> BN -> LeakyReLU -> residual block: halves the side."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(LEAK, inplace=True),
        ResidualBlock(c_out),
    )


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        widths = (3,) + cfg.encoder_widths
        self.features = nn.Sequential(*[_down(a, b) for a, b in zip(widths, widths[1:])])
        side = cfg.image_size // 2 ** len(cfg.encoder_widths)
        flat = cfg.encoder_widths[-1] * side * side
        self.mean = nn.Linear(flat, cfg.latent_dim)
        self.logvar = nn.Linear(flat, cfg.latent_dim)

    def forward(self, x):
        # x: (B, 3, 64, 64) RGB in [0, 1]
        h = self.features(x)  # (B, 256, 4, 4)
        h = h.flatten(1)  # (B, 4096)
        return self.mean(h), self.logvar(h)  # (B, 100), (B, 100)


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.side = cfg.image_size // 2 ** len(cfg.encoder_widths)
        self.c0 = cfg.encoder_widths[-1]
        self.fc = nn.Linear(cfg.latent_dim, self.c0 * self.side * self.side)
        stages = []
        widths = (self.c0,) + cfg.decoder_widths
        for a, b in zip(widths, widths[1:]):
            stages.append(nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ReplicationPad2d(1),
                nn.Conv2d(a, b, 3, 1, 0, bias=False),
                nn.BatchNorm2d(b),
                nn.LeakyReLU(LEAK, inplace=True),
                ResidualBlock(b, padding_mode="replicate"),
            ))
        stages.append(nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ReplicationPad2d(1),
            nn.Conv2d(widths[-1], 3, 3, 1, 0),
        ))
        self.stages = nn.Sequential(*stages)

    def forward(self, z):
        # z: (B, 100)
        h = self.fc(z).view(-1, self.c0, self.side, self.side)  # (B, 256, 4, 4)
        h = self.stages(h)  # (B, 3, 64, 64)
        # The loss network takes RGB in [0, 1] and applies its own preprocessing.
        return torch.sigmoid(h)


class Critic(nn.Module):
    """WGAN critic on the VGG19 feature map ``cfg.critic_input_layer`` of an image (no sigmoid).

    Its input channels and side follow the tap (relu1_1: 64 @ 64x64 ... relu5_1: 512 @ 4x4); a
    deep tap's small map gets fewer down-sampling stages. ``in_channels`` overrides the tap's
    channels (the tests feed it images).
    """

    def __init__(self, cfg: ModelConfig, in_channels: int | None = None):
        super().__init__()
        self.cfg = cfg
        widths = (in_channels or TAP_CHANNELS[cfg.critic_input_layer],) + cfg.critic_widths[:cfg.critic_stages]
        self.features = nn.Sequential(*[_down(a, b) for a, b in zip(widths, widths[1:])])
        side = cfg.critic_side // 2 ** cfg.critic_stages
        self.out = nn.Conv2d(widths[-1], 1, side, 1, 0)

    def forward(self, f):
        # f: (B, C_tap, S, S) VGG19 features, e.g. relu1_1's (B, 64, 64, 64)
        h = self.features(f)  # (B, 512, 4, 4) for relu1_1
        return self.out(h).flatten()  # (B,)


def to_float_images(batch_uint8: torch.Tensor, fmt=torch.contiguous_format) -> torch.Tensor:
    """(B, 64, 64, 3) uint8 faces -> (B, 3, 64, 64) float in [0, 1]: what every network here reads."""
    return batch_uint8.permute(0, 3, 1, 2).float().div_(255.0).contiguous(memory_format=fmt)


def reparameterize(mean, logvar, generator: torch.Generator | None = None):
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + eps * torch.exp(0.5 * logvar)


class VAE(nn.Module):
    """Encoder and decoder of one view: what the toolkit ships."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    @classmethod
    def from_state_dict(cls, cfg: ModelConfig, state: dict) -> "VAE":
        """Rebuild in float32 (views may be stored in float16), in eval mode, on the CPU."""
        vae = cls(cfg)
        vae.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()})
        return vae.eval()

    def forward(self, x, generator: torch.Generator | None = None):
        mean, logvar = self.encoder(x)
        z = reparameterize(mean, logvar, generator)
        return self.decoder(z), mean, logvar
