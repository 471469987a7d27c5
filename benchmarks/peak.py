"""The machine's fp32 matrix-multiply peak, measured in the same run as the benchmarks."""
from __future__ import annotations

import torch

from runtime.bench.machine import MatmulPeak, numpy_matmul_peak, time_best


def torch_matmul_peak(threads: int, size: int = 2048, repeats: int = 5) -> MatmulPeak:
    if threads:
        torch.set_num_threads(threads)
    a, b = torch.rand(size, size), torch.rand(size, size)
    seconds = time_best(lambda: torch.mm(a, b), repeats)
    return MatmulPeak(2 * size**3 / seconds / 1e9, f"torch {torch.__version__} mm", size, torch.get_num_threads())


def matmul_peaks(threads: int) -> tuple[MatmulPeak, list[MatmulPeak]]:
    """(the best, all measured): the best is the denominator of every row's peak fraction."""
    peaks = [torch_matmul_peak(threads), numpy_matmul_peak()]
    return max(peaks, key=lambda p: p.gflops), peaks
