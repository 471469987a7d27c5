"""Run an ONNX graph in ONNX Runtime (CPU) and compare it with the PyTorch reference outputs."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from runtime.manifest import Parity

FP32_MAX_ABS_DIFF = 1e-4
# PSNR of identical arrays is infinite; JSON has no infinity, so it is capped here.
PSNR_CAP_DB = 200.0


def ort_session(path: str | Path, threads: int = 2):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_batched(session, inputs: np.ndarray, fixed_batch: int | None) -> np.ndarray:
    """Run ``inputs`` through ``session``; a fixed-batch graph gets them in chunks of its batch."""
    name = session.get_inputs()[0].name
    if fixed_batch is None or fixed_batch == inputs.shape[0]:
        return session.run(None, {name: inputs})[0]
    if inputs.shape[0] % fixed_batch:
        raise ValueError(f"batch {inputs.shape[0]} is not a multiple of the graph's fixed batch {fixed_batch}")
    chunks = [inputs[i : i + fixed_batch] for i in range(0, inputs.shape[0], fixed_batch)]
    return np.concatenate([session.run(None, {name: c})[0] for c in chunks])


def psnr_db(output: np.ndarray, reference: np.ndarray) -> float:
    """PSNR of ``output`` against ``reference``, both in [0, 1], in float64."""
    mse = float(np.mean((output.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10.0 * math.log10(1.0 / mse))


def compare(
    outputs: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    max_abs_diff: float | None = FP32_MAX_ABS_DIFF,
    min_psnr_db: float | None = None,
) -> Parity:
    """Parity over all reference pairs: worst max |diff|, mean |diff| and worst PSNR.

    NaN/Inf always fail. ``max_abs_diff`` is the fp32 rule, ``min_psnr_db`` the reduced-precision one.
    """
    if len(outputs) != len(references):
        raise ValueError(f"{len(outputs)} outputs for {len(references)} references")
    finite = all(bool(np.isfinite(o).all()) for o in outputs)
    shapes_ok = all(o.shape == r.shape for o, r in zip(outputs, references))
    if not (finite and shapes_ok):
        worst = float("nan") if not finite else float("inf")
        return Parity(worst, worst, 0.0, finite, _tolerance(max_abs_diff, min_psnr_db), False)
    diffs = [np.abs(o.astype(np.float64) - r.astype(np.float64)) for o, r in zip(outputs, references)]
    max_diff = max(float(d.max()) for d in diffs)
    mean_diff = float(np.mean(np.concatenate([d.ravel() for d in diffs])))
    psnr = min(psnr_db(o, r) for o, r in zip(outputs, references))
    passed = (max_abs_diff is None or max_diff <= max_abs_diff) and (min_psnr_db is None or psnr >= min_psnr_db)
    return Parity(max_diff, mean_diff, psnr, finite, _tolerance(max_abs_diff, min_psnr_db), passed)


def _tolerance(max_abs_diff: float | None, min_psnr_db: float | None) -> dict[str, float]:
    tolerance = {}
    if max_abs_diff is not None:
        tolerance["max_abs_diff"] = max_abs_diff
    if min_psnr_db is not None:
        tolerance["min_psnr_db"] = min_psnr_db
    return tolerance


def check_onnx(
    path: str | Path,
    inputs: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    fixed_batch: int | None = None,
    **tolerance: float | None,
) -> Parity:
    session = ort_session(path)
    return compare([run_batched(session, x, fixed_batch) for x in inputs], references, **tolerance)
