"""Where a TensorRT plan was built, as export records it, and the refusal of a plan built elsewhere.

Light on purpose (no TensorRT, no CUDA): the upscaler, runtime.check and the benchmarks read it for every
variant, and only a .plan engine loads runtime/runners/tensorrt.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError

# Manifest ``Variant.notes`` keys export may use for the build environment of a plan.
VERSION_KEYS = ("tensorrt_version", "tensorrt", "trt_version")
GPU_KEYS = ("gpu_name", "gpu", "device_name")
CAPABILITY_KEYS = ("compute_capability", "sm")


@dataclass(frozen=True)
class PlanOrigin:
    """Where a plan was built, as recorded by export (any field may be unknown)."""

    tensorrt_version: str | None = None
    gpu_name: str | None = None
    compute_capability: str | None = None

    @classmethod
    def from_notes(cls, notes: dict[str, Any]) -> PlanOrigin:
        def first(keys: tuple[str, ...]) -> str | None:
            return next((str(notes[k]) for k in keys if notes.get(k) not in (None, "", "unknown")), None)

        return cls(first(VERSION_KEYS), first(GPU_KEYS), first(CAPABILITY_KEYS))


def check_plan_origin(origin: PlanOrigin, trt_version: str, gpu_name: str | None, capability: str | None) -> None:
    """Refuse a plan built for another TensorRT version or GPU (raises :class:`UserError`)."""
    if origin.tensorrt_version and origin.tensorrt_version != trt_version:
        raise UserError(
            f"plan built with TensorRT {origin.tensorrt_version}, this machine has TensorRT {trt_version}: "
            "plans are not portable across versions; rebuild it here (python -m export --tensorrt) or use model.onnx"
        )
    if origin.compute_capability and capability and origin.compute_capability != capability:
        raise UserError(
            f"plan built for compute capability {origin.compute_capability} ({origin.gpu_name or 'unknown GPU'}), "
            f"this GPU is {gpu_name} with {capability}; rebuild the plan on this GPU or use model.onnx"
        )
    if origin.gpu_name and gpu_name and origin.gpu_name != gpu_name and not origin.compute_capability:
        raise UserError(
            f"plan built on {origin.gpu_name}, this GPU is {gpu_name}; rebuild the plan here or use model.onnx"
        )
