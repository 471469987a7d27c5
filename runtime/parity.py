"""Comparing an engine's output with the PyTorch reference: a result whose truth is the verdict."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import catalogue
from .manifest import Parity, Variant
from .metrics import psnr as psnr_db
from .runners import RunnerConfig, make_runner
from .runners.plan_origin import PlanOrigin


def tolerance_for(variant: Variant, computed_in: str | None = None) -> dict[str, float]:
    """The manifest's recorded tolerance for ``variant``, else the catalogue's for its precision; an
    fp32 graph computed in a reduced precision (``computed_in``, e.g. OpenVINO told bf16) is judged
    by the catalogue's tolerance for that precision."""
    if variant.precision == "fp32" and computed_in not in (None, "fp32"):
        return catalogue.tolerance(computed_in)
    if variant.parity is not None and variant.parity.tolerance:
        return dict(variant.parity.tolerance)
    return catalogue.tolerance(variant.precision)


def within(tolerance: dict[str, float], max_abs_diff: float | None, psnr_db: float | None,
           mean_abs_diff: float | None = None) -> bool:
    """The one verdict: measured figures against a tolerance (:func:`tolerance_for`'s keys ``max_abs_diff``,
    ``mean_abs_diff``, ``min_psnr_db``). runtime.check, export and the benchmark reports all judge through it.
    A missing difference fails a bound on it; a missing PSNR (identical outputs, JSON null) passes a floor."""
    bounds = (("max_abs_diff", max_abs_diff), ("mean_abs_diff", mean_abs_diff))
    if any(key in tolerance and (value is None or value > tolerance[key]) for key, value in bounds):
        return False
    return psnr_db is None or psnr_db >= tolerance.get("min_psnr_db", -math.inf)


def compare(output: np.ndarray, reference: np.ndarray, tolerance: dict[str, float], peak: float = 1.0) -> Parity:
    """max/mean |diff|, PSNR and NaN/Inf of ``output`` against ``reference``; ``bool(result)`` is the verdict.

    ``tolerance`` keys: ``max_abs_diff``, ``mean_abs_diff`` (upper bounds), ``min_psnr_db`` (lower
    bound). Any NaN/Inf in the output fails, whatever the tolerance. Shapes must match.
    """
    if output.shape != reference.shape:
        return Parity(math.inf, math.inf, -math.inf, False, dict(tolerance), False)
    finite = bool(np.isfinite(output).all())
    diff = np.abs(output.astype(np.float64) - reference.astype(np.float64))
    max_diff = float(diff.max()) if finite else math.inf
    mean_diff = float(diff.mean()) if finite else math.inf
    psnr = float(psnr_db(output, reference, data_range=peak)) if finite else -math.inf
    passed = finite and within(tolerance, max_diff, psnr, mean_diff)
    return Parity(max_diff, mean_diff, psnr, finite, dict(tolerance), passed)


def merge(results: list[Parity]) -> Parity:
    """Several comparisons (one per reference) as one: worst case of each measure."""
    if not results:
        raise ValueError("nothing to merge")
    return Parity(
        max(r.max_abs_diff for r in results),
        max(r.mean_abs_diff for r in results),
        min(r.psnr_db for r in results),
        all(r.finite for r in results),
        results[0].tolerance,
        all(r.passed for r in results),
    )


def compare_all(outputs: Sequence[np.ndarray], references: Sequence[np.ndarray], tolerance: dict[str, float],
                peak: float = 1.0) -> Parity:
    """:func:`compare` over every (output, reference) pair, merged (worst case of each measure kept)."""
    if len(outputs) != len(references) or not outputs:
        raise ValueError(f"{len(outputs)} outputs for {len(references)} references")
    return merge([compare(o, r, tolerance, peak) for o, r in zip(outputs, references, strict=True)])


def run_in_chunks(run: Callable[[np.ndarray], np.ndarray], inputs: np.ndarray, chunk: int | None) -> np.ndarray:
    """``run`` over ``inputs`` (N, ...) in chunks of ``chunk`` (a fixed-batch graph's batch), concatenated."""
    if not chunk or chunk >= inputs.shape[0]:
        return run(inputs)
    if inputs.shape[0] % chunk:
        raise ValueError(f"batch {inputs.shape[0]} is not a multiple of the graph's fixed batch {chunk}")
    return np.concatenate([run(inputs[i : i + chunk]) for i in range(0, inputs.shape[0], chunk)])


def engine_parity(
    path: str | Path,
    inputs: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    tolerance: dict[str, float],
    fixed_batch: int | None = None,
    config: RunnerConfig = RunnerConfig(),
    origin: PlanOrigin | None = None,
) -> Parity:
    """The engine at ``path`` run by the runtime's runner for ``config`` on ``inputs`` (batches larger
    than a fixed ``fixed_batch`` in chunks), against ``references``."""
    with make_runner(path, config, origin) as runner:
        outputs = [run_in_chunks(runner.infer, x, fixed_batch) for x in inputs]
    return compare_all(outputs, references, tolerance)
