"""Facts about the machine and install a run records beside its figures: usable CPUs, GPUs, library versions.

One small home for them (CPU model, flags and ISA levels are runtime/cpu.py's), read by export's manifest,
the tuning record's key, the video encoder's thread count and the benchmarks' machine record.
"""
from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

# What the manifest, the tuning key and the benchmark reports record the versions of.
PACKAGES = ("numpy", "onnxruntime", "onnxruntime-gpu", "openvino", "tensorrt", "torch", "onnx", "pillow")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask on Linux, else every logical CPU)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def gpu_names() -> list[str]:
    """NVIDIA GPUs CUDA can use here (empty without a driver or GPU), by the runtime's one GPU probe."""
    from .runners.gpu import nvidia_gpus  # (runners import the backend records, which import this module)

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


DISTRIBUTION = "dyconvsr-toolchain"
# torch first, from PyTorch's own CPU index: an unpinned torch from an ordinary index is a multi-GB CUDA build.
TORCH_FIRST = "pip install torch --index-url https://download.pytorch.org/whl/cpu, then "


def install_command(extra: str) -> str:
    """The command that adds optional ``extra`` to this install, as it was made: ``pip install -e
    '<checkout>[extra]'`` for a source checkout, ``pip install '<file>[extra]'`` for a wheel installed from a
    file, else the package by name. The train extra is preceded by the CPU torch."""
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file():
        where = "." if Path.cwd().resolve() == root else str(root)
        command = f"pip install -e '{where}[{extra}]'"
    else:
        command = f"pip install '{_installed_from() or DISTRIBUTION}[{extra}]'"
    return (TORCH_FIRST if extra == "train" else "") + command


def _installed_from() -> str | None:
    """The wheel or folder this distribution was installed from (PEP 610 direct_url.json), when it was a file."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
        url = json.loads(text or "{}").get("url", "")
    except (metadata.PackageNotFoundError, ValueError, AttributeError):
        return None
    return url.removeprefix("file://") if url.startswith("file://") else None
