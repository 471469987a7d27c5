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
from runtime.parity import compare_all, run_in_chunks
from runtime.runners import PlanOrigin, RunnerConfig, make_runner

# How export runs its ONNX graphs (parity, tiling certification, auto's timings): 2 intra-op threads.
EXPORT_RUNNER = RunnerConfig(backend="onnxruntime", provider="cpu", threads=2)


def engine_parity(
    path: str | Path,
    inputs: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    tolerance: dict[str, float],
    fixed_batch: int | None = None,
    config: RunnerConfig = EXPORT_RUNNER,
    origin: PlanOrigin | None = None,
) -> Parity:
    """The engine at ``path`` run by the runtime's runner for ``config`` on ``inputs`` (batches larger
    than a fixed ``fixed_batch`` in chunks), against ``references``."""
    with make_runner(path, config, origin) as runner:
        outputs = [run_in_chunks(runner.infer, x, fixed_batch) for x in inputs]
    return compare_all(outputs, references, tolerance)


def check_onnx(
    path: str | Path,
    inputs: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    fixed_batch: int | None = None,
    precision: str = "fp32",
) -> Parity:
    """An ONNX (or ``.ort``) graph on export's CPU runner against ``references``, judged by the
    catalogue's tolerance for ``precision``."""
    return engine_parity(path, inputs, references, catalogue.tolerance(precision), fixed_batch)
