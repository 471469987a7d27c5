"""``auto``: the fastest lowering on the target backend among those that pass parity."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from .latency import ort_latency
from .lowering import STRATEGIES, lower
from .onnx_export import export_onnx
from .parity import check_onnx
from .recipe import FOCUS_SHAPE, OPSET


@dataclass
class AutoChoice:
    strategy: str
    # strategy -> median ms on the measured shape, or the reason it was not eligible
    measured: dict[str, float | str] = field(default_factory=dict)
    shape: tuple[int, int, int, int] = FOCUS_SHAPE
    backend: str = "onnxruntime CPUExecutionProvider"


def choose_strategy(
    model: nn.Module,
    spec_for: Callable[[bool, int], object],
    inputs: list[np.ndarray],
    outputs: list[np.ndarray],
    shape: tuple[int, int, int, int] = FOCUS_SHAPE,
    threads: int = 2,
    runs: int = 10,
    opset: int = OPSET,
    exporter: str = "legacy",
) -> AutoChoice:
    """Export each strategy for batch ``shape[0]``, drop those failing fp32 parity, time the rest."""
    batch = shape[0]
    choice = AutoChoice(strategy="", shape=shape)
    probe = np.random.default_rng(0).random(shape, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        for name, strategy in STRATEGIES.items():
            path = Path(tmp) / f"{name}.onnx"
            export_onnx(lower(model, name, batch), spec_for(strategy.dynamic_batch, batch), path,
                        opset=opset, exporter=exporter)
            usable = [(x, y) for x, y in zip(inputs, outputs, strict=True)
                      if strategy.dynamic_batch or x.shape[0] % batch == 0]
            parity = check_onnx(path, [x for x, _ in usable], [y for _, y in usable],
                                fixed_batch=None if strategy.dynamic_batch else batch)
            if not parity:
                choice.measured[name] = f"failed parity (max|diff| {parity.max_abs_diff:.2e})"
                continue
            choice.measured[name] = round(ort_latency(path, probe, runs=runs, threads=threads).median_ms, 2)
    timed = {k: v for k, v in choice.measured.items() if isinstance(v, float)}
    if not timed:
        raise RuntimeError(f"no lowering passed parity: {choice.measured}")
    choice.strategy = min(timed, key=timed.get)
    return choice
