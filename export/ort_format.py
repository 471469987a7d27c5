"""ONNX -> ORT format (``.ort``) for ONNX Runtime Mobile / minimal builds."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from runtime.files import atomic_path


def to_ort(source: str | Path, target: str | Path) -> dict[str, str]:
    """Convert with onnxruntime's own converter (fixed optimisation style, basic optimisations so
    the file stays portable across execution providers); returns the settings for the manifest."""
    settings = {"tool": "onnxruntime.tools.convert_onnx_models_to_ort", "optimization_style": "Fixed",
                "optimization_level": "basic"}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.onnx"
        shutil.copyfile(source, model)
        result = subprocess.run(
            [sys.executable, "-m", settings["tool"], str(model), "--output_dir", tmp,
             "--optimization_style", "Fixed", "--target_platform", "amd64"],
            capture_output=True, text=True,
            env={**os.environ, "ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL": "basic"},
        )
        produced = Path(tmp) / "model.basic.ort"  # the converter names the file after the level
        if result.returncode != 0 or not produced.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"ORT format conversion of {source} failed: {tail[0]}")
        with atomic_path(target) as tmp_target:
            shutil.copyfile(produced, tmp_target)
    return settings
