"""SRCNN (Dong et al.): 9-1-5 convolutions with 64 and 32 feature maps on the Y channel.

``forward`` takes an RGB LR image in [0, 1] like every model here: it upscales bicubically,
runs the network on the Y channel (BT.601) and keeps the bicubic Cb/Cr, so all models share one
input/output contract for export and runtime. ``forward_y`` is the paper's network alone, on a
bicubic-upscaled Y image, which is what the training recipe feeds it. Zero "same" padding keeps
the output the size of the input (the paper pads with zeros at test time).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import InitStd, check_scale, init_gaussian, upscale_on_y


class SRCNN(nn.Module):
    def __init__(
        self,
        scale: int = 2,
        features: tuple[int, int] = (64, 32),
        kernel_sizes: tuple[int, int, int] = (9, 1, 5),
        init_std: InitStd | None = None,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale)
        n1, n2 = features
        f1, f2, f3 = kernel_sizes
        self.conv1 = nn.Conv2d(1, n1, f1, padding=f1 // 2)
        self.conv2 = self.stage(n1, n2, f2)
        self.conv3 = self.stage(n2, 1, f3)
        if init_std is not None:
            init_gaussian(self, init_std)

    def stage(self, in_channels: int, out_channels: int, kernel_size: int) -> nn.Module:
        """Stages 2 and 3: static "same" convolutions (the DCNN makes them dynamic)."""
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)

    def forward_y(self, y: torch.Tensor) -> torch.Tensor:
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(y)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upscale_on_y(x, self.scale, self.forward_y)
