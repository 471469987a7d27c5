"""Artifact folders to benchmark: reuse an up-to-date one, else export it with every variant."""
from __future__ import annotations

import inspect
from pathlib import Path

from export.artifact import ExportOptions, export_artifact
from export.lowering import STRATEGIES
from runtime.errors import UserError
from runtime.manifest import Manifest, read_manifest

from .models import BenchModel


def export_options() -> ExportOptions:
    """Every lowering; export's own defaults add the fp16/int8 ONNX, .ort and (on a GPU) TensorRT plans."""
    return ExportOptions(strategy="branches", extra_strategies=tuple(STRATEGIES))


def ensure_artifact(model: BenchModel, root: Path, rebuild: bool = False, progress=None) -> tuple[Path, Manifest]:  # noqa: ANN001
    """``root/<name>_x<scale>``: reused when its manifest matches the model, else (re)exported."""
    folder = root / model.key
    if not rebuild and (folder / "manifest.json").is_file():
        try:
            manifest = read_manifest(folder)
            if _fresh(manifest, model):
                return folder, manifest
        except UserError:
            pass
    kwargs = {"progress": progress} if progress and "progress" in inspect.signature(export_artifact).parameters else {}
    manifest = export_artifact(model.checkpoint, folder, export_options(), **kwargs)
    return folder, manifest
