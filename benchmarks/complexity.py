"""Parameters and MACs of what each engine executes, from train.complexity's trace-based counter.

An engine running lowering S is counted on ``export.lowering.lower(model, S)`` and a PyTorch
engine on the model switched to its formulation, so ``branches`` counts the dynamic layer K
times and ``aggregate``/``grouped`` count it once plus the kernel-mixing product.
"""
from __future__ import annotations

import copy
from functools import lru_cache

from torch import nn

from export.lowering import STRATEGIES, lower
from runtime.bench.engines import EngineInfo
from train.complexity import count_macs, count_parameters
from train.models import FORMULATIONS, dynamic_convs, set_formulation

from .engines import PILLOW, bicubic_macs


class ComplexityCounter:
    """``counter(info) -> (params, MACs)`` for one model and one input shape (N, 3, H, W)."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, int, int, int], scale: int) -> None:
        self.model, self.shape, self.scale = model, input_shape, scale
        self.params = count_parameters(model)
        self._macs = lru_cache(maxsize=None)(self._count)

    def __call__(self, info: EngineInfo) -> tuple[int | None, int | None]:
        if info.backend == PILLOW:
            n, _, h, w = self.shape
            return 0, bicubic_macs(n, h, w, self.scale)
        macs = self._macs(info.strategy)
        return (self.params, macs) if macs is not None else (self.params, None)

    def _count(self, strategy: str | None) -> int | None:
        if strategy is None or not dynamic_convs(self.model):  # every lowering of a static net is the net
            return count_macs(self.model.eval(), self.shape)
        if strategy in FORMULATIONS:
            return count_macs(set_formulation(copy.deepcopy(self.model).eval(), strategy), self.shape)
        if strategy in STRATEGIES:
            return count_macs(lower(self.model, strategy, batch=self.shape[0]), self.shape)
        return None  # a lowering this checkout does not know: MACs left out rather than guessed
