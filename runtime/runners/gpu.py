"""The one NVIDIA GPU probe: which GPUs CUDA can use here, by name and compute capability.

It asks the driver library (``libcuda``, installed with every NVIDIA driver) through ctypes: no
torch, no CUDA toolkit, no subprocess, no GPU memory. Export records the build GPU of a TensorRT
plan with it, the TensorRT runner compares that record with the GPU it runs on, and benchmark
reports list the machine's GPUs. Device order is CUDA's (device 0 first, ``CUDA_VISIBLE_DEVICES``
honoured), which is the device TensorRT builds for and runs on.
"""
from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

DRIVER_LIBRARIES = ("libcuda.so.1", "libcuda.so", "nvcuda.dll")
# CUdevice_attribute values (cuda.h): CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR.
CAPABILITY_MAJOR, CAPABILITY_MINOR = 75, 76


@dataclass(frozen=True)
class Gpu:
    name: str  # e.g. "NVIDIA L4"
    compute_capability: str  # "major.minor", e.g. "8.9"


def _driver() -> ctypes.CDLL | None:
    for name in DRIVER_LIBRARIES:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


@functools.cache
def nvidia_gpus() -> tuple[Gpu, ...]:
    """The NVIDIA GPUs CUDA can use, device 0 first; empty without an NVIDIA driver or GPU."""
    lib = _driver()
    count = ctypes.c_int(0)
    # cuInit fails (CUDA_ERROR_NO_DEVICE, a driver too old...) wherever CUDA cannot run.
    if lib is None or lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return ()
    gpus = []
    for ordinal in range(count.value):
        device = ctypes.c_int()
        name = ctypes.create_string_buffer(256)
        major, minor = ctypes.c_int(), ctypes.c_int()
        if (lib.cuDeviceGet(ctypes.byref(device), ordinal) != 0 or lib.cuDeviceGetName(name, len(name), device) != 0
                or lib.cuDeviceGetAttribute(ctypes.byref(major), CAPABILITY_MAJOR, device) != 0
                or lib.cuDeviceGetAttribute(ctypes.byref(minor), CAPABILITY_MINOR, device) != 0):
            continue
        gpus.append(Gpu(name.value.decode(errors="replace"), f"{major.value}.{minor.value}"))
    return tuple(gpus)


def gpu_at(index: int, needs: str) -> Gpu:
    """CUDA device ``index`` (``--gpu``, CUDA's order), or :class:`BackendUnavailable` naming the GPUs there are;
    ``needs`` says what asked for it (e.g. ``"a .plan engine"``)."""
    from ..errors import BackendUnavailable

    gpus = nvidia_gpus()
    if index < len(gpus):
        return gpus[index]
    if not gpus:
        raise BackendUnavailable(f"{needs} needs an NVIDIA GPU; the NVIDIA driver (libcuda) lists none here, "
                                 "run the artifact's model.onnx on the CPU instead (no --gpu)")
    listed = ", ".join(f"{i}: {gpu.name}" for i, gpu in enumerate(gpus))
    raise BackendUnavailable(f"--gpu {index}: this machine has {len(gpus)} NVIDIA GPU(s) ({listed})")

