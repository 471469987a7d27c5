"""Run an engine through the runtime's own runners and compare it with the PyTorch reference outputs.

Export proves every file it writes the way a device runs it (``runtime.runners``); ONNX graphs run
on ONNX Runtime's CPU provider with :data:`EXPORT_RUNNER`'s options.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from runtime import catalogue
from runtime.manifest import Parity
from runtime.parity import engine_parity
from runtime.runners import RunnerConfig

# How export runs its ONNX graphs (parity, tiling certification, auto's timings): 2 intra-op threads.
EXPORT_RUNNER = RunnerConfig(backend="onnxruntime", provider="cpu", threads=2)


def check_onnx(
    path: str | Path,
    inputs: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    fixed_batch: int | None = None,
    precision: str = "fp32",
) -> Parity:
    """An ONNX (or ``.ort``) graph on export's CPU runner against ``references``, judged by the
    catalogue's tolerance for ``precision``."""
    return engine_parity(path, inputs, references, catalogue.tolerance(precision), fixed_batch, EXPORT_RUNNER)


__all__ = ["EXPORT_RUNNER", "check_onnx", "engine_parity"]
