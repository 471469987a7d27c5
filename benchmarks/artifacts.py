"""Artifact folders to benchmark: reuse an up-to-date one, else export it with every variant."""
from __future__ import annotations

from pathlib import Path

from export.artifact import ExportOptions, Progress, export_artifact, no_progress
from runtime.errors import UserError
from runtime.manifest import Manifest, read_manifest

from .models import BenchModel


def _fresh(manifest: Manifest, model: BenchModel) -> bool:
    """The artifact was exported from this very model: same name and scale, same weights."""
    if manifest.model_name != model.name or manifest.scale != model.scale:
        return False
    if not model.trained:
        return False  # fresh random weights differ from run to run: export them anew
    return manifest.checkpoint_sha256 == model.checkpoint.weights_sha256


def export_options(full: bool = True) -> ExportOptions:
    """``full``: the export recipe, as `python -m export` writes it. Not ``full``: model.onnx (and
    its tiling split) alone, for baselines compared on the default engine only."""
    if full:
        return ExportOptions()
    return ExportOptions(strategy="branches", precisions=(), ort_format=False, tensorrt=(), openvino=(),
                         mobile_shape=None)


def ensure_artifact(
    model: BenchModel, root: Path, rebuild: bool = False, full: bool = True, progress: Progress = no_progress
) -> tuple[Path, Manifest]:
    """``root/<name>_x<scale>``: reused when its manifest matches the model, else (re)exported."""
    folder = root / model.key
    if not rebuild and (folder / "manifest.json").is_file():
        try:
            manifest = read_manifest(folder)
            # Exported by today's recipe (an older recipe's artifact lacks files this one writes).
            same_recipe = manifest.notes.get("recipe") == export_options(full).record()
            if _fresh(manifest, model) and same_recipe:
                return folder, manifest
        except UserError:
            pass
    manifest = export_artifact(model.checkpoint, folder, export_options(full), progress=progress)
    return folder, manifest
