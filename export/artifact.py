"""export_artifact: checkpoint or model -> a complete artifact folder (runtime/manifest.py).

The folder is built in a hidden temp folder beside the target and renamed into place only after
the manifest is written, so an interrupted export never leaves a folder that looks valid.
"""
from __future__ import annotations

import datetime
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime.errors import UserError
from runtime.manifest import Manifest, Reference, TensorSpec, Tiling, Variant, hash_files
from train.checkpoint import Checkpoint, load_checkpoint
from train.models import dynamic_convs

from .lowering import get_strategy, is_dynamic, lower
from .onnx_export import DEFAULT_OPSET, TRACE_HW, GraphSpec, export_onnx, opset_of
from .parity import check_onnx, compare
from .references import reference_inputs
from .tiling import TilingMain, TilingStats, geometry, main_spec, ort_runner, run_tiled, stats_spec

Progress = Callable[[str], None]


@dataclass
class ExportOptions:
    strategy: str = "branches"  # lowering of model.onnx
    extra_strategies: Sequence[str] = ()  # written as model.<strategy>.onnx
    batch: int = 1  # the fixed batch of strategies without a dynamic batch
    opset: int = DEFAULT_OPSET
    exporter: str = "legacy"
    tiling: bool = True
    extras: Sequence[str] = field(default_factory=tuple)  # later phases: "fp16", "int8", "ort", ...


def _quiet(_: str) -> None:
    pass


def resolve_source(source: str | os.PathLike[str] | nn.Module | Checkpoint) -> Checkpoint:
    """A Checkpoint from a checkpoint path, a loaded Checkpoint, or a model built by create_model."""
    if isinstance(source, Checkpoint):
        return source
    if isinstance(source, nn.Module):
        config = getattr(source, "config", None)
        if config is None:
            raise UserError("model has no .config; build it with train.models.create_model(name, ...)")
        return Checkpoint(source.eval(), config.name, dict(config.kwargs), {"untrained": True}, None)
    return load_checkpoint(source)


def artifact_name(checkpoint: Checkpoint) -> str:
    if checkpoint.path is not None:
        return checkpoint.path.with_suffix("").name
    return f"{checkpoint.name}_x{checkpoint.model.scale}_untrained"


