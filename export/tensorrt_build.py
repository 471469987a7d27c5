"""TensorRT plans (fp32 / fp16 / int8) from an ONNX graph, built where tensorrt and a GPU exist.

tensorrt is imported lazily: on a machine without it (or without an NVIDIA GPU) ``tensorrt_unavailable``
gives the one-line reason and export records the plans as skipped.

INT8 uses explicit quantisation: the plan is built from a symmetric QDQ graph
(``export.precision.to_int8(symmetric=True)``), which TensorRT >= 8 consumes directly; the
deprecated implicit-calibrator API is not used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.catalogue import TENSORRT_PRECISIONS
from runtime.files import atomic_write_bytes
from runtime.host import install_command
from runtime.runners.gpu import gpu_at, nvidia_gpus

from .recipe import FOCUS_HW, PROFILE_MAX_HW, PROFILE_MIN_HW


@dataclass(frozen=True)
class Profile:
    """Optimisation profile of the input (N, 3, H, W): min / opt / max shapes."""

    min: tuple[int, int, int, int] = (1, 3, *PROFILE_MIN_HW)
    opt: tuple[int, int, int, int] = (1, 3, *FOCUS_HW)
    max: tuple[int, int, int, int] = (1, 3, *PROFILE_MAX_HW)

    @classmethod
    def for_batch(cls, batch: int, max_batch: int | None = None) -> Profile:
        """The recipe's sizes at ``batch`` (up to ``max_batch`` for a dynamic-batch graph)."""
        return cls((batch, 3, *PROFILE_MIN_HW), (batch, 3, *FOCUS_HW), (max_batch or batch, 3, *PROFILE_MAX_HW))


def tensorrt_unavailable() -> str | None:
    """None when a plan can be built here, else the one-line reason why not."""
    try:
        import tensorrt  # noqa: F401 - imported only to probe that it is installed and loads
    except ImportError:
        return f"tensorrt is not installed ({install_command('gpu')} on a machine with an NVIDIA GPU)"
    if not nvidia_gpus():
        return "no NVIDIA GPU found (the NVIDIA driver library, libcuda, lists none)"
    return None


def build_plan(
    onnx_path: str | Path,
    plan_path: str | Path,
    precision: str = "fp32",
    profile: Profile = Profile(),
    timing_cache: str | Path | None = None,
    workspace_bytes: int = 1 << 30,
) -> dict[str, str]:
    """Parse ``onnx_path``, build a serialised engine, write it atomically; returns the notes
    (TensorRT version, GPU, compute capability, profile) for the manifest."""
    import tensorrt as trt

    gpu = gpu_at(0, "building a TensorRT plan")  # the device it builds for, recorded for the origin check
    if precision not in TENSORRT_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(TENSORRT_PRECISIONS)}; got {precision!r}")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 matmuls/convs would break the fp32 1e-4 parity
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # explicit QDQ graph: scales come from the graph
        config.set_flag(trt.BuilderFlag.FP16)  # non-quantised layers may run in fp16

    optimisation = builder.create_optimization_profile()
    input_name = network.get_input(0).name
    optimisation.set_shape(input_name, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(optimisation)

    cache_path = Path(timing_cache) if timing_cache else None
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path and cache_path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build a {precision} engine from {onnx_path} (see its log above)")
    atomic_write_bytes(plan_path, bytes(serialized))
    if cache_path:
        atomic_write_bytes(cache_path, bytes(config.get_timing_cache().serialize()))
    return {
        "tensorrt_version": trt.__version__,
        "gpu_name": gpu.name,
        "compute_capability": gpu.compute_capability,
        "profile_min": list(profile.min),
        "profile_opt": list(profile.opt),
        "profile_max": list(profile.max),
        "timing_cache": cache_path.name if cache_path else None,
        "source_onnx": Path(onnx_path).name,
    }
