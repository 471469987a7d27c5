"""benchmarks/artifacts.py: an artifact is reused only when the same weights were exported by today's recipe."""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.artifacts import ensure_artifact
from benchmarks.models import BenchModel
from train.checkpoint import load_checkpoint, save_checkpoint
from train.models import create_model


def _trained(tmp_path: Path) -> BenchModel:
    save_checkpoint(tmp_path / "w" / "tiny_x2", create_model("dyconvsr_tiny"))
    return BenchModel("dyconvsr_tiny", 2, load_checkpoint(tmp_path / "w" / "tiny_x2.json"), True, "test")


def test_same_recipe_is_reused_and_an_older_recipe_is_exported_again(tmp_path: Path) -> None:
    model = _trained(tmp_path)
    folder, _ = ensure_artifact(model, tmp_path / "artifacts", full=False)
    written = (folder / "model.onnx").stat().st_mtime_ns
    ensure_artifact(model, tmp_path / "artifacts", full=False)
    assert (folder / "model.onnx").stat().st_mtime_ns == written  # reused: not exported a second time
    manifest = folder / "manifest.json"
    data = json.loads(manifest.read_text())
    data["notes"]["recipe"]["mobile_shape"] = [360, 640]  # as if an older recipe had written it
    manifest.write_text(json.dumps(data))
    _, redone = ensure_artifact(model, tmp_path / "artifacts", full=False)
    assert redone.notes["recipe"]["mobile_shape"] is None
    assert (folder / "model.onnx").stat().st_mtime_ns != written