def export_artifact(
    source: str | os.PathLike[str] | nn.Module | Checkpoint,
    out_dir: str | os.PathLike[str],
    options: ExportOptions | None = None,
    progress: Progress = _quiet,
) -> Manifest:
    """Write the artifact folder ``out_dir`` for ``source``; returns the manifest written.

    An existing ``out_dir`` is replaced only once the new folder is complete.
    """
    options = options or ExportOptions()
    checkpoint = resolve_source(source)
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        manifest = _build(checkpoint, staging, options, progress)
        os.chmod(staging, 0o755)  # mkdtemp makes it owner-only
        _replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


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
    progress("reference inputs and PyTorch outputs")
    references, inputs, outputs = _write_references(model, folder)

    variants = []
    strategies = [options.strategy, *(s for s in options.extra_strategies if s != options.strategy)]
    for i, strategy in enumerate(strategies):
        file = "model.onnx" if i == 0 else f"model.{strategy}.onnx"
        progress(f"{file}: lowering {strategy!r}, export, check, simplify, parity")
        variants.append(_export_variant(model, strategy, folder / file, options, inputs, outputs))
        if not is_dynamic(model):
            break  # every strategy is the same graph for a static model

    tiling = None
    if options.tiling:
        progress("tiling split (stats + main graphs) and tiled-vs-untiled check")
        tiling = _export_tiling(model, folder, options, scale, inputs[1], outputs[1])

    manifest = Manifest(
        model_name=checkpoint.name,
        model_kwargs=dict(checkpoint.kwargs),
        scale=scale,
        checkpoint=str(checkpoint.path) if checkpoint.path else "untrained (freshly initialised)",
        checkpoint_sha256=_checkpoint_sha(checkpoint),
        input=TensorSpec(name="input"),
        output=TensorSpec(name="output"),
        default_variant="model.onnx",
        variants=variants,
        references=references,
        tiling=tiling,
        files=hash_files(folder),
        versions=library_versions(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        notes={"untrained": True} if checkpoint.metadata.get("untrained") else {},
    )
    manifest.write(folder)
    return manifest


def _checkpoint_sha(checkpoint: Checkpoint) -> str | None:
    if checkpoint.path is None:
        return None
    from train.checkpoint import read_checkpoint_config

    return read_checkpoint_config(checkpoint.path).get("weights_sha256")


def _write_references(model: nn.Module, folder: Path) -> tuple[list[Reference], list[np.ndarray], list[np.ndarray]]:
    (folder / "reference").mkdir()
    references, inputs, outputs = [], [], []
    for j, (source, batch) in enumerate(reference_inputs()):
        with torch.no_grad():
            output = model(torch.from_numpy(batch)).numpy().astype(np.float32)
        np.save(folder / "reference" / f"input_{j}.npy", batch)
        np.save(folder / "reference" / f"output_{j}.npy", output)
        references.append(
            Reference(f"reference/input_{j}.npy", f"reference/output_{j}.npy", list(batch.shape), list(output.shape), source)
        )
        inputs.append(batch)
        outputs.append(output)
    return references, inputs, outputs


def model_spec(dynamic_batch: bool, batch: int) -> GraphSpec:
    axes = {2: "H", 3: "W"}
    if dynamic_batch:
        axes = {0: "N", **axes}
    out_axes = {k: (v if v == "N" else f"{v}_out") for k, v in axes.items()}
    return GraphSpec(["input"], ["output"], (torch.rand(batch, 3, *TRACE_HW),), {"input": axes, "output": out_axes})


def _export_variant(
    model: nn.Module,
    strategy: str,
    path: Path,
    options: ExportOptions,
    inputs: list[np.ndarray],
    outputs: list[np.ndarray],
) -> Variant:
    spec = get_strategy(strategy)
    dynamic_batch = spec.dynamic_batch or not is_dynamic(model)
    batch = 1 if dynamic_batch else options.batch
    onnx_model = export_onnx(lower(model, strategy, batch), model_spec(dynamic_batch, batch), path,
                             opset=options.opset, exporter=options.exporter)
    usable = [(x, y) for x, y in zip(inputs, outputs) if dynamic_batch or x.shape[0] % batch == 0]
    parity = check_onnx(path, [x for x, _ in usable], [y for _, y in usable], fixed_batch=None if dynamic_batch else batch)
    return Variant(
        file=path.name, kind="onnx", strategy=strategy, precision="fp32", dynamic_batch=dynamic_batch,
        dynamic_spatial=True, opset=opset_of(onnx_model), parity=parity, batch=None if dynamic_batch else batch,
        notes={"exporter": options.exporter, "constant_conv_weights": spec.constant_conv_weights or not is_dynamic(model)},
    )


def _export_tiling(
    model: nn.Module, folder: Path, options: ExportOptions, scale: int, image: np.ndarray, reference: np.ndarray
) -> Tiling:
    # The tiling graphs use the dynamic-batch, constant-weight lowering: tiles come in batches.
    lowered = lower(model, "branches")
    geo = geometry(lowered, scale)
    (folder / "tiling").mkdir()
    stats_files = []
    for i in range(len(dynamic_convs(lowered))):
        stats_files.append(f"tiling/stats_{i}.onnx")
        export_onnx(TilingStats(lowered, i), stats_spec(i, geo.pooled_channels, True), folder / stats_files[-1],
                    opset=options.opset, exporter=options.exporter)
    export_onnx(TilingMain(lowered), main_spec(geo.pooled_channels, True), folder / "tiling/main.onnx",
                opset=options.opset, exporter=options.exporter)
    tiled = run_tiled(
        [ort_runner(folder / f) for f in stats_files], ort_runner(folder / "tiling/main.onnx"), image,
        scale, geo.feature_scale, geo.halo, geo.align, core=geo.align * max(1, 8 // geo.align),
    )
    return Tiling(
        stats=stats_files, main="tiling/main.onnx",
        pooled_inputs=[f"pooled_{i}" for i in range(len(stats_files))],
        pooled_channels=geo.pooled_channels, feature_scale=geo.feature_scale, halo=geo.halo, align=geo.align,
        parity=compare([tiled], [reference]),
    )


def library_versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import onnxsim

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxsim": getattr(onnxsim, "__version__", "unknown"),
        "numpy": np.__version__,
    }
