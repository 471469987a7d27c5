"""LiteRT runner (optional ``litert-runtime`` extra, ``ai-edge-litert``): runs ``.tflite`` files with XNNPACK.

The file's ``serving_default`` signature names the inputs and outputs. LiteRT files have fixed
shapes, so every input is checked against its full shape (batch included) before anything runs.
A fully integer file (int8/uint8 inputs or outputs) is fed and read in float32 like every other
engine: the runner quantises each float input with that tensor's own scale and zero point
(round, clip to the integer range) and dequantises each integer output, so callers never see the
integer grid. An integer input that carries no scale is refused when the file is opened.
"""
from __future__ import annotations

import numpy as np

from ..backends import BY_NAME
from ..errors import BackendUnavailable, UserError, first_line
from ..native_output import library_output_hidden
from .base import Runner, RunnerConfig, TensorInfo

SIGNATURE = "serving_default"
_INTEGER = (np.dtype(np.int8), np.dtype(np.uint8))


def import_litert():  # returns ai_edge_litert.interpreter (its type is only known once imported)
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        raise BackendUnavailable(BY_NAME["litert"].install_hint()) from None
    return interpreter


class _Quantised:
    """One tensor's affine integer grid: real = (q - zero_point) * scale."""

    def __init__(self, name: str, detail: dict) -> None:
        self.dtype = np.dtype(detail["dtype"])
        scale, zero = detail.get("quantization", (0.0, 0))
        if self.dtype in _INTEGER and not scale:
            raise UserError(f"tensor {name!r} is {self.dtype} without a quantisation scale: "
                            "the runner cannot map float32 pixels onto it")
        self.scale, self.zero = float(scale), int(zero)

    @property
    def integer(self) -> bool:
        return self.dtype in _INTEGER

    def quantise(self, array: np.ndarray) -> np.ndarray:
        if not self.integer:
            return array
        info = np.iinfo(self.dtype)
        q = np.rint(array / np.float32(self.scale)) + self.zero
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantise(self, array: np.ndarray) -> np.ndarray:
        if not self.integer:
            return np.array(array)
        return ((array.astype(np.float32) - np.float32(self.zero)) * np.float32(self.scale)).astype(np.float32)


class LiteRTRunner(Runner):
    def __init__(self, path: str, config: RunnerConfig = RunnerConfig()) -> None:
        super().__init__(path, config)
        self.interpreter = None
        self.signature = None
        self.grids: dict[str, _Quantised] = {}
        self.integer = False

    def _load(self) -> None:
        self.config.cpu_only("LiteRT", "XNNPACK, as on Android")
        litert = import_litert()
        if self.config.provider not in ("auto", "cpu", "xnnpack"):
            raise BackendUnavailable(f"LiteRT runs here on the CPU with XNNPACK; "
                                     f"got --provider {self.config.provider!r}")
        try:
            with library_output_hidden():  # "INFO: Created TensorFlow Lite XNNPACK delegate", from C++
                interpreter = litert.Interpreter(model_path=self.path, num_threads=self.config.threads or None)
                interpreter.allocate_tensors()  # applies the XNNPACK delegate now, not at the first run
            signatures = interpreter.get_signature_list()
            if SIGNATURE not in signatures:
                raise ValueError(f"no {SIGNATURE!r} signature (has {', '.join(signatures) or 'none'})")
            signature = interpreter.get_signature_runner(SIGNATURE)
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"{self.path}: LiteRT cannot load it ({first_line(exc)})") from None
        self.interpreter, self.signature = interpreter, signature
        self.inputs = [self._info(name, detail) for name, detail in signature.get_input_details().items()]
        self.outputs = [self._info(name, detail) for name, detail in signature.get_output_details().items()]
        self.integer = any(grid.integer for grid in self.grids.values())

    def _info(self, name: str, detail: dict) -> TensorInfo:
        grid = _Quantised(name, detail)
        self.grids[name] = grid
        dtype = np.dtype(np.float32) if grid.integer else grid.dtype
        return TensorInfo(name, tuple(int(d) for d in detail["shape"]), dtype)

    def _unload(self) -> None:
        self.signature = None
        self.interpreter = None
        self.grids = {}

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert self.signature is not None
        results = self.signature(**{name: self.grids[name].quantise(array) for name, array in feeds.items()})
        # Copies: the interpreter reuses its output buffers on the next call.
        return [self.grids[info.name].dequantise(results[info.name]) for info in self.outputs]

    @property
    def description(self) -> str:
        threads = f", {self.config.threads} threads" if self.config.threads else ""
        grid = " int8 I/O" if self.integer else ""
        return f"litert XNNPACK{grid}{threads}"
