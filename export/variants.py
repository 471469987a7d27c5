"""Each kind of engine in the artifact folder, written and checked against the PyTorch reference.

Every builder writes one file into the (staging) artifact folder and returns its manifest
``Variant`` with the parity measured on the reference inputs it can run.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime.errors import UserError
from runtime.manifest import Parity, Variant
from runtime.parity import run_in_chunks
from runtime.runners import PlanOrigin, RunnerConfig, make_runner

from .lowering import get_strategy, is_dynamic, lower
from .onnx_export import TRACE_HW, GraphSpec, export_onnx, opset_of
from .parity import FP32_MAX_ABS_DIFF, check_onnx, compare
from .precision import MIN_PSNR_DB, to_fp16, to_int8


@dataclass
class ReferenceSet:
    """Reference inputs (float32 NCHW) and the PyTorch outputs for them, in manifest order."""

    inputs: list[np.ndarray]
    outputs: list[np.ndarray]

    def usable(
        self, batch: int | None = None, shape: list[int] | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The pairs a graph with a fixed ``batch`` or a fixed input ``shape`` can run."""
        pairs = [
            (x, y) for x, y in zip(self.inputs, self.outputs, strict=True)
            if (batch is None or x.shape[0] % batch == 0) and (shape is None or list(x.shape) == list(shape))
        ]
        return [x for x, _ in pairs], [y for _, y in pairs]


def model_spec(dynamic_batch: bool, batch: int, fixed_hw: tuple[int, int] | None = None) -> GraphSpec:
    """Input/output names and dynamic axes of a whole-model graph."""
    axes: dict[int, str] = {} if fixed_hw else {2: "H", 3: "W"}
    if dynamic_batch:
        axes = {0: "N", **axes}
    out_axes = {k: (v if v == "N" else f"{v}_out") for k, v in axes.items()}
    example = torch.rand(batch, 3, *(fixed_hw or TRACE_HW))
    return GraphSpec(["input"], ["output"], (example,), {"input": axes, "output": out_axes})


def onnx_variant(
    model: nn.Module,
    strategy: str,
    path: Path,
    refs: ReferenceSet,
    batch: int = 1,
    fixed_hw: tuple[int, int] | None = None,
    opset: int = 17,
    exporter: str = "legacy",
) -> Variant:
    """fp32 ONNX of ``model`` lowered with ``strategy``: dynamic N/H/W where the strategy allows,
    or a fixed (batch, 3, *fixed_hw) input."""
    spec = get_strategy(strategy)
    dynamic = is_dynamic(model)
    dynamic_batch = (spec.dynamic_batch or not dynamic) and fixed_hw is None
    graph_batch = 1 if dynamic_batch else batch
    onnx_model = export_onnx(lower(model, strategy, graph_batch), model_spec(dynamic_batch, graph_batch, fixed_hw),
                             path, opset=opset, exporter=exporter)
    fixed_shape = [graph_batch, 3, *fixed_hw] if fixed_hw else None
    inputs, outputs = refs.usable(None if dynamic_batch else graph_batch, fixed_shape)
    parity = check_onnx(path, inputs, outputs, fixed_batch=None if dynamic_batch else graph_batch)
    return Variant(
        file=path.name, kind="onnx", strategy=strategy if dynamic else "static", precision="fp32",
        dynamic_batch=dynamic_batch, dynamic_spatial=fixed_hw is None, fixed_input_shape=fixed_shape,
        opset=opset_of(onnx_model), parity=parity, batch=None if dynamic_batch else graph_batch,
        notes={"exporter": exporter, "constant_conv_weights": spec.constant_conv_weights or not dynamic},
    )


def reduced_precision_variant(base: Variant, folder: Path, precision: str, refs: ReferenceSet) -> tuple[Variant, bool]:
    """fp16 or int8 from the fp32 variant ``base``; returns (variant, kept?). A variant below the
    PSNR floor is deleted and returned with ``kept`` False so the caller can report why."""
    path = folder / f"{Path(base.file).stem}.{precision}.onnx"
    if base.file == "model.onnx":
        path = folder / f"model.{precision}.onnx"
    notes = dict(base.notes)
    if precision == "fp16":
        to_fp16(folder / base.file, path)
        notes["conversion"] = "onnxruntime.transformers.float16 (keep_io_types: float32 input/output)"
    else:
        notes["quantisation"] = to_int8(folder / base.file, path)
    inputs, outputs = refs.usable(base.batch, base.fixed_input_shape)
    parity = check_onnx(path, inputs, outputs, fixed_batch=base.batch, max_abs_diff=None,
                        min_psnr_db=MIN_PSNR_DB[precision])
    variant = Variant(
        file=path.name, kind="onnx", strategy=base.strategy, precision=precision, dynamic_batch=base.dynamic_batch,
        dynamic_spatial=base.dynamic_spatial, fixed_input_shape=base.fixed_input_shape, opset=base.opset,
        parity=parity, batch=base.batch, notes=notes,
    )
    if not parity:
        path.unlink()
    return variant, bool(parity)


def ort_variant(base: Variant, folder: Path, refs: ReferenceSet) -> Variant:
    from .ort_format import to_ort

    path = folder / "model.ort" if base.file == "model.onnx" else folder / f"{Path(base.file).stem}.ort"
    settings = to_ort(folder / base.file, path)
    inputs, outputs = refs.usable(base.batch, base.fixed_input_shape)
    parity = check_onnx(path, inputs, outputs, fixed_batch=base.batch)
    return Variant(
        file=path.name, kind="ort", strategy=base.strategy, precision="fp32", dynamic_batch=base.dynamic_batch,
        dynamic_spatial=base.dynamic_spatial, fixed_input_shape=base.fixed_input_shape, opset=base.opset,
        parity=parity, batch=base.batch, notes={**base.notes, **settings, "source": base.file},
    )


