"""Each kind of engine in the artifact folder, written and checked against the PyTorch reference.

Every builder writes one file into the (staging) artifact folder and returns its manifest
``Variant`` with the parity measured on the reference inputs it can run.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime import catalogue, isa_proof
from runtime.backends import openvino_weights
from runtime.errors import BackendUnavailable, first_line
from runtime.manifest import Parity, Variant
from runtime.runners import RunnerConfig
from runtime.runners.openvino import openvino_hint
from runtime.runners.plan_origin import PlanOrigin

from .lowering import get_strategy, is_dynamic, lower
from .onnx_export import TRACE_HW, GraphSpec, export_onnx, opset_of
from .parity import EXPORT_RUNNER, check_onnx, engine_parity
from .precision import CPU_INT8_RECIPES, to_fp16, to_int8
from .recipe import OPSET, TENSORRT_MAX_BATCH


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
    opset: int = OPSET,
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


def isa_checked(path: Path, backend: str, inputs: list[np.ndarray], outputs: list[np.ndarray], batch: int | None,
                config: RunnerConfig, native: Parity) -> tuple[dict[str, object], str | None]:
    """``notes["isa_proof"]`` for an INT8 engine that passed on this CPU, and why it fails at a lower ISA level
    (runtime/isa_proof.py), or None when it holds at every level reached.

    INT8 only: its integer kernels change with the ISA (u8 x s8 pairs saturate without VNNI). fp16 files compute
    in fp32 on x86 CPUs after an exact conversion, and bf16 runs only where the CPU has it, so both are proven on
    the CPU that exports them (and by runtime.check on each device); emulating fp16 XNNPACK under qemu took 10 min
    per file."""
    proofs = isa_proof.prove_levels(path, backend, inputs, outputs, native.tolerance, batch, config)
    return isa_proof.record(native, proofs, backend), isa_proof.failure(proofs)


def reduced_precision_variant(base: Variant, folder: Path, precision: str, refs: ReferenceSet
                              ) -> tuple[Variant, str | None]:
    """fp16 or int8 from the fp32 variant ``base``; returns (variant, why it was left out or None). INT8 tries
    :data:`CPU_INT8_RECIPES` in order and keeps the first that passes its floor here and at every lower ISA level
    reached; a variant that none makes pass is deleted and returned with the reason."""
    path = folder / catalogue.reduced_onnx_file(precision)
    inputs, outputs = refs.usable(base.batch, base.fixed_input_shape)
    rejected: dict[str, str] = {}
    for recipe in ("fp16",) if precision == "fp16" else CPU_INT8_RECIPES:
        notes = dict(base.notes)
        if precision == "fp16":
            to_fp16(folder / base.file, path)
            notes["conversion"] = "onnxruntime.transformers.float16 (keep_io_types: float32 input/output)"
        else:
            notes["quantisation"] = to_int8(folder / base.file, path, weights=recipe)
        parity = check_onnx(path, inputs, outputs, fixed_batch=base.batch, precision=precision)
        why = None if parity else (f"PSNR {parity.psnr_db:.1f} dB below the floor {parity.tolerance['min_psnr_db']} "
                                   "dB on this CPU")
        if parity and precision == "int8":
            notes["isa_proof"], why = isa_checked(path, "onnxruntime", inputs, outputs, base.batch, EXPORT_RUNNER,
                                                  parity)
        elif parity:
            notes["isa_proof"] = isa_proof.record(parity, [], "onnxruntime")  # fp16: this CPU's level only
        variant = Variant(
            file=path.name, kind="onnx", strategy=base.strategy, precision=precision,
            dynamic_batch=base.dynamic_batch, dynamic_spatial=base.dynamic_spatial,
            fixed_input_shape=base.fixed_input_shape, opset=base.opset, parity=parity, batch=base.batch,
            notes=notes, source=base.file,
        )
        if why is None:
            if rejected:
                variant.notes["rejected_recipes"] = rejected
            return variant, None
        rejected[recipe] = why
    path.unlink()
    return variant, "; ".join(f"{recipe}: {why}" for recipe, why in rejected.items()) + " (file removed)"


def ort_variant(base: Variant, folder: Path, refs: ReferenceSet) -> Variant:
    from .ort_format import to_ort

    path = folder / catalogue.ort_file(base.file)
    settings = to_ort(folder / base.file, path, folder / catalogue.required_operators_file(path.name))
    inputs, outputs = refs.usable(base.batch, base.fixed_input_shape)
    parity = check_onnx(path, inputs, outputs, fixed_batch=base.batch)
    return Variant(
        file=path.name, kind="ort", strategy=base.strategy, precision="fp32", dynamic_batch=base.dynamic_batch,
        dynamic_spatial=base.dynamic_spatial, fixed_input_shape=base.fixed_input_shape, opset=base.opset,
        parity=parity, batch=base.batch, notes={**base.notes, **settings}, source=base.file,
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
        return [], {catalogue.plan_file(p): reason for p in precisions}
    report = check_tensorrt(folder / base.file)
    if not report:
        return [], {catalogue.plan_file(p): str(report) for p in precisions}
    variants, skipped = [], {}
    batch = base.batch or 1
    profile = Profile.for_batch(batch, TENSORRT_MAX_BATCH if base.dynamic_batch else None)
    for precision in precisions:
        source = folder / base.file
        with tempfile.TemporaryDirectory() as tmp:
            if precision == "int8":
                source = Path(tmp) / "int8_symmetric.onnx"
                to_int8(folder / base.file, source, symmetric=True)
            plan = folder / catalogue.plan_file(precision)
            try:
                notes = build_plan(source, plan, precision, profile, timing_cache=folder / "tensorrt.cache")
            except RuntimeError as exc:
                skipped[plan.name] = first_line(exc)
                continue
        try:
            parity = engine_parity(plan, *refs.usable(base.batch, base.fixed_input_shape),
                                   catalogue.tolerance(precision), base.batch, RunnerConfig(backend="tensorrt"),
                                   PlanOrigin.from_notes(notes))
        except BackendUnavailable as exc:  # built, but not runnable here (no CUDA runtime): not proven
            plan.unlink()
            skipped[plan.name] = str(exc).split(";")[0]
            continue
        variants.append(Variant(
            file=plan.name, kind="tensorrt", strategy=base.strategy, precision=precision,
            dynamic_batch=base.dynamic_batch, dynamic_spatial=True, opset=base.opset, batch=base.batch, notes=notes,
            parity=parity, source=base.file,
        ))
    return variants, skipped


def openvino_variants(
    base: Variant, folder: Path, precisions: tuple[str, ...], refs: ReferenceSet, keep_float: tuple[str, ...] = ()
) -> tuple[list[Variant], dict[str, str]]:
    """OpenVINO IR of ``base`` (``runtime.catalogue.openvino_file``): fp32, bf16 (the same graph with bf16
    inference stored in it), int8 by NNCF; each run on the references by runtime's OpenVINO runner on
    this CPU (fp32 and int8 with float parts in f32, bf16 strictly in bf16) for its parity; the modules
    ``keep_float`` stay float in the int8 IR. INT8 tries every weight grid of ``WEIGHT_RECIPES`` at every ISA level
    from AVX2 up to this CPU's and keeps the one whose worst level is best (8-bit weights that pass only by a margin
    where products saturate lose to 7-bit ones that hold everywhere). Skipped, with the reason, where openvino
    (and nncf for int8) is not installed, this CPU cannot run bf16, or no INT8 recipe holds its floor everywhere."""
    from .openvino_ir import WEIGHT_RECIPES, openvino_unavailable, to_openvino_fp32, to_openvino_int8

    variants, skipped = [], {}
    inputs, outputs = refs.usable(base.batch, base.fixed_input_shape)
    for precision in precisions:
        path = folder / catalogue.openvino_file(precision)
        reason = openvino_unavailable(precision)
        if reason:
            skipped[path.name] = reason
            continue
        tolerance = catalogue.tolerance(precision)
        # The bf16 IR is proven strictly in bf16 (a CPU without it skips it), the others as the runtime runs them.
        hint = catalogue.OPENVINO_HINTS["bf16"] if precision == "bf16" else openvino_hint(precision)
        config = RunnerConfig(backend="openvino", provider="CPU", precision=hint, strict=True)
        candidates, rejected = [], {}
        for recipe in WEIGHT_RECIPES if precision == "int8" else (precision,):
            target = path if precision != "int8" else path.with_name(f".{recipe}.{path.name}")
            if precision == "int8":
                converted = to_openvino_int8(folder / base.file, target, keep_float, recipe)
            else:
                converted = to_openvino_fp32(folder / base.file, target, precision)
            notes = {**base.notes, **converted, "weights_file": openvino_weights(path.name)}
            try:
                parity = engine_parity(target, inputs, outputs, tolerance, base.batch, config)
            except BackendUnavailable as exc:  # strict: this CPU has no bf16, so the variant cannot be proven here
                rejected[recipe] = first_line(exc)
                _remove_ir(target)
                continue
            if precision != "int8":
                notes["isa_proof"] = isa_proof.record(parity, [], "openvino")  # proven at this CPU's level only
                candidates.append((parity.psnr_db, recipe, target, notes, parity))
                continue
            why = None if parity else f"PSNR {parity.psnr_db:.1f} dB below {tolerance['min_psnr_db']} dB here"
            if parity:
                notes["isa_proof"], why = isa_checked(target, "openvino", inputs, outputs, base.batch, config, parity)
            if why is None:
                candidates.append((worst_psnr(notes["isa_proof"]), recipe, target, notes, parity))
            else:
                rejected[recipe] = why
                _remove_ir(target)
        if not candidates:
            skipped[path.name] = "; ".join(f"{r} weights: {w}" if precision == "int8" else w
                                           for r, w in rejected.items())
            continue
        _, recipe, target, notes, parity = max(candidates, key=lambda c: c[0])
        for _, _, other, _, _ in candidates:
            if other != target:
                _remove_ir(other)
        if target != path:
            os.replace(target, path)
            os.replace(folder / openvino_weights(target.name), folder / openvino_weights(path.name))
        if precision == "int8":
            notes["recipes_tried"] = {**rejected, **{c[1]: f"passes; worst level {c[0]:.1f} dB" for c in candidates}}
        variants.append(Variant(
            file=path.name, kind="openvino", strategy=base.strategy, precision=precision,
            dynamic_batch=base.dynamic_batch, dynamic_spatial=base.dynamic_spatial,
            fixed_input_shape=base.fixed_input_shape, opset=base.opset, batch=base.batch, notes=notes,
            parity=parity, source=base.file,
        ))
    return variants, skipped


def worst_psnr(proof: dict) -> float:
    """The lowest PSNR over the ISA levels an ``isa_proof`` record proved (identical outputs count as infinite)."""
    values = [level.get("psnr_db") for level in proof["levels"].values() if level.get("passed")]
    return min((float("inf") if v is None else v for v in values), default=float("-inf"))


def _remove_ir(xml: Path) -> None:
    for file in (xml, xml.with_name(openvino_weights(xml.name))):
        file.unlink(missing_ok=True)
