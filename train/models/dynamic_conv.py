"""Dynamic convolution: attention over a bank of K convolution kernels (Chen et al., CVPR 2020).

y = conv(x, sum_k a_k(x) W_k) + sum_k a_k(x) b_k, with a(x) = softmax(MLP(GAP(x)) / T).

Two forward formulations compute the same function (conv is linear in its weight):

- ``grouped``: the per-sample kernel is aggregated and the batch is folded into the channel
  axis, so one grouped conv (groups = batch) runs every sample with its own kernel. Training-level
  MACs; this is the formulation of Chen et al.'s code and the one used for training.
- ``branches``: one static conv with K*C_out outputs, then the K results are weighted by the
  attention and summed. All weights are constants (export- and INT8-friendly); K x the MACs.

``export/`` adds further lowerings as module transformations; this file stays the training truth.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

FORMULATIONS = ("grouped", "branches")


class KernelAttention(nn.Module):
    """Global average pool -> 1x1 conv -> ReLU -> 1x1 conv -> softmax(logits / temperature).

    Both 1x1 convs are bias-free, as in the DyConvSR authors' code (59,970 parameters at x2).
    """

    def __init__(self, in_channels: int, num_kernels: int, hidden: int, temperature: float) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(in_channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, num_kernels, 1, bias=False)
        # A buffer, so a checkpoint keeps the temperature the model was trained to.
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Attention logits from pooled statistics of shape (B, C, 1, 1); returns (B, K)."""
        return self.fc2(F.relu(self.fc1(pooled))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return torch.softmax(self.logits(pooled) / self.temperature, dim=1)


class DynamicConv2d(nn.Module):
    """A KxK-kernel-bank convolution whose kernel is chosen per sample by attention."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        num_kernels: int = 4,
        reduction: int = 4,
        temperature: float = 30.0,
        bias: bool = True,
        formulation: str = "grouped",
    ) -> None:
        super().__init__()
        if num_kernels < 1:
            raise ValueError(f"num_kernels must be >= 1, got {num_kernels}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.num_kernels = num_kernels
        self.padding = kernel_size // 2
        hidden = max(in_channels // reduction, 4)
        self.attention = KernelAttention(in_channels, num_kernels, hidden, temperature)
        self.weight = nn.Parameter(torch.empty(num_kernels, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(num_kernels, out_channels)) if bias else None
        self.formulation = formulation
        self.reset_parameters()

    @property
    def formulation(self) -> str:
        return self._formulation

    @formulation.setter
    def formulation(self, value: str) -> None:
        if value not in FORMULATIONS:
            raise ValueError(f"formulation must be one of {', '.join(FORMULATIONS)}; got {value!r}")
        self._formulation = value

    def reset_parameters(self) -> None:
        # Each kernel of the bank gets nn.Conv2d's own initialisation, independently (Chen et al.):
        # identical kernels would make the attention's gradient vanish.
        fan_in = self.in_channels * self.kernel_size**2
        for k in range(self.num_kernels):
            nn.init.kaiming_uniform_(self.weight[k], a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def set_temperature(self, temperature: float) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.attention.temperature.fill_(float(temperature))

    def forward(self, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the layer; ``attention`` (B, K) may be given to reuse precomputed weights."""
        if attention is None:
            attention = self.attention(x)
        if self._formulation == "grouped":
            return self._forward_grouped(x, attention)
        return self._forward_branches(x, attention)

    def _forward_grouped(self, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        weight = (attention @ self.weight.flatten(1)).reshape(
            batch * self.out_channels, self.in_channels, self.kernel_size, self.kernel_size
        )
        bias = (attention @ self.bias).flatten() if self.bias is not None else None
        out = F.conv2d(x.reshape(1, -1, height, width), weight, bias, padding=self.padding, groups=batch)
        return out.reshape(batch, self.out_channels, out.shape[-2], out.shape[-1])

    def _forward_branches(self, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        bias = self.bias.flatten() if self.bias is not None else None
        out = F.conv2d(x, self.weight.flatten(0, 1), bias, padding=self.padding)
        out = out.unflatten(1, (self.num_kernels, self.out_channels))
        return (out * attention[:, :, None, None, None]).sum(dim=1)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"num_kernels={self.num_kernels}, formulation={self._formulation!r}"
        )


def dynamic_convs(model: nn.Module) -> list[DynamicConv2d]:
    return [m for m in model.modules() if isinstance(m, DynamicConv2d)]


def set_formulation(model: nn.Module, formulation: str) -> nn.Module:
    """Switch every DynamicConv2d in ``model`` to ``formulation``; returns the model."""
    for module in dynamic_convs(model):
        module.formulation = formulation
    return model


def set_temperature(model: nn.Module, temperature: float) -> None:
    for module in dynamic_convs(model):
        module.set_temperature(temperature)


def temperature_schedule(
    progress: float, anneal_fraction: float = 0.1, start: float = 30.0, end: float = 1.0
) -> float:
    """Chen et al.'s annealing: linear from ``start`` to ``end`` over the first ``anneal_fraction``
    of training, then constant. ``progress`` is the fraction of training done, in [0, 1]."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1], got {progress}")
    if anneal_fraction <= 0:
        return end
    t = min(progress / anneal_fraction, 1.0)
    return start + (end - start) * t
