"""Our compact U-Net (DDPM++-like, Song et al. 2021 / Karras et al. 2022 config F), written anew.

Used with EDMPrecond: forward(x_in, c_noise, class_labels) => F_x. Sizes range from tiny (CPU
tests, 8-16 px, 8-16 channels) to CIFAR-10 size (32 px, 128 channels, ~61M parameters).
Class conditioning: a linear embedding of the one-hot label is added to the noise embedding
before the embedding MLP; `embed_labels` exposes it so training can perturb it (CEP).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class UNetConfig:
    img_resolution: int = 32                  # image height = width (pixels), power-of-two multiple
    img_channels: int = 3                     # channels in model space (3 RGB, 1 grayscale)
    label_dim: int = 0                        # number of classes; 0 = unconditional
    model_channels: int = 128                 # base channel count (DDPM++ CIFAR: 128)
    channel_mult: tuple[int, ...] = (2, 2, 2)  # channels per resolution level = model_channels * m
    num_blocks: int = 4                       # residual blocks per level in the encoder
    attn_resolutions: tuple[int, ...] = (16,)  # resolutions (pixels) with self-attention
    dropout: float = 0.10                     # dropout probability inside residual blocks
    channel_mult_emb: int = 4                 # embedding width = model_channels * this
    label_dropout: float = 0.0                # probability of dropping the label in training (CFG)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        d["attn_resolutions"] = list(self.attn_resolutions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown UNetConfig keys {unknown}")
        d = dict(d)
        for k in ("channel_mult", "attn_resolutions"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        return cls(**d)

    @classmethod
    def tiny(cls, img_resolution: int = 8, img_channels: int = 3, label_dim: int = 0) -> "UNetConfig":
        """Few-thousand-parameter net for CPU tests."""
        return cls(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                   model_channels=8, channel_mult=(1, 2), num_blocks=1,
                   attn_resolutions=(img_resolution // 2,), dropout=0.0, channel_mult_emb=2)

    @classmethod
    def small(cls, img_resolution: int = 32, img_channels: int = 3, label_dim: int = 0) -> "UNetConfig":
        """~2M parameters: quick CPU training experiments at 32 px."""
        return cls(img_resolution=img_resolution, img_channels=img_channels, label_dim=label_dim,
                   model_channels=32, channel_mult=(1, 2, 2), num_blocks=2,
                   attn_resolutions=(img_resolution // 4,), dropout=0.1)

    @classmethod
    def cifar(cls, label_dim: int = 0) -> "UNetConfig":
        """DDPM++ size for CIFAR-10 (Karras et al. 2022, config F); dropout 0.13 as in EDM."""
        return cls(label_dim=label_dim, dropout=0.13)


def _groups(ch: int) -> int:
    # GroupNorm groups: up to 32, at least 4 channels per group where possible, dividing ch.
    g = max(1, min(32, ch // 4))
    while ch % g:
        g -= 1
    return g


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(_groups(ch), ch, eps=1e-6)


class PositionalEmbedding(nn.Module):
    """Transformer sinusoidal embedding of the scalar noise input (Vaswani et al. 2017)."""

    def __init__(self, num_channels: int, max_positions: int = 10000) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.max_positions = max_positions

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N,) float => (N, num_channels)
        half = self.num_channels // 2
        freqs = torch.arange(half, dtype=torch.float32, device=x.device) / half
        freqs = (1 / self.max_positions) ** freqs
        x = x.to(torch.float32).outer(freqs)
        return torch.cat([x.cos(), x.sin()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv x2 with adaptive scale/shift from the embedding; skip scaled 1/sqrt 2."""

    def __init__(self, in_ch: int, out_ch: int, emb_ch: int, dropout: float, attention: bool,
                 resample: str | None = None) -> None:
        super().__init__()
        self.resample = resample
        self.norm0 = _norm(in_ch)
        self.conv0 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.affine = nn.Linear(emb_ch, out_ch * 2)
        self.norm1 = _norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if (in_ch != out_ch) else None
        self.attn = Attention(out_ch) if attention else None

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(self._resample(F.silu(self.norm0(x))))
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(torch.addcmul(shift, self.norm1(h), scale + 1))
        h = self.conv1(self.dropout(h))
        x = self._resample(x)
        x = self.skip(x) if self.skip is not None else x
        x = (h + x) * (1 / math.sqrt(2))
        return self.attn(x) if self.attn is not None else x


