"""Validation during training: mean Y-PSNR (BT.601, border = scale) on held-out images."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from runtime.color import rgb_to_y

from .data import NamedImage, bicubic_downscale, quantize


def _psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    a = rgb_to_y(sr)[border:-border, border:-border] * 255.0
    b = rgb_to_y(hr)[border:-border, border:-border] * 255.0
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


@torch.no_grad()
def validation_psnr(model: nn.Module, images: Sequence[NamedImage], scale: int) -> float:
    """Mean Y-PSNR of ``model`` at ``scale`` over ``images`` (LR: antialiased bicubic, 8-bit)."""
    model.eval()
    scores = []
    for image in images:
        h, w = (image.hr.shape[0] // scale) * scale, (image.hr.shape[1] // scale) * scale
        hr = torch.from_numpy(image.hr[:h, :w]).permute(2, 0, 1)[None].float() / 255.0
        sr = quantize(model(bicubic_downscale(hr, scale)))
        scores.append(_psnr_y(sr[0].permute(1, 2, 0).numpy(), hr[0].permute(1, 2, 0).numpy(), scale))
    return float(np.mean(scores))
