"""DyConvSR (Doan and Nguyen): lightweight SR with one dynamic convolution, for scales 2, 3, 4.

Input: RGB in [0, 1], (B, 3, H, W), any H, W >= 1. Output: (B, 3, s*H, s*W).

    x -> PixelUnshuffle(2) -> Conv3x3 12->C -> DynamicConv3x3 C->C (K kernels), GELU
      -> Conv3x3 C->12s^2  (+ high-frequency branch: x - blur(x) -> PixelUnshuffle(2)
                               -> Conv3x3 12->12s^2, GELU)
      -> CBAM spatial attention -> PixelShuffle(2) -> + repeat(x, s^2) -> PixelShuffle(s)

This is the published network (the paper's Fig. 1 and Section 3.4; the authors' ``model/arch.py``):
GELU only after the dynamic conv and in the high-frequency branch, none after the head.

Differences of the default ``dyconvsr`` from the authors' x2-only code (github
doantienthongbku/DyConvSR), each with its measured effect (docs/results.md, "Ablation"):

- generalised to s in {2, 3, 4} (12*s^2 tail channels, the input repeated s^2 times);
- the Gaussian blur is a fixed buffer (built once, not at trace time), so the graph exports with
  dynamic H/W; it pads by edge replication where torchvision's ``GaussianBlur`` reflects
  (``blur_padding``; only the two outermost pixel rings differ);
- the skip repeats each channel consecutively (``skip_order="nearest"``), which under PyTorch's
  PixelShuffle order is a true nearest-neighbour upsample; the authors' ``torch.cat((x,)*4)``
  (``skip_order="interleaved"``) puts other colours into each output colour's 2x2 block;
- the softmax temperature is annealed from 30 to 1 in training (Chen et al.; ``temperature_end``
  in train/fit.py); the authors' ``update_temperature`` is never called, so theirs stays 30;
- odd sizes are replicate-padded to even and the output cropped back, so output = s x input (the
  authors' PixelUnshuffle refuses odd sizes).

``dyconvsr_authors`` (train/models/registry.py) switches all of these to the authors' choices and
computes their function exactly (their weights, imported by ``python -m train import-checkpoint``);
its only extension is the even padding of odd sizes, applied before the reflect-padded blur.
``head_activation=True`` is the ablation that adds a GELU after the head conv (this project's
networks before the correction).

Measured (docs/results.md, x2, Y-PSNR on Set5 / Set14 / BSD68): the head GELU adds +0.54 / +0.38 / +0.29 dB at an
equal 40k-step budget; without it the dynamic kernel's attention is nearly constant and the network equals its
static twin to 0.002 dB. Trained with the interleaved skip at an equal 10k-step budget it loses
0.35 / 0.22 / 0.09 dB against the nearest-neighbour skip. Reflect instead of replicate blur padding changes the
trained network by -0.002 / -0.040 / -0.002 dB, a fixed temperature of 30 by -0.010 / -0.003 / -0.004 dB; the
authors' forward reproduces ours only with all of them switched (to 3.6e-7).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import GaussianBlur, SpatialAttention, check_choice, check_scale, pad_to_multiple, repeat_channels
from .dynamic_conv import DynamicConv2d

SKIP_ORDERS = ("nearest", "interleaved")
BLUR_PADDINGS = ("replicate", "reflect")


def skip_colours(scale: int, order: str) -> torch.Tensor:
    """``colours[n]``: the input colour that channel n of the s^2-fold repeated skip copies.

    ``nearest``: each colour s^2 times in a row (c0,c0,..,c1,..), which PixelShuffle(s) turns into
    a nearest-neighbour upsample; ``interleaved``: the input repeated whole (c0,c1,c2,c0,..), the
    authors' ``torch.cat((x, x, x, x), 1)``.
    """
    n = torch.arange(3 * scale**2)
    return n // scale**2 if check_choice(order, SKIP_ORDERS, "skip_order") == "nearest" else n % 3


class DyConvSR(nn.Module):
    def __init__(
        self,
        scale: int = 2,
        channels: int = 32,
        num_kernels: int = 4,
        temperature: float = 30.0,
        dynamic: bool = True,
        high_frequency: bool = True,
        spatial_attention: bool = True,
        repeat_skip: bool = True,
        head_activation: bool = False,
        skip_order: str = "nearest",
        blur_padding: str = "replicate",
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.head_activation = bool(head_activation)
        self.skip_order = check_choice(skip_order, SKIP_ORDERS, "skip_order")
        out_channels = 12 * self.scale**2
        self.unshuffle = nn.PixelUnshuffle(2)
        self.head = nn.Conv2d(12, channels, 3, padding=1)
        self.body: nn.Module = (
            DynamicConv2d(channels, channels, 3, num_kernels=num_kernels, temperature=temperature)
            if dynamic
            else nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.tail = nn.Conv2d(channels, out_channels, 3, padding=1)
        padding_mode = check_choice(blur_padding, BLUR_PADDINGS, "blur_padding")
        self.blur = GaussianBlur(3, size=5, sigma=1.0, padding_mode=padding_mode) if high_frequency else None
        self.high_frequency = nn.Conv2d(12, out_channels, 3, padding=1) if high_frequency else None
        self.spatial_attention = SpatialAttention(7) if spatial_attention else None
        self.repeat_skip = repeat_skip

    def head_features(self, lr: torch.Tensor) -> torch.Tensor:
        """The head on the unshuffled input: the dynamic conv's input (its GAP drives attention)."""
        feat = self.head(lr)
        return F.gelu(feat) if self.head_activation else feat

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Head features at half resolution of an even-sized ``x``."""
        return self.head_features(self.unshuffle(x))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        """The input repeated s^2 times along channels in ``skip_order`` (added before PixelShuffle(s))."""
        if self.skip_order == "nearest":
            return repeat_channels(x, self.scale**2)
        return x.repeat(1, self.scale**2, 1, 1)

    def forward(self, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale ``x``; ``attention`` (B, K) may be supplied (e.g. computed over a whole image
        when ``x`` is one tile of it). Ignored by the static twin."""
        height, width = x.shape[-2:]
        x = pad_to_multiple(x, 2)
        feat = self.features(x)
        if isinstance(self.body, DynamicConv2d):
            feat = self.body(feat, attention)
        else:
            feat = self.body(feat)
        feat = self.tail(F.gelu(feat))
        if self.high_frequency is not None:
            detail = self.unshuffle(x - self.blur(x))
            feat = feat + F.gelu(self.high_frequency(detail))
        if self.spatial_attention is not None:
            feat = self.spatial_attention(feat)
        out = F.pixel_shuffle(feat, 2)
        if self.repeat_skip:
            out = out + self.skip(x)
        out = F.pixel_shuffle(out, self.scale)
        return out[..., : height * self.scale, : width * self.scale]
