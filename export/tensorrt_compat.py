"""GPU-free check that TensorRT's ONNX parser will accept a graph, naming the offending node.

Rules per TensorRT version come from onnx-tensorrt's ``docs/operators.md`` (the operator support
matrix shipped with each parser release):
- "8.4": the matrix of TensorRT 8.4 (opset <= 13 documented; ``Mod``, ``Reciprocal``, ``NonZero``,
  ``OneHot`` ... unsupported; Conv/ConvTranspose weights "must be an initializer").
- "8.5": the matrix of TensorRT 8.5 (opset <= 17; adds ``Mod``, ``Reciprocal``, ``Trilu``, ...;
  the Conv weight restriction is gone: computed weights need TensorRT >= 8.5).
- "10": 8.5 plus what later matrices add that these graphs may use (``LayerNormalization``,
  ``IsInf``, ``GroupNormalization``, cubic ``Resize``). Cubic Resize is listed from the 8.6
  matrix on; the 8.4 and 8.5 matrices allow only nearest and linear.
Every rule set also applies the matrix's restrictions that matter for these graphs: quantised
tensors symmetric (``x_zero_point`` / ``y_zero_point`` zero), ``Slice``/``Squeeze`` axes
constant, and static channel counts at graph inputs and Conv weights.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from runtime.errors import UserError

_COMMON = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu
Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GRU HardSigmoid Identity If ImageScaler
InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool
MatMul Max MaxPool Mean Min Mul Neg NonMaxSuppression Not Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
RandomUniform RandomUniformLike Range ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean
ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN Round ScaledTanh Scan
Scatter ScatterElements ScatterND Selu Shape Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign
SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample
Where Xor
""".split())
_ADDED_8_5 = frozenset("""
GridSample HardSwish MeanVarianceNormalization Mod NonZero OneHot RandomNormal RandomNormalLike Reciprocal
RoiAlign Shrink Trilu
""".split())
_ADDED_10 = frozenset("LayerNormalization IsInf GroupNormalization".split())


@dataclass(frozen=True)
class Rules:
    version: str
    ops: frozenset[str]
    constant_conv_weights: bool
    resize_modes: frozenset[str]


RULES = {
    "8.4": Rules("8.4", _COMMON, True, frozenset({"nearest", "linear"})),
    "8.5": Rules("8.5", _COMMON | _ADDED_8_5, False, frozenset({"nearest", "linear"})),
    "10": Rules("10", _COMMON | _ADDED_8_5 | _ADDED_10, False, frozenset({"nearest", "linear", "cubic"})),
}


@dataclass
class Problem:
    node: str
    op: str
    reason: str

    def __str__(self) -> str:
        return f"node {self.node!r} ({self.op}): {self.reason}"


@dataclass
class CompatReport:
    rules: str
    problems: list[Problem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if not self.problems:
            return f"TensorRT {self.rules} rules: compatible"
        return f"TensorRT {self.rules} rules: " + "; ".join(map(str, self.problems))


def check_tensorrt(model: onnx.ModelProto | str | Path, rules: str = "10") -> CompatReport:
    """Every problem TensorRT's ONNX parser (``rules`` version) would have with ``model``."""
    if rules not in RULES:
        raise UserError(f"unknown TensorRT rule set {rules!r}; known: {', '.join(RULES)}")
    rule = RULES[rules]
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            value = onnx.helper.get_attribute_value(node.attribute[0])
            is_tensor = isinstance(value, onnx.TensorProto)
            constants[node.output[0]] = numpy_helper.to_array(value) if is_tensor else np.asarray(value)
    shapes = _static_shapes(graph)
    report = CompatReport(rules)

    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and not dims[1].HasField("dim_value"):
            report.problems.append(Problem(value.name, "input", "channel dimension must be static"))

    for node in graph.node:
        name = node.name or node.output[0]

        def problem(reason: str, name: str = name, op_type: str = node.op_type) -> None:
            report.problems.append(Problem(name, op_type, reason))

        if node.domain not in ("", "ai.onnx"):
            problem(f"custom domain {node.domain!r} needs a TensorRT plugin")
            continue
        if node.op_type not in rule.ops:
            problem(f"op not supported by TensorRT {rule.version}'s ONNX parser")
            continue
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = node.input[1]
            if weight not in constants:
                if rule.constant_conv_weights:
                    problem(f"weight {weight!r} is computed in the graph; TensorRT {rule.version} needs an "
                            "initializer (computed Conv weights need TensorRT >= 8.5)")
                elif not _is_static(shapes.get(weight)):
                    problem(f"computed weight {weight!r} must have a static shape, got {shapes.get(weight)}")
        elif node.op_type == "Resize":
            mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "nearest")
            if mode not in rule.resize_modes:
                problem(f"Resize mode {mode!r} unsupported (allowed: {', '.join(sorted(rule.resize_modes))})")
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero = constants.get(node.input[2])
            if zero is None or np.any(zero != 0) or zero.dtype != np.int8:
                got = "computed" if zero is None else f"{zero.dtype} {'zero' if not np.any(zero) else 'non-zero'}"
                problem("zero point must be a constant int8 zero (TensorRT quantisation is int8 and symmetric); "
                        f"got {got}")
        elif node.op_type in ("Slice", "Squeeze", "Unsqueeze"):
            axes_index = 3 if node.op_type == "Slice" else 1
            if len(node.input) > axes_index and node.input[axes_index] and node.input[axes_index] not in constants:
                problem("axes must be constant")
    return report


def _static_shapes(graph: onnx.GraphProto) -> dict[str, list[int | str | None]]:
    shapes = {}
    for value in [*graph.value_info, *graph.input, *graph.output]:
        t = value.type.tensor_type
        if t.HasField("shape"):
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                  for d in t.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _is_static(shape: list[int | str | None] | None) -> bool:
    return shape is not None and all(isinstance(d, int) and d > 0 for d in shape)
