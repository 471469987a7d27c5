"""Parameter and MAC/FLOP counts from a trace (torch.utils.flop_counter), units named.

The counter sees the convolutions and matrix products a forward pass actually executes, so a
lowering that runs K branches is counted K times in that layer. FLOPs = 2 x MACs; element-wise
ops (activations, pixel shuffle, adds) are not counted, as is usual for SR papers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class Complexity:
    params: int
    macs: int
    input_shape: tuple[int, ...]

    @property
    def flops(self) -> int:
        return 2 * self.macs


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on a zero-free random input of ``input_shape``."""
    x = torch.rand(input_shape)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() // 2


def measure(model: nn.Module, height: int = 256, width: int = 256, batch: int = 1) -> Complexity:
    shape = (batch, 3, height, width)
    return Complexity(count_parameters(model), count_macs(model.eval(), shape), shape)


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M' (decimal prefixes, as papers quote parameters and MACs)."""
    for prefix, factor in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip()
