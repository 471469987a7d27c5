"""ONNX reference runner (optional ``reference`` extra, the ``onnx`` package): every operator as the ONNX
specification defines it, in numpy (``onnx.reference.ReferenceEvaluator``).

No graph optimisation, no fusion, no vendor kernel: what a file means, not what an engine makes of it.
It is the arbiter when two engines disagree about one ``.onnx`` file (Polygraphy compares against a
reference runtime for the same reason), slow but small enough for the stored references:
``runtime.check ARTIFACT --backend onnx-reference``. Threads and providers do not apply (numpy's own
BLAS threads); it never runs under ``--backend auto``.
"""
from __future__ import annotations

import numpy as np

from ..backends import BY_NAME
from ..errors import BackendUnavailable, UserError, first_line
from .base import Runner, RunnerConfig, TensorInfo


def import_onnx():  # returns the onnx module (its type is only known once imported)
    try:
        import onnx
        import onnx.reference  # noqa: F401  (the evaluator is a submodule onnx does not import itself)
    except ImportError:
        raise BackendUnavailable(BY_NAME["onnx-reference"].install_hint()) from None
    return onnx


def _info(onnx, value) -> TensorInfo:  # value: onnx.ValueInfoProto
    tensor = value.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return TensorInfo(value.name, dims, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)))


class OnnxReferenceRunner(Runner):
    def __init__(self, path: str, config: RunnerConfig = RunnerConfig()) -> None:
        super().__init__(path, config)
        self.evaluator = None

    def _load(self) -> None:
        self.config.cpu_only("the ONNX reference evaluator", "numpy")
        onnx = import_onnx()
        if self.config.provider not in ("auto", "cpu"):
            raise BackendUnavailable(f"the ONNX reference evaluator runs in numpy on the CPU; "
                                     f"got --provider {self.config.provider!r}")
        try:
            model = onnx.load(self.path)
            onnx.checker.check_model(model)
            evaluator = onnx.reference.ReferenceEvaluator(model)
        except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError, and what operators raise
            if "No implementation for operator" in str(exc):  # e.g. onnx 1.23 has DequantizeLinear from opset 19 only
                raise BackendUnavailable(f"{self.path}: the ONNX reference evaluator of onnx {onnx.__version__} "
                                         f"cannot judge it ({first_line(exc)})") from None
            raise UserError(f"{self.path}: the ONNX reference evaluator cannot load it ({first_line(exc)})") from None
        initialisers = {tensor.name for tensor in model.graph.initializer}
        self.inputs = [_info(onnx, value) for value in model.graph.input if value.name not in initialisers]
        self.outputs = [_info(onnx, value) for value in model.graph.output]
        self.evaluator = evaluator

    def _unload(self) -> None:
        self.evaluator = None

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert self.evaluator is not None
        results = self.evaluator.run([info.name for info in self.outputs], feeds)
        return [np.asarray(result) for result in results]

    @property
    def description(self) -> str:
        return "onnx reference evaluator (numpy)"
