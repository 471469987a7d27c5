"""Run an ONNX graph in ONNX Runtime (CPU) and compare it with the PyTorch reference outputs."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from runtime.manifest import Parity
from runtime.parity import compare as runtime_compare
from runtime.parity import merge, run_in_chunks

FP32_MAX_ABS_DIFF = 1e-4
# PSNR of identical arrays is infinite; JSON has no infinity, so it is capped here.
PSNR_CAP_DB = 200.0


def ort_session(path: str | Path, threads: int = 2, spin: bool = True):
    """A CPU ONNX Runtime session with the runtime's own options (``runtime.runners.ort``);
    ``spin=False``: idle worker threads sleep instead of spinning (benchmarks mixing runtimes)."""
    import onnxruntime as ort

    from runtime.runners.ort import session_options

    return ort.InferenceSession(str(path), session_options(threads, spin), providers=["CPUExecutionProvider"])


def compare(
    outputs: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    max_abs_diff: float | None = FP32_MAX_ABS_DIFF,
    min_psnr_db: float | None = None,
) -> Parity:
    """runtime.parity's comparison over every (output, reference) pair, worst case kept.

    NaN/Inf always fail. ``max_abs_diff`` is the fp32 rule, ``min_psnr_db`` the reduced-precision one.
    """
    if len(outputs) != len(references) or not outputs:
        raise ValueError(f"{len(outputs)} outputs for {len(references)} references")
    tolerance = {k: v for k, v in (("max_abs_diff", max_abs_diff), ("min_psnr_db", min_psnr_db)) if v is not None}
    result = merge([runtime_compare(o, r, tolerance) for o, r in zip(outputs, references, strict=True)])
    if math.isinf(result.psnr_db):  # identical outputs; JSON has no infinity
        result.psnr_db = math.copysign(PSNR_CAP_DB, result.psnr_db)
    return result


def check_onnx(
    path: str | Path,
    inputs: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    fixed_batch: int | None = None,
    **tolerance: float | None,
) -> Parity:
    session = ort_session(path)
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return compare([run_in_chunks(run, x, fixed_batch) for x in inputs], references, **tolerance)
