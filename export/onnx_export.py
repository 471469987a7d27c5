"""torch module -> checked, simplified ONNX file.

Exporter choice (torch 2.13): the legacy TorchScript exporter (``dynamo=False``) is the default.
Both exporters produce correct graphs for every lowering with dynamic N/H/W when the Conv shapes
come from Python ints (see export/lowering.py), but
- the dynamo exporter fails on these models with bounded ``Dim(min=, max=)`` axes (the models'
  pad-to-even arithmetic ``(-h) % 2`` yields "Cannot create Dim with inconsistent min=0,
  max=-2048"); it only works with unbounded ``Dim.DYNAMIC``, and takes ~10x longer (3-4 s
  against 0.1-0.4 s per graph), which matters when one artifact holds a dozen graphs;
- the legacy exporter records the pad-to-even as dynamic ops *only if the trace input has odd H
  and W*: a trace at even sizes skips the Python branch and bakes "no padding" into the graph,
  which then fails on odd inputs. So every trace here uses odd example sizes (``TRACE_HW``).
``exporter="dynamo"`` stays selectable for comparison.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from runtime.errors import UserError
from runtime.files import atomic_write_bytes

from .recipe import OPSET

EXPORTERS = ("legacy", "dynamo")
# Odd on purpose: see the module docstring.
TRACE_HW = (27, 33)


@dataclass
class GraphSpec:
    """What to export: example inputs and, per input/output name, which axes are dynamic."""

    input_names: list[str]
    output_names: list[str]
    example_inputs: tuple[torch.Tensor, ...]
    dynamic_axes: dict[str, dict[int, str]]


def export_onnx(
    module: nn.Module,
    spec: GraphSpec,
    path: str | Path,
    opset: int = OPSET,
    exporter: str = "legacy",
    simplify: bool = True,
    test_shapes: dict[str, Sequence[int]] | None = None,
) -> onnx.ModelProto:
    """Export, run ``onnx.checker`` (full check), simplify with onnxsim (its check asserted), save."""
    if exporter not in EXPORTERS:
        raise UserError(f"unknown exporter {exporter!r}; allowed: {', '.join(EXPORTERS)}")
    model = _export(module, spec, opset, exporter)
    onnx.checker.check_model(model, full_check=True)
    if simplify:
        shapes = test_shapes or {n: t.shape for n, t in zip(spec.input_names, spec.example_inputs, strict=True)}
        model = simplify_onnx(model, shapes)
    onnx.checker.check_model(model, full_check=True)
    atomic_write_bytes(path, model.SerializeToString())
    return model


def _export(module: nn.Module, spec: GraphSpec, opset: int, exporter: str) -> onnx.ModelProto:
    module = module.eval()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints from shapes are expected
        if exporter == "legacy":
            torch.onnx.export(
                module, spec.example_inputs, buffer, dynamo=False, opset_version=opset,
                input_names=spec.input_names, output_names=spec.output_names,
                dynamic_axes=spec.dynamic_axes, do_constant_folding=True,
            )
            return onnx.load_from_string(buffer.getvalue())
        from torch.export import Dim

        names = list(_forward_arg_names(module, len(spec.input_names)))
        dynamic_shapes = {
            arg: {axis: Dim.DYNAMIC for axis in spec.dynamic_axes.get(name, {})}
            for arg, name in zip(names, spec.input_names, strict=False)
        }
        program = torch.onnx.export(
            module, spec.example_inputs, dynamo=True, opset_version=opset,
            input_names=spec.input_names, output_names=spec.output_names,
            dynamic_shapes=dynamic_shapes, verbose=False,
        )
        return program.model_proto


def _forward_arg_names(module: nn.Module, count: int) -> list[str]:
    import inspect

    return list(inspect.signature(module.forward).parameters)[:count]


# Folding GELU's trailing "* 0.5" into the next conv's weights (onnxsim does it where the GELU feeds
# one conv) leaves x * (1 + erf(x / sqrt 2)), which ONNX Runtime's and TensorRT's GELU fusions no
# longer recognise: four element-wise passes instead of one.
SKIPPED_OPTIMIZERS = ("fuse_preceding_mul_into_conv",)


def simplify_onnx(model: onnx.ModelProto, test_shapes: dict[str, Sequence[int]]) -> onnx.ModelProto:
    """onnxsim with dynamic input shapes kept; ``test_shapes`` are only used for its own check."""
    import onnxsim

    with contextlib.redirect_stdout(io.StringIO()):  # onnxsim prints "Checking i/n..." per check
        simplified, ok = onnxsim.simplify(
            model, check_n=2, test_input_shapes={k: list(v) for k, v in test_shapes.items()}, certify=False,
            skipped_optimizers=list(SKIPPED_OPTIMIZERS),
        )
    if not ok:
        raise RuntimeError("onnxsim's check failed: the simplified graph differs from the exported one")
    return simplified


def opset_of(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
