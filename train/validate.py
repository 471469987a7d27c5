"""Validation during training: mean Y-PSNR (BT.601, border = scale) on held-out images, with
the evaluation protocol of ``train.evaluate`` (modcrop, MATLAB-compatible bicubic LR, uint8 SR)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from runtime.metrics import crop_border, psnr, y_channel
from runtime.quality import make_lr, modcrop

from .data import NamedImage
from .evaluate import Candidate, super_resolve


@dataclass
class ValidationSet:
    """HR/LR uint8 pairs prepared once, so each validation only runs the model."""

    scale: int
    hr: list[np.ndarray]
    lr: list[np.ndarray]


def validation_set(images: Sequence[NamedImage], scale: int) -> ValidationSet:
    hr = [modcrop(image.hr, scale) for image in images]
    return ValidationSet(scale, hr, [make_lr(h, scale) for h in hr])


def validation_psnr(model: nn.Module, data: ValidationSet) -> float:
    """Mean Y-PSNR of ``model`` over ``data``; leaves the model in eval mode."""
    candidate = Candidate("validation", model.eval())
    scores = []
    for hr, lr in zip(data.hr, data.lr, strict=True):
        sr = super_resolve(candidate, lr, data.scale)
        scores.append(psnr(crop_border(y_channel(sr), data.scale), crop_border(y_channel(hr), data.scale)))
    return float(np.mean(scores))
