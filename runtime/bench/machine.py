"""What machine a report was taken on, and its measured matrix-multiply peaks (numpy fp32 here)."""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cpu import cpu_info
from ..host import gpu_names, usable_cpus

# Instruction-set extensions that decide which kernels fp32/bf16/int8 engines can use.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
             "avx512_fp16", "amx_fp16", "neon", "asimd", "asimddp", "sve")


@dataclass
class Machine:
    name: str
    cpu: str
    logical_cpus: int
    usable_cpus: int
    isa: list[str]
    memory_gb: float | None
    os: str
    python: str
    gpus: list[str]
    # 1-minute load average when the run started and ended. It counts the benchmark's own threads
    # (2 threads on 2 cores read as load 2), so it cannot tell a busy machine from a busy benchmark.
    load_average: dict[str, float] = field(default_factory=dict)
    # Share of the usable CPUs that OTHER processes used during the run (system CPU time from
    # /proc/stat minus this process's own): 0.0 on a quiet machine; None where unmeasurable.
    other_cpu_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = cpu_info()
    return model, [f for f in ISA_FLAGS if f in flags]


def _memory_gb() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return round(pages * size / 1e9, 1)


def describe_machine(name: str | None = None) -> Machine:
    cpu, isa = _cpuinfo()
    return Machine(
        name=name or platform.node() or "unknown",
        cpu=cpu,
        logical_cpus=os.cpu_count() or 1,
        usable_cpus=usable_cpus(),
        isa=isa,
        memory_gb=_memory_gb(),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        gpus=gpu_names(),
    )


class OtherCpuUse:
    """Measures how much CPU the rest of the machine used while a benchmark ran (Linux)."""

    def __init__(self) -> None:
        self._start: tuple[float, float, float] | None = _cpu_snapshot()

    def share(self, cpus: int) -> float | None:
        """Other processes' CPU time since construction, as a share of ``cpus`` over the wall time."""
        end = _cpu_snapshot()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        system = end[1] - self._start[1]
        own = end[2] - self._start[2]
        if wall <= 0:
            return None
        return round(max(0.0, (system - own) / (wall * max(cpus, 1))), 3)


def _cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall s, CPU s used by every process on the machine, CPU s used by this process's own threads).
    Child processes count as "other": their time only reaches os.times() once waited for."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy time.
    ticks = [int(v) for v in fields[:8]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    times = os.times()
    own = times.user + times.system
    return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), own


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


@dataclass
class MatmulPeak:
    """A matrix-multiply peak of one precision: the denominator of the peak fraction of rows in it.

    ``gflops`` is None for a precision this tool cannot measure; ``method`` says how the figure was
    taken (or why it is missing), so no row is ever divided by another precision's peak.
    """

    gflops: float | None
    library: str
    size: int
    threads: int | str
    precision: str = "fp32"
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_best(fn: Callable[[], object], repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls, in seconds (the peak is a best case by definition)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_method(what: str, size: int, repeats: int) -> str:
    return f"measured: best of {repeats} timed {what} on {size}x{size} matrices, after one untimed call"


def numpy_matmul_peak(size: int = 2048, repeats: int = 5) -> MatmulPeak:
    """Best fp32 GFLOP/s of an n x n matrix product through numpy's BLAS (its default threads)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    seconds = time_best(lambda: a @ b, repeats)
    return MatmulPeak(2 * size**3 / seconds / 1e9, f"numpy {np.__version__} BLAS", size, "default", "fp32",
                      gemm_method("float32 a @ b", size, repeats))


def unmeasured_peak(precision: str, reason: str) -> MatmulPeak:
    """The record of a precision without a peak: its rows get no peak fraction."""
    return MatmulPeak(None, "-", 0, "-", precision, f"not measured: {reason}")


def torch_free_peaks(size: int = 2048) -> list[MatmulPeak]:
    """runtime.bench's peaks: numpy's fp32 BLAS; the other precisions are unknown without torch
    (benchmarks.run measures them, benchmarks/peak.py), so their rows get no peak fraction."""
    reason = "runtime.bench is torch-free and numpy has no bf16, fp16 or int8 BLAS product"
    return [numpy_matmul_peak(size), *(unmeasured_peak(p, reason) for p in ("bf16", "fp16", "int8"))]


def peak_for(precision: str, peaks: Sequence[MatmulPeak]) -> MatmulPeak | None:
    """The highest measured peak of ``precision`` (None when none was measured)."""
    return max((p for p in peaks if p.precision == precision and p.gflops), key=lambda p: p.gflops, default=None)
