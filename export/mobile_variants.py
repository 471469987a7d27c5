"""The phone deliverables of ONNX Runtime Mobile and Core ML, all from one lowered fixed-shape module.

:func:`mobile_graph` is the one place that says which module they come from (export/mobile.py's
``mobile`` lowering at a fixed even LR shape). From it :func:`mobile_variants` writes

- ``model.mobile.<N>x<H>x<W>.onnx``: the fixed-shape ONNX, checked against the PyTorch references;
- ``model.mobile.<N>x<H>x<W>.ort`` + ``.required_operators.config``: ORT Mobile's format and the ops a
  reduced-size ONNX Runtime build needs for it;
- ``mobile_usability.json`` / ``.txt``: ONNX Runtime's mobile-usability check (NNAPI and Core ML
  partitions, nodes per EP, ops left unsupported) of ``compare`` (model.onnx, model.stacked.onnx) and
  the mobile ONNX;
- ``model.mobile.<N>x<H>x<W>.mlpackage``: Core ML, where coremltools works (export/coreml.py); else
  skipped with a one-line reason. Core ML prediction needs macOS: the package has no parity here.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from runtime import catalogue
from runtime.errors import UserError, first_line
from runtime.manifest import Variant

from .mobile import NOTE as MOBILE_NOTE
from .mobile import mobile_module
from .mobile_usability import GraphUsability, usability_report, write_report
from .onnx_export import export_onnx, opset_of
from .parity import check_onnx
from .recipe import FOCUS_HW, OPSET
from .variants import ReferenceSet, model_spec, ort_variant

MOBILE_HW = FOCUS_HW  # the default fixed LR shape (H, W) of the mobile files: even, 640x360


def mobile_graph(model: nn.Module, shape: tuple[int, int]) -> tuple[str, nn.Module]:
    """(lowering name, the lowered module at the fixed LR ``shape``) every file here is made from;
    ``model`` is the network as trained (unfused)."""
    return "mobile", mobile_module(model, shape)


@dataclass
class MobileOutputs:
    variants: list[Variant] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> one-line reason
    notes: dict = field(default_factory=dict)  # for the manifest's notes: "mobile_usability", "coreml"


def usability_summary(graph: GraphUsability) -> dict[str, dict]:
    """Per EP: partitions and nodes taken (caveats checked) and what blocks the rest, for the manifest."""
    return {ep.ep: {"partitions": ep.partitions_checked, "nodes": f"{ep.supported_nodes_checked}/{ep.nodes}",
                    "unsupported_ops": ep.unsupported_ops, "caveat_violations": ep.caveat_violations,
                    "dynamic_shape_nodes": ep.unsupported_dynamic_shape, "rank_nodes": ep.unsupported_rank}
            for ep in graph.eps}


def mobile_variants(
    model: nn.Module,
    folder: Path,
    refs: ReferenceSet,
    shape: tuple[int, int] = MOBILE_HW,
    compare: Sequence[str] = (),
    coreml: bool = True,
    opset: int = OPSET,
    exporter: str = "legacy",
) -> MobileOutputs:
    """Write the mobile ONNX, its ``.ort`` with the ops config, the usability report of ``compare``
    (artifact files) plus the mobile ONNX, and (``coreml``) the Core ML package, into ``folder``."""
    out = MobileOutputs()
    try:
        lowering, module = mobile_graph(model, shape)
    except UserError as exc:  # not a DyConvSR, or an odd shape: nothing mobile to write
        out.skipped[catalogue.fixed_shape_file("mobile", 1, *shape)] = str(exc)
        return out
    source = fixed_onnx_variant(module, lowering, folder, refs, shape, opset, exporter)
    out.variants.append(source)
    ort = ort_variant(source, folder, refs)
    out.variants.append(ort)

    report = usability_report([folder / f for f in (*compare, source.file)])
    write_report(report, folder / catalogue.MOBILE_USABILITY_JSON, folder / catalogue.MOBILE_USABILITY_TEXT)
    ort.notes["usability"] = usability_summary(report.graph(source.file))
    out.notes["mobile_usability"] = {
        "json": catalogue.MOBILE_USABILITY_JSON, "text": catalogue.MOBILE_USABILITY_TEXT,
        "tool": "onnxruntime.tools.mobile_helpers.usability_checker (partitions with checkable caveats enforced)",
        "graphs": {g.file: {ep.ep: [ep.partitions_checked, f"{ep.supported_nodes_checked}/{ep.nodes}"]
                            for ep in g.eps} for g in report.graphs},
    }

    package = catalogue.coreml_file(source.file)
    if coreml:
        from .coreml import coreml_unavailable, to_coreml

        reason = coreml_unavailable()
        if reason:
            out.skipped[package] = reason
        else:
            try:
                notes = to_coreml(module, shape, int(model.scale), folder / package)
                out.notes["coreml"] = {"file": package, "source": source.file, "lowering": lowering, **notes}
            except Exception as exc:  # a conversion failure skips the package; the other files stand
                out.skipped[package] = f"Core ML conversion failed: {first_line(exc)}"
    return out


def fixed_onnx_variant(module: nn.Module, lowering: str, folder: Path, refs: ReferenceSet,
                       shape: tuple[int, int], opset: int = OPSET, exporter: str = "legacy") -> Variant:
    """The fixed-shape (1, 3, *shape) ONNX of ``module``, checked on the references of that shape."""
    path = folder / catalogue.fixed_shape_file(lowering, 1, *shape)
    onnx_model = export_onnx(module, model_spec(False, 1, shape), path, opset=opset, exporter=exporter)
    fixed = [1, 3, *shape]
    inputs, outputs = refs.usable(1, fixed)
    if not inputs:
        raise ValueError(f"no reference input of shape {fixed} for {path.name}: add one (fixed_shape_reference)")
    return Variant(
        file=path.name, kind="onnx", strategy=lowering, precision="fp32", dynamic_batch=False,
        dynamic_spatial=False, fixed_input_shape=fixed, opset=opset_of(onnx_model),
        parity=check_onnx(path, inputs, outputs, fixed_batch=1), batch=1,
        notes={"exporter": exporter, "constant_conv_weights": True, "lowering": MOBILE_NOTE},
    )
