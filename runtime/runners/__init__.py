"""Engine runners behind one interface; :func:`make_runner` picks the backend for a file."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .base import BACKENDS, Runner, RunnerConfig, TensorInfo, check_feed
from .tensorrt import PlanOrigin

PLAN_SUFFIXES = (".plan", ".engine", ".trt")
ONNX_SUFFIXES = (".onnx", ".ort")
OPENVINO_SUFFIXES = (".xml",)  # OpenVINO IR (its weights in the .bin beside it)
LITERT_SUFFIXES = (".tflite",)  # LiteRT (TFLite flatbuffers), fixed shapes
# --backend auto: every engine suffix runtime knows -> the backend that runs it.
AUTO_BACKENDS = {**dict.fromkeys(PLAN_SUFFIXES, "tensorrt"), **dict.fromkeys(ONNX_SUFFIXES, "onnxruntime"),
                 **dict.fromkeys(OPENVINO_SUFFIXES, "openvino"), **dict.fromkeys(LITERT_SUFFIXES, "litert")}


def backend_for(path: str | Path, config: RunnerConfig) -> str:
    """The backend that will run ``path``: the configured one, else chosen by file suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in AUTO_BACKENDS:
        raise UserError(
            f"{path}: unknown engine type {suffix or '(no suffix)'!r}; runtime runs "
            f"{', '.join(AUTO_BACKENDS)} files or an artifact folder"
        )
    backend = config.backend
    if backend == "auto":
        return AUTO_BACKENDS[suffix]
    if ((backend == "tensorrt") != (suffix in PLAN_SUFFIXES) or (backend == "openvino" and suffix == ".ort")
            or (suffix in OPENVINO_SUFFIXES and backend != "openvino")
            or ((backend == "litert") != (suffix in LITERT_SUFFIXES))):
        raise UserError(f"backend {backend!r} cannot run {Path(path).name}; pass --backend auto")
    return backend


def make_runner(path: str | Path, config: RunnerConfig = RunnerConfig(), origin: PlanOrigin | None = None) -> Runner:
    """A not-yet-opened runner for one engine file: ``with make_runner(...) as runner:``, or ``open()``/``close()``."""
    if not Path(path).is_file():
        raise UserError(f"engine file {path} not found")
    backend = backend_for(path, config)
    if backend == "tensorrt":
        from .tensorrt import TensorRTRunner

        return TensorRTRunner(str(path), config, origin or PlanOrigin())
    if backend == "openvino":
        from .openvino import OpenVinoRunner

        return OpenVinoRunner(str(path), config)
    if backend == "litert":
        from .litert import LiteRTRunner

        return LiteRTRunner(str(path), config)
    from .ort import OrtRunner

    return OrtRunner(str(path), config)


__all__ = ["BACKENDS", "PlanOrigin", "Runner", "RunnerConfig", "TensorInfo", "backend_for", "check_feed", "make_runner"]