class Attention(nn.Module):
    """Single-head self-attention over pixels, residual, scaled 1/sqrt 2."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = _norm(ch)
        self.qkv = nn.Conv2d(ch, ch * 3, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(N, 3, C, H * W).unbind(1)
        w = torch.softmax(torch.einsum("ncq,nck->nqk", q, k) / math.sqrt(C), dim=2)
        a = torch.einsum("nqk,nck->ncq", w, v).reshape(N, C, H, W)
        return (x + self.proj(a)) * (1 / math.sqrt(2))


class UNet(nn.Module):
    """F(x_in, c_noise, class_labels) for EDMPrecond; x_in NCHW float32 => F_x NCHW float32."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        c = config
        if c.img_resolution % (2 ** (len(c.channel_mult) - 1)):
            raise ValueError(f"img_resolution {c.img_resolution} is not divisible by "
                             f"2^{len(c.channel_mult) - 1} (len(channel_mult) - 1 downsamplings)")
        self.config = c
        emb_ch = c.model_channels * c.channel_mult_emb
        self.map_noise = PositionalEmbedding(c.model_channels)
        self.map_label = nn.Linear(c.label_dim, c.model_channels, bias=False) if c.label_dim else None
        self.map_layer0 = nn.Linear(c.model_channels, emb_ch)
        self.map_layer1 = nn.Linear(emb_ch, emb_ch)

        self.conv_in = nn.Conv2d(c.img_channels, c.model_channels, 3, padding=1)
        self.enc = nn.ModuleList()
        skips, ch, res = [c.model_channels], c.model_channels, c.img_resolution
        for level, mult in enumerate(c.channel_mult):
            if level > 0:
                self.enc.append(ResBlock(ch, ch, emb_ch, c.dropout, False, resample="down"))
                res //= 2
                skips.append(ch)
            for _ in range(c.num_blocks):
                self.enc.append(ResBlock(ch, c.model_channels * mult, emb_ch, c.dropout,
                                         res in c.attn_resolutions))
                ch = c.model_channels * mult
                skips.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_ch, c.dropout, True),
                                  ResBlock(ch, ch, emb_ch, c.dropout, False)])
        self.dec = nn.ModuleList()
        for level, mult in reversed(list(enumerate(c.channel_mult))):
            for _ in range(c.num_blocks + 1):
                out = c.model_channels * mult
                self.dec.append(ResBlock(ch + skips.pop(), out, emb_ch, c.dropout,
                                         res in c.attn_resolutions))
                ch = out
            if level > 0:
                self.dec.append(ResBlock(ch, ch, emb_ch, c.dropout, False, resample="up"))
                res *= 2
        self.norm_out = _norm(ch)
        self.conv_out = nn.Conv2d(ch, c.img_channels, 3, padding=1)

    def embed_labels(self, class_labels: torch.Tensor | None) -> torch.Tensor | None:
        """NC one-hot (or soft) labels => (N, model_channels) condition embedding (None if uncond.).

        Training may perturb the result (CEP: e <- e + gamma * xi) and pass it back as label_emb=.
        Label dropout (classifier-free guidance training) zeroes the embedding of dropped samples.
        """
        if self.map_label is None or class_labels is None:
            return None
        labels = class_labels.to(torch.float32)
        if self.training and self.config.label_dropout:
            keep = torch.rand(labels.shape[0], 1, device=labels.device) >= self.config.label_dropout
            labels = labels * keep.to(labels.dtype)
        return self.map_label(labels * math.sqrt(self.config.label_dim))

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor,
                class_labels: torch.Tensor | None = None, *,
                label_emb: torch.Tensor | None = None) -> torch.Tensor:
        # x_in NCHW float32, c_noise (N,) float32, class_labels NC | None => F_x NCHW float32.
        if label_emb is None:
            label_emb = self.embed_labels(class_labels)
        emb = self.map_noise(c_noise)
        if label_emb is not None:
            emb = emb + label_emb
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))
        h = self.conv_in(x_in)
        hs = [h]
        for block in self.enc:
            h = block(h, emb)
            hs.append(h)
        for block in self.mid:
            h = block(h, emb)
        for block in self.dec:
            if block.resample != "up":
                h = torch.cat([h, hs.pop()], dim=1)
            h = block(h, emb)
        return self.conv_out(F.silu(self.norm_out(h)))
