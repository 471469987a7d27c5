"""DyConvSR (Doan and Nguyen): lightweight SR with one dynamic convolution, for scales 2, 3, 4.

Input: RGB in [0, 1], (B, 3, H, W), any H, W >= 1. Output: (B, 3, s*H, s*W).

    x -> PixelUnshuffle(2) -> Conv3x3 12->C, GELU -> DynamicConv3x3 C->C (K kernels), GELU
      -> Conv3x3 C->12s^2  (+ high-frequency branch: x - blur(x) -> PixelUnshuffle(2)
                               -> Conv3x3 12->12s^2, GELU)
      -> CBAM spatial attention -> PixelShuffle(2) -> + repeat(x, s^2) -> PixelShuffle(s)

Differences from the authors' x2-only code, all deliberate:
- generalised to s in {2, 3, 4} (12*s^2 tail channels, the input repeated s^2 times);
- the Gaussian blur is a fixed buffer, so the graph exports with dynamic H/W;
- the skip repeats each channel consecutively, which under PyTorch's PixelShuffle order is a
  true nearest-neighbour upsample (``x.repeat`` would interleave colours);
- odd sizes are replicate-padded to even and the output cropped back, so output = s x input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import GaussianBlur, SpatialAttention, check_scale, pad_to_multiple, repeat_channels
from .dynamic_conv import DynamicConv2d


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
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        out_channels = 12 * self.scale**2
        self.unshuffle = nn.PixelUnshuffle(2)
        self.head = nn.Conv2d(12, channels, 3, padding=1)
        self.body: nn.Module = (
            DynamicConv2d(channels, channels, 3, num_kernels=num_kernels, temperature=temperature)
            if dynamic
            else nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.tail = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.blur = GaussianBlur(3, size=5, sigma=1.0) if high_frequency else None
        self.high_frequency = nn.Conv2d(12, out_channels, 3, padding=1) if high_frequency else None
        self.spatial_attention = SpatialAttention(7) if spatial_attention else None
        self.repeat_skip = repeat_skip

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Head features at half resolution: the input of the dynamic conv (its GAP drives attention)."""
        return F.gelu(self.head(self.unshuffle(x)))

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
            out = out + repeat_channels(x, self.scale**2)
        out = F.pixel_shuffle(out, self.scale)
        return out[..., : height * self.scale, : width * self.scale]
