"""Facts about the machine and install a run records beside its figures: usable CPUs, GPUs, library versions.

One small home for them (CPU model, flags and ISA levels are runtime/cpu.py's), read by export's manifest,
the tuning record's key, the video encoder's thread count and the benchmarks' machine record.
"""
from __future__ import annotations

import os
from importlib import metadata

from .runners.gpu import nvidia_gpus

# What the manifest, the tuning key and the benchmark reports record the versions of.
PACKAGES = ("numpy", "onnxruntime", "onnxruntime-gpu", "openvino", "tensorrt", "torch", "onnx", "pillow")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask on Linux, else every logical CPU)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def gpu_names() -> list[str]:
    """NVIDIA GPUs CUDA can use here (empty without a driver or GPU), by the runtime's one GPU probe."""
    return [gpu.name for gpu in nvidia_gpus()]


def library_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported)."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
