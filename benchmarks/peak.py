"""The machine's matrix-multiply peak per precision, measured in the same run as the benchmarks.

Every row's "of peak" divides by the peak of its own precision (runtime.bench.machine.peak_for):
fp32 by the best of torch.mm and numpy, bf16 by torch.mm in bf16, int8 by the best of
torch._int_mm and ONNX Runtime's MatMulInteger (GOP/s), fp16 by torch.mm in fp16. A precision the
CPU has no arithmetic for (no ISA flag below) is recorded as not measured: timing its emulation
would give a tiny "peak" and fractions far above 100%.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from runtime.bench.machine import MatmulPeak, gemm_method, numpy_matmul_peak, time_best, unmeasured_peak

SIZE = 2048
REPEATS = 5
# The instruction-set flags (runtime.bench.machine.ISA_FLAGS) that give a precision native arithmetic.
NATIVE_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16")}
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _set_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)


def torch_matmul_peak(threads: int, precision: str = "fp32", size: int = SIZE, repeats: int = REPEATS) -> MatmulPeak:
    _set_threads(threads)
    dtype = TORCH_DTYPES[precision]
    a, b = torch.rand(size, size).to(dtype), torch.rand(size, size).to(dtype)
    seconds = time_best(lambda: torch.mm(a, b), repeats)
    return MatmulPeak(2 * size**3 / seconds / 1e9, f"torch {torch.__version__} mm", size, torch.get_num_threads(),
                      precision, gemm_method(f"torch.mm ({dtype})", size, repeats))


def torch_int8_peak(threads: int, size: int = SIZE, repeats: int = REPEATS) -> MatmulPeak:
    """int8 x int8 -> int32 products through torch._int_mm (GOP/s: one multiply-add counts 2)."""
    if not hasattr(torch, "_int_mm"):
        return unmeasured_peak("int8", f"torch {torch.__version__} has no torch._int_mm")
    _set_threads(threads)
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randint(-128, 128, (size, size), dtype=torch.int8, generator=generator) for _ in range(2))
    try:
        seconds = time_best(lambda: torch._int_mm(a, b), repeats)
    except RuntimeError as exc:  # builds without a CPU kernel for it
        return unmeasured_peak("int8", f"torch._int_mm failed on this CPU: {exc}")
    return MatmulPeak(2 * size**3 / seconds / 1e9, f"torch {torch.__version__} _int_mm", size,
                      torch.get_num_threads(), "int8", gemm_method("torch._int_mm (int8 -> int32)", size, repeats))


def onnxruntime_int8_peak(threads: int, size: int = SIZE, repeats: int = REPEATS) -> MatmulPeak:
    """uint8 x int8 -> int32 through ONNX Runtime's MatMulInteger: the MLAS kernels its INT8 graphs use."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as exc:
        return unmeasured_peak("int8", f"onnxruntime MatMulInteger needs onnx and onnxruntime ({exc})")
    from onnx import TensorProto, helper

    from runtime.runners.ort import session_options

    inputs = [helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size]),
              helper.make_tensor_value_info("b", TensorProto.INT8, [size, size])]
    output = helper.make_tensor_value_info("c", TensorProto.INT32, [size, size])
    graph = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "peak", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), session_options(threads),
                                   providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 256, (size, size), dtype=np.uint8),
            "b": rng.integers(-128, 128, (size, size), dtype=np.int8)}
    seconds = time_best(lambda: session.run(None, feed), repeats)
    return MatmulPeak(2 * size**3 / seconds / 1e9, f"onnxruntime {ort.__version__} MatMulInteger", size,
                      threads or "default", "int8", gemm_method("MatMulInteger (uint8 x int8 -> int32)", size, repeats))


def _native_or_unmeasured(precision: str, isa: Sequence[str], threads: int) -> MatmulPeak:
    flags = NATIVE_FLAGS[precision]
    if not set(flags) & set(isa):
        return unmeasured_peak(precision, f"the CPU has no {precision} arithmetic (none of {', '.join(flags)}); "
                               f"its {precision} engines run emulated or convert to fp32")
    return torch_matmul_peak(threads, precision)


def matmul_peaks(threads: int, isa: Sequence[str]) -> tuple[MatmulPeak, list[MatmulPeak]]:
    """(the best fp32 peak, every peak measured or recorded as not measured, per precision)."""
    fp32 = [torch_matmul_peak(threads), numpy_matmul_peak()]
    peaks = [*fp32, _native_or_unmeasured("bf16", isa, threads), _native_or_unmeasured("fp16", isa, threads),
             torch_int8_peak(threads), onnxruntime_int8_peak(threads)]
    return max(fp32, key=lambda p: p.gflops), peaks