def tensorrt_variants(
    base: Variant, folder: Path, precisions: tuple[str, ...], refs: ReferenceSet
) -> tuple[list[Variant], dict[str, str]]:
    """TensorRT plans from ``base`` (skipped, with the reason, where tensorrt or a GPU is absent),
    each run on the references through runtime's TensorRT runner for its parity."""
    from .tensorrt_build import Profile, build_plan, tensorrt_unavailable
    from .tensorrt_compat import check_tensorrt

    reason = tensorrt_unavailable()
    if reason:
        return [], {f"model.{p}.plan": reason for p in precisions}
    report = check_tensorrt(folder / base.file)
    if not report:
        return [], {f"model.{p}.plan": str(report) for p in precisions}
    variants, skipped = [], {}
    batch = base.batch or 1
    max_batch = 4 if base.dynamic_batch else batch
    profile = Profile(min=(batch, 3, 16, 16), opt=(batch, 3, 360, 640), max=(max_batch, 3, 1080, 1920))
    for precision in precisions:
        source = folder / base.file
        with tempfile.TemporaryDirectory() as tmp:
            if precision == "int8":
                source = Path(tmp) / "int8_symmetric.onnx"
                to_int8(folder / base.file, source, symmetric=True)
            plan = folder / f"model.{precision}.plan"
            try:
                notes = build_plan(source, plan, precision, profile, timing_cache=folder / "tensorrt.cache")
            except RuntimeError as exc:
                skipped[plan.name] = str(exc).splitlines()[0]
                continue
        tolerance = {"max_abs_diff": FP32_MAX_ABS_DIFF} if precision == "fp32" else {
            "max_abs_diff": None, "min_psnr_db": MIN_PSNR_DB[precision]}
        variants.append(Variant(
            file=plan.name, kind="tensorrt", strategy=base.strategy, precision=precision,
            dynamic_batch=base.dynamic_batch, dynamic_spatial=True, opset=base.opset, batch=base.batch, notes=notes,
            parity=_runner_parity(plan, RunnerConfig(backend="tensorrt"), PlanOrigin.from_notes(notes),
                                  refs.usable(base.batch, base.fixed_input_shape), tolerance),
        ))
    return variants, skipped


def openvino_variants(
    base: Variant, folder: Path, precisions: tuple[str, ...], refs: ReferenceSet
) -> tuple[list[Variant], dict[str, str]]:
    """OpenVINO IR of ``base``: fp32 ``model.openvino.xml``, bf16 ``model.openvino.bf16.xml`` (the same
    graph with bf16 inference stored in it), int8 by NNCF ``model.openvino.int8.xml``; each run on the
    references by runtime's OpenVINO runner on this CPU (fp32 and int8 with float parts in f32) for
    its parity. Skipped, with the reason, where openvino (and nncf for int8) is not installed or
    this CPU cannot run bf16."""
    from .openvino_ir import openvino_unavailable, to_openvino_fp32, to_openvino_int8

    variants, skipped = [], {}
    for precision in precisions:
        path = folder / ("model.openvino.xml" if precision == "fp32" else f"model.openvino.{precision}.xml")
        reason = openvino_unavailable(precision)
        if reason:
            skipped[path.name] = reason
            continue
        if precision == "int8":
            converted = to_openvino_int8(folder / base.file, path)
        else:
            converted = to_openvino_fp32(folder / base.file, path, precision)
        notes = {**base.notes, **converted, "source": base.file, "weights_file": path.with_suffix(".bin").name}
        tolerance = {"max_abs_diff": FP32_MAX_ABS_DIFF} if precision == "fp32" else {
            "max_abs_diff": None, "min_psnr_db": MIN_PSNR_DB[precision]}
        config = RunnerConfig(backend="openvino", provider="CPU", precision="bf16" if precision == "bf16" else "f32",
                              strict=True)
        try:
            parity = _runner_parity(path, config, None, refs.usable(base.batch, base.fixed_input_shape), tolerance,
                                    base.batch)
        except UserError as exc:  # strict: this CPU has no bf16, so the variant cannot be proven here
            for file in (path, path.with_suffix(".bin")):
                file.unlink()
            skipped[path.name] = str(exc).split(";")[0]
            continue
        variants.append(Variant(
            file=path.name, kind="openvino", strategy=base.strategy, precision=precision,
            dynamic_batch=base.dynamic_batch, dynamic_spatial=base.dynamic_spatial,
            fixed_input_shape=base.fixed_input_shape, opset=base.opset, batch=base.batch, notes=notes, parity=parity,
        ))
    return variants, skipped


def _runner_parity(path: Path, config: RunnerConfig, origin: PlanOrigin | None,
                   pairs: tuple[list[np.ndarray], list[np.ndarray]], tolerance: dict,
                   batch: int | None = None) -> Parity:
    """Parity of an engine run by the runtime's own runner (batches larger than a fixed ``batch`` in chunks)."""
    inputs, references = pairs
    with make_runner(path, config, origin) as runner:
        outputs = [run_in_chunks(runner.infer, x, batch) for x in inputs]
    return compare(outputs, references, **tolerance)
