"""Latency of a graph on a backend: warm-up, then repeated runs; medians and percentiles."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from runtime.runners import make_runner

from .parity import EXPORT_RUNNER


@dataclass
class Latency:
    median_ms: float
    p90_ms: float
    runs: int
    threads: int
    backend: str

    def __str__(self) -> str:
        return (f"{self.median_ms:.1f} ms median "
                f"(p90 {self.p90_ms:.1f}, {self.runs} runs, {self.threads} threads, {self.backend})")


def time_call(
    fn: Callable[[], object], runs: int = 10, warmup: int = 2, threads: int = 2, backend: str = ""
) -> Latency:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return Latency(statistics.median(times), float(np.percentile(times, 90)), runs, threads, backend)


def ort_latency(path: str | Path, inputs: np.ndarray, runs: int = 10, warmup: int = 2, threads: int = 2) -> Latency:
    """ONNX Runtime CPU latency of the graph at ``path`` on ``inputs``, run by the runtime's runner
    with export's options (:data:`export.parity.EXPORT_RUNNER`) at ``threads`` intra-op threads."""
    with make_runner(path, replace(EXPORT_RUNNER, threads=threads)) as runner:
        return time_call(lambda: runner.infer(inputs), runs, warmup, threads, "onnxruntime CPUExecutionProvider")
