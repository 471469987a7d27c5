"""export_artifact: checkpoint or model -> a complete artifact folder (runtime/manifest.py).

The folder is built in a hidden temp folder beside the target and renamed into place only after
the manifest is written, so an interrupted export never leaves a folder that looks valid.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime import catalogue
from runtime.catalogue import LITERT_PRECISIONS, OPENVINO_PRECISIONS, REDUCED_ONNX_PRECISIONS, TENSORRT_PRECISIONS
from runtime.errors import STORAGE_ERRNOS, UserError, writing
from runtime.host import library_versions
from runtime.manifest import Manifest, Reference, TensorSpec, Tiling, Variant, hash_files
from runtime.safefiles import missing_folders, remove_empty
from runtime.web.plan import web_record
from runtime.web.vendor import read_lock
from train.checkpoint import Checkpoint, checkpoint_label, load_checkpoint
from train.models import dynamic_convs, model_config, model_traits

from .autoselect import choose_strategy
from .fusion import NOTE as FUSION_NOTE
from .fusion import can_fuse, fuse_pixel_shuffle
from .litert_variants import litert_variants
from .lowering import STRATEGIES, is_dynamic, lower
from .mobile_variants import MOBILE_HW, mobile_variants
from .onnx_export import export_onnx
from .recipe import EXPORT_PACKAGES, FOCUS_SHAPE, OPSET, RECIPE_REVISION
from .references import fixed_shape_reference, reference_inputs
from .tiling import TilingMain, TilingStats, certify_tiling, geometry, main_spec, stats_spec
from .variants import (
    ReferenceSet,
    model_spec,
    onnx_variant,
    openvino_variants,
    ort_variant,
    reduced_precision_variant,
    tensorrt_variants,
)

Progress = Callable[[str], None]


@dataclasses.dataclass
class ExportOptions:
    """What an export writes. The defaults are the export recipe: ``python -m export`` and the
    benchmarks use ``ExportOptions()`` as it is, each option of the CLI overriding one field."""

    # Lowering of model.onnx, or "auto": the fastest that passes parity on ONNX Runtime CPU.
    strategy: str = "auto"
    # Written as model.<strategy>.onnx beside model.onnx (dynamic models only), so the artifact
    # carries every lowering and a device can pick the fastest that its runtime accepts.
    extra_strategies: Sequence[str] = tuple(STRATEGIES)
    batch: int = 1  # the fixed batch of strategies without a dynamic batch (aggregate)
    fixed_shapes: Sequence[tuple[int, int]] = ()  # (H, W): model.<strategy>.<N>x<H>x<W>.onnx
    precisions: Sequence[str] = REDUCED_ONNX_PRECISIONS  # reduced-precision ONNX variants of model.onnx
    ort_format: bool = True  # model.ort
    # ORT Mobile and Core ML from the mobile lowering at this fixed LR shape (H, W); None: neither
    # (export/mobile_variants.py: .ort + required_operators config, usability report, .mlpackage).
    mobile_shape: tuple[int, int] | None = MOBILE_HW
    coreml: bool = True  # the .mlpackage where coremltools works here; skipped with the reason otherwise
    # LiteRT files of the mobile lowering at mobile_shape and at every even fixed shape, with their
    # fixed-shape tiling graphs (export/litert_variants.py), where litert-torch (and ai-edge-quantizer) exist.
    litert: Sequence[str] = LITERT_PRECISIONS
    tensorrt: Sequence[str] = TENSORRT_PRECISIONS  # plans, where tensorrt and a GPU exist
    # OpenVINO IR of model.onnx: "fp32" (model.openvino.xml), "bf16" (model.openvino.bf16.xml, bf16
    # inference stored in the IR) and "int8" by NNCF (model.openvino.int8.xml), where openvino (and
    # nncf) are installed; skipped with the reason otherwise.
    openvino: Sequence[str] = OPENVINO_PRECISIONS
    tiling: bool = True
    # one PixelShuffle(2s) instead of two shuffles around the repeat skip (export/fusion.py), every graph
    fuse_shuffle: bool = True
    opset: int = OPSET
    exporter: str = "legacy"
    # "auto": where to time the candidates (batch, 3, H, W), on ONNX Runtime CPU
    auto_shape: tuple[int, int, int, int] = FOCUS_SHAPE
    auto_threads: int = 2


    def record(self) -> dict:
        """The options as the manifest stores them (``notes.recipe``): JSON types, tuples as lists."""
        return {**json.loads(json.dumps(dataclasses.asdict(self))), "revision": RECIPE_REVISION}


def no_progress(_: str) -> None:
    """A progress callback that reports nothing."""


def _constant_weight_source(variants: Sequence[Variant], auto: dict | None) -> Variant | None:
    """model.onnx when its conv weights are constants, else the written lowering with constant
    weights that ``auto`` timed fastest (the first written one without timings); None if none."""
    candidates = [v for v in variants if v.kind == "onnx" and v.fixed_input_shape is None
                  and (v.strategy not in STRATEGIES or STRATEGIES[v.strategy].constant_conv_weights)]  # static nets
    if not candidates or candidates[0] is variants[0]:
        return candidates[0] if candidates else None
    timed = (auto or {}).get("median_ms", {})
    return min(candidates, key=lambda v: timed.get(v.strategy) if isinstance(timed.get(v.strategy), float)
               else float("inf"))


def resolve_source(source: str | os.PathLike[str] | nn.Module | Checkpoint) -> Checkpoint:
    """A Checkpoint from a checkpoint path, a loaded Checkpoint, or a model built by create_model."""
    if isinstance(source, Checkpoint):
        return source
    if isinstance(source, nn.Module):
        config = model_config(source)
        return Checkpoint(source.eval(), config.name, dict(config.kwargs), {"untrained": True}, None)
    return load_checkpoint(source)


def artifact_name(checkpoint: Checkpoint) -> str:
    if checkpoint.path is not None:
        return checkpoint_label(checkpoint.path, separator="_")
    return f"{checkpoint.name}_x{checkpoint.model.scale}_untrained"


def export_artifact(
    source: str | os.PathLike[str] | nn.Module | Checkpoint,
    out_dir: str | os.PathLike[str],
    options: ExportOptions | None = None,
    progress: Progress = no_progress,
) -> Manifest:
    """Write the artifact folder ``out_dir`` for ``source``; returns the manifest written.

    An existing ``out_dir`` is replaced only once the new folder is complete.
    """
    options = options or ExportOptions()
    checkpoint = resolve_source(source)
    target = Path(out_dir)
    made = missing_folders(target)
    with writing(target, "artifact"):
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        manifest = _build(checkpoint, staging, options, progress)
        os.chmod(staging, 0o755)  # mkdtemp makes it owner-only
        _replace_folder(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        full = isinstance(exc, Exception) and _storage_full(target.parent)
        remove_empty(made)  # the output folders this export created, if nothing else went in
        if full or (isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS):
            # Libraries report a full disk in their own words (torch, OpenVINO, converters): said once, plainly.
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "No space left on device"
            raise UserError(f"cannot write the artifact {target}: {reason}; the previous artifact there, "
                            "if any, is untouched") from None
        raise
    return manifest


def _storage_full(folder: Path, margin: int = 1 << 20) -> bool:
    """Whether the file system holding ``folder`` has (nearly) no room left."""
    try:
        return shutil.disk_usage(folder).free < margin
    except OSError:
        return False


def _replace_folder(staging: Path, target: Path) -> None:
    if target.exists():
        trash = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.replace(target, trash / target.name)
        os.replace(staging, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, target)


def _build(checkpoint: Checkpoint, folder: Path, options: ExportOptions, progress: Progress) -> Manifest:
    model = checkpoint.model.eval()
    scale = int(model.scale)
    notes: dict = {"untrained": True} if checkpoint.metadata.get("untrained") else {}
    notes["recipe"] = options.record()  # what was asked for; what was written is in variants/skipped
    skipped: dict[str, str] = {}
    progress("reference inputs and PyTorch outputs")
    references, refs = _write_references(model, folder, options)
    if options.fuse_shuffle and can_fuse(model):
        # After the references: every exported graph is checked against the unfused network.
        model = fuse_pixel_shuffle(model)
        notes["pixel_shuffle_fusion"] = FUSION_NOTE
    export_kw = {"opset": options.opset, "exporter": options.exporter}

    strategy = options.strategy
    if strategy == "auto" and is_dynamic(model):
        progress(f"auto: exporting and timing every lowering at {options.auto_shape} on ONNX Runtime CPU")
        choice = choose_strategy(model, model_spec, refs.inputs, refs.outputs, options.auto_shape,
                                 options.auto_threads, **export_kw)
        strategy = choice.strategy
        notes["auto"] = {"chosen": strategy, "median_ms": choice.measured, "shape": list(choice.shape),
                         "backend": choice.backend, "threads": options.auto_threads}
    elif strategy == "auto":
        strategy = "branches"  # a static model has nothing to lower

    variants = []
    strategies = [strategy, *(s for s in options.extra_strategies if s not in (strategy, "auto"))]
    for i, name in enumerate(strategies if is_dynamic(model) else strategies[:1]):
        file = catalogue.onnx_file(None if i == 0 else name)
        progress(f"{file}: lowering {name!r}, export, check, simplify, parity")
        variants.append(onnx_variant(model, name, folder / file, refs, options.batch, **export_kw))
    default = variants[0]

    for height, width in options.fixed_shapes:
        batch = options.batch
        file = catalogue.fixed_shape_file(default.strategy, batch, height, width)
        progress(f"{file}: fixed input shape")
        variants.append(onnx_variant(model, strategy, folder / file, refs, batch, (height, width), **export_kw))

    # INT8 quantisation and TensorRT plans need constant conv weights: when model.onnx computes its
    # kernel (aggregate), they are built from the fastest written lowering that has them.
    constant = _constant_weight_source(variants, notes.get("auto"))
    for precision in options.precisions:
        base = default if precision == "fp16" or constant is None else constant
        progress(f"{precision} variant of {base.file} and its PSNR against the fp32 reference")
        variant, left_out = reduced_precision_variant(base, folder, precision, refs)
        if left_out:
            skipped[variant.file] = left_out
        else:
            variants.append(variant)

    if options.ort_format:
        progress(f"{catalogue.ort_file(default.file)} (ONNX Runtime Mobile format)")
        variants.append(ort_variant(default, folder, refs))

    if options.mobile_shape:
        progress(f"mobile lowering at {options.mobile_shape}: ONNX, .ort + ops config, usability report, Core ML")
        compare = [f for f in (default.file, catalogue.onnx_file("stacked")) if any(v.file == f for v in variants)]
        mobile = mobile_variants(checkpoint.model.eval(), folder, refs, tuple(options.mobile_shape), compare,
                                 options.coreml, **export_kw)
        variants.extend(mobile.variants)
        skipped.update(mobile.skipped)
        notes.update(mobile.notes)

    if options.openvino:
        progress(f"OpenVINO IR ({', '.join(options.openvino)}) of {default.file} and its parity on OpenVINO CPU")
        last_layer = model_traits(checkpoint.name).last_layer  # the reconstruction layer stays float in INT8
        irs, ir_skips = openvino_variants(default, folder, tuple(options.openvino), refs,
                                          (last_layer,) if last_layer else ())
        variants.extend(irs)
        skipped.update(ir_skips)

    if options.tensorrt:
        progress("TensorRT plans")
        plans, plan_skips = tensorrt_variants(constant or default, folder, tuple(options.tensorrt), refs)
        variants.extend(plans)
        skipped.update(plan_skips)

    tiling = None
    if options.tiling:
        # Tiles come in batches: the tiling graphs need a dynamic-batch lowering.
        tiling_strategy = strategy if STRATEGIES[strategy].dynamic_batch else "stacked"
        progress(f"tiling split (stats + main graphs, {tiling_strategy!r}) and tiled-vs-untiled check")
        tiling = _export_tiling(lower(model, tiling_strategy), folder, options, scale, refs.inputs[1], refs.outputs[1])
        notes["tiling_strategy"] = tiling_strategy

    litert_shapes = [tuple(options.mobile_shape)] if options.mobile_shape else []
    litert_shapes += [(h, w) for h, w in options.fixed_shapes if options.batch == 1 and (h, w) not in litert_shapes]
    if options.litert and litert_shapes:
        progress(f"LiteRT ({', '.join(options.litert)}) of the mobile lowering at {litert_shapes}, tiling counterparts")
        tflites, tflite_skips = litert_variants(checkpoint.model.eval(), folder, litert_shapes, tuple(options.litert),
                                                refs, tiling)
        variants.extend(tflites)
        skipped.update(tflite_skips)

    variants = _leave_out_failed(folder, variants, default, skipped)
    # The browser page (runtime/web) runs model.onnx and the tiling graphs as written: recorded, nothing more written.
    notes["web"] = web_record(default, tiling, read_lock().version)
    if skipped:
        notes["skipped"] = skipped
    manifest = Manifest(
        model_name=checkpoint.name,
        model_kwargs=dict(checkpoint.kwargs),
        scale=scale,
        checkpoint=str(checkpoint.path) if checkpoint.path else "untrained (freshly initialised)",
        checkpoint_sha256=checkpoint.weights_sha256,
        input=TensorSpec(name="input"),
        output=TensorSpec(name="output"),
        default_variant=default.file,
        variants=variants,
        references=references,
        tiling=tiling,
        files=hash_files(folder),
        versions={"python": platform.python_version(), **library_versions(EXPORT_PACKAGES)},
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        notes=notes,
    )
    manifest.write(folder)
    return manifest


def _leave_out_failed(folder: Path, variants: list[Variant], required: Variant, skipped: dict[str, str]
                      ) -> list[Variant]:
    """Every optional variant (all but the required default) that failed parity here, removed with its files and
    its reason in ``skipped``: an export fails only for the required one (runtime/check.py ``is_required``)."""
    kept = []
    for variant in variants:
        p = variant.parity
        if variant is required or p is None or p.passed:
            kept.append(variant)
            continue
        for rel in variant.engine_files():
            (folder / rel).unlink(missing_ok=True)
        figures = f"max|diff| {p.max_abs_diff:.2e}" if "max_abs_diff" in p.tolerance else f"PSNR {p.psnr_db:.1f} dB"
        skipped[variant.file] = f"failed parity on this CPU ({figures} outside {p.tolerance}); file removed"
    return kept


def _write_references(model: nn.Module, folder: Path, options: ExportOptions) -> tuple[list[Reference], ReferenceSet]:
    """The standard reference crops, plus one per fixed shape (so fixed-shape variants have one)."""
    (folder / "reference").mkdir()
    batches = reference_inputs()
    fixed = [(options.batch, height, width) for height, width in options.fixed_shapes]
    if options.mobile_shape:  # the mobile files are batch 1
        fixed.append((1, *options.mobile_shape))
    for batch, height, width in dict.fromkeys(fixed):
        batches.append(fixed_shape_reference(batch, height, width))
    references, refs = [], ReferenceSet([], [])
    for j, (source, batch) in enumerate(batches):
        with torch.no_grad():
            output = model(torch.from_numpy(batch)).numpy().astype(np.float32)
        np.save(folder / "reference" / f"input_{j}.npy", batch)
        np.save(folder / "reference" / f"output_{j}.npy", output)
        references.append(
            Reference(f"reference/input_{j}.npy", f"reference/output_{j}.npy", list(batch.shape), list(output.shape),
                      source)
        )
        refs.inputs.append(batch)
        refs.outputs.append(output)
    return references, refs


def _export_tiling(
    lowered: nn.Module, folder: Path, options: ExportOptions, scale: int, image: np.ndarray, reference: np.ndarray
) -> Tiling:
    geo = geometry(lowered, scale)
    (folder / "tiling").mkdir()
    stats_files = []
    for i in range(len(dynamic_convs(lowered))):
        stats_files.append(f"tiling/stats_{i}.onnx")
        export_onnx(TilingStats(lowered, i), stats_spec(i, geo.pooled_channels, True), folder / stats_files[-1],
                    opset=options.opset, exporter=options.exporter)
    export_onnx(TilingMain(lowered), main_spec(geo.pooled_channels, True), folder / "tiling/main.onnx",
                opset=options.opset, exporter=options.exporter)
    tiling = Tiling(
        stats=stats_files, main="tiling/main.onnx",
        pooled_inputs=[f"pooled_{i}" for i in range(len(stats_files))],
        pooled_channels=geo.pooled_channels, feature_scale=geo.feature_scale, halo=geo.halo, align=geo.align,
    )
    tiling.parity = certify_tiling(folder, tiling, scale, image, reference)  # with the tiler devices run
    return tiling
