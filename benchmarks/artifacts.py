"""Artifact folders to benchmark: reuse an up-to-date one, else export it with every variant."""
from __future__ import annotations

import inspect
from pathlib import Path

from export.artifact import OPENVINO_VARIANTS, ExportOptions, export_artifact
from export.lowering import STRATEGIES, is_dynamic
from runtime.errors import UserError
from runtime.manifest import Manifest, read_manifest

from .models import BenchModel


def _fresh(manifest: Manifest, model: BenchModel) -> bool:
    """The artifact was exported from this very model: same name and scale, same weights."""
    if manifest.model_name != model.name or manifest.scale != model.scale:
        return False
    if not model.trained:
        return False  # fresh random weights differ from run to run: export them anew
    from train.checkpoint import read_checkpoint_config

    return manifest.checkpoint_sha256 == read_checkpoint_config(model.source).get("weights_sha256")


def export_options(full: bool = True) -> ExportOptions:
    """Every lowering, model.onnx chosen by timing as the export CLI does; export's own defaults add
    the fp16/int8 ONNX, .ort and (on a GPU) TensorRT plans; the OpenVINO IR (fp32, NNCF INT8) as the CLI does.
    Not ``full``: model.onnx alone, for baselines compared on the default engine only."""
    if full:
        # as `python -m export`
        return ExportOptions(strategy="auto", extra_strategies=tuple(STRATEGIES), openvino=OPENVINO_VARIANTS)
    return ExportOptions(strategy="branches", precisions=(), ort_format=False, tensorrt=())


def ensure_artifact(
    model: BenchModel, root: Path, rebuild: bool = False, full: bool = True, progress=None
) -> tuple[Path, Manifest]:
    """``root/<name>_x<scale>``: reused when its manifest matches the model, else (re)exported."""
    folder = root / model.key
    if not rebuild and (folder / "manifest.json").is_file():
        try:
            manifest = read_manifest(folder)
            complete = not full or len(manifest.variants) > 1 or not is_dynamic(model.model)
            if _fresh(manifest, model) and complete:
                return folder, manifest
        except UserError:
            pass
    kwargs = {"progress": progress} if progress and "progress" in inspect.signature(export_artifact).parameters else {}
    manifest = export_artifact(model.checkpoint, folder, export_options(full), **kwargs)
    return folder, manifest
