"""TensorRT runner for serialised ``.plan`` engines (needs an NVIDIA GPU and the tensorrt wheel).

A plan only runs on the TensorRT version and GPU (compute capability) it was built with, and
TensorRT's own failure is a vague log line, so the runner compares what the manifest recorded
at build time with what is here before deserialising, and refuses a mismatch by name.
Device memory goes through a tiny ctypes binding to the CUDA runtime, so no pycuda/torch is needed;
the GPU is identified by the one probe, :func:`runtime.runners.gpu.nvidia_gpus`. A missing tensorrt,
CUDA runtime or GPU raises :class:`BackendUnavailable`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, UserError
from ..host import install_command
from .base import Runner, RunnerConfig, TensorInfo
from .gpu import gpu_at
from .plan_origin import PlanOrigin, check_plan_origin


class _Cuda:
    """The handful of CUDA runtime calls a plan needs, through ctypes."""

    H2D, D2H = 1, 2

    def __init__(self) -> None:
        names = [ctypes.util.find_library("cudart"), "libcudart.so", "libcudart.so.12", "libcudart.so.11.0",
                 "cudart64_12.dll"]
        for name in filter(None, names):
            try:
                self.lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise BackendUnavailable("TensorRT runner needs the CUDA runtime library (libcudart) and an NVIDIA GPU; "
                                     "none found")

    def _check(self, status: int, what: str) -> None:
        if status != 0:
            raise UserError(f"CUDA {what} failed with error {status} (is an NVIDIA GPU present and free?)")

    def set_device(self, index: int) -> None:
        self._check(self.lib.cudaSetDevice(ctypes.c_int(index)), f"cudaSetDevice({index})")

    def malloc(self, size: int) -> int:
        pointer = ctypes.c_void_p()
        self._check(self.lib.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(max(size, 1))), "cudaMalloc")
        return int(pointer.value or 0)

    def free(self, pointer: int) -> None:
        self.lib.cudaFree(ctypes.c_void_p(pointer))

    def copy(self, dst: int, src: int, size: int, kind: int) -> None:
        status = self.lib.cudaMemcpy(ctypes.c_void_p(dst), ctypes.c_void_p(src), ctypes.c_size_t(size), kind)
        self._check(status, "cudaMemcpy")

    def stream(self) -> int:
        stream = ctypes.c_void_p()
        self._check(self.lib.cudaStreamCreate(ctypes.byref(stream)), "cudaStreamCreate")
        return int(stream.value or 0)

    def destroy_stream(self, stream: int) -> None:
        self.lib.cudaStreamDestroy(ctypes.c_void_p(stream))

    def synchronize(self, stream: int) -> None:
        self._check(self.lib.cudaStreamSynchronize(ctypes.c_void_p(stream)), "cudaStreamSynchronize")


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailable(
            f"a .plan engine needs TensorRT and an NVIDIA GPU: {install_command('gpu')}, "
            "or run the artifact's model.onnx instead"
        ) from None
    return tensorrt


class TensorRTRunner(Runner):
    def __init__(self, path: str, config: RunnerConfig = RunnerConfig(), origin: PlanOrigin | None = None) -> None:
        super().__init__(path, config)
        self.origin = origin or PlanOrigin()
        self.gpu = "?"
        self._trt: Any = None
        self._cuda: _Cuda | None = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._stream = 0

    def _load(self) -> None:
        trt = import_tensorrt()
        index = self.config.gpu or 0
        gpu = gpu_at(index, "a .plan engine")
        check_plan_origin(self.origin, trt.__version__, gpu.name, gpu.compute_capability)
        self._cuda = _Cuda()
        self._cuda.set_device(index)  # before the plan is deserialised: TensorRT builds on the current device
        runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
        engine = runtime.deserialize_cuda_engine(Path(self.path).read_bytes())
        if engine is None:
            raise UserError(
                f"{self.path}: TensorRT {trt.__version__} cannot deserialise this plan on {gpu.name} "
                "(built by another TensorRT version or for another GPU?); rebuild it here or use model.onnx"
            )
        # The Runtime must outlive the engine it deserialised (TensorRT crashes otherwise).
        self._trt, self._runtime, self._engine, self.gpu = trt, runtime, engine, gpu.name
        self._context = engine.create_execution_context()
        self._stream = self._cuda.stream()
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            shape = tuple(d if d >= 0 else None for d in engine.get_tensor_shape(name))
            info = TensorInfo(name, shape, np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(info)
        if len(self.inputs) == 1 and len(self.inputs[0].shape) == 4:
            high = engine.get_tensor_profile_shape(self.inputs[0].name, 0)[2]
            self.max_spatial = (int(high[2]), int(high[3]))

    def _unload(self) -> None:
        if self._stream and self._cuda is not None:
            self._cuda.destroy_stream(self._stream)
        self._stream = 0
        self._context = None  # in dependency order: context, engine, runtime
        self._engine = None
        self._runtime = None

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert self._cuda is not None and self._context is not None
        cuda, context = self._cuda, self._context
        allocations = []
        try:
            for info in self.inputs:
                array = np.ascontiguousarray(feeds[info.name])
                self._check_profile(info.name, array.shape)
                context.set_input_shape(info.name, array.shape)
                pointer = cuda.malloc(array.nbytes)
                allocations.append(pointer)
                cuda.copy(pointer, array.ctypes.data, array.nbytes, cuda.H2D)
                context.set_tensor_address(info.name, pointer)
            results = []
            for info in self.outputs:
                result = np.empty(tuple(context.get_tensor_shape(info.name)), dtype=info.dtype)
                pointer = cuda.malloc(result.nbytes)
                allocations.append(pointer)
                context.set_tensor_address(info.name, pointer)
                results.append((result, pointer))
            if not context.execute_async_v3(self._stream):
                raise UserError(f"{self.path}: TensorRT execution failed")
            cuda.synchronize(self._stream)
            for result, pointer in results:
                cuda.copy(result.ctypes.data, pointer, result.nbytes, cuda.D2H)
            return [result for result, _ in results]
        finally:
            for pointer in allocations:
                cuda.free(pointer)

    def _check_profile(self, name: str, shape: tuple[int, ...]) -> None:
        low, _, high = self._engine.get_tensor_profile_shape(name, 0)
        if any(s < lo or s > hi for s, lo, hi in zip(shape, low, high, strict=True)):
            raise UserError(
                f"{self.path}: input {name} shape {tuple(shape)} is outside the plan's optimisation profile "
                f"{tuple(low)}..{tuple(high)}; use a smaller --tile or rebuild the plan with a larger profile"
            )

    @property
    def description(self) -> str:
        version = self._trt.__version__ if self._trt else "?"
        return f"tensorrt {version} on {self.gpu}"
