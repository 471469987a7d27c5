"""ONNX -> ORT format (``.ort``) for ONNX Runtime Mobile / minimal builds, with its operator config.

The converter also writes ``required_operators.config``: the ops (per domain and opset) the ``.ort``
file needs, which a reduced-size ONNX Runtime build takes (``build.py --minimal_build
--include_ops_by_config <file>``). It is kept beside the ``.ort`` file.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from runtime.files import atomic_path

TOOL = "onnxruntime.tools.convert_onnx_models_to_ort"


def to_ort(source: str | Path, target: str | Path, config_target: str | Path | None = None) -> dict[str, str]:
    """Convert with onnxruntime's own converter (fixed optimisation style, basic optimisations so
    the file stays portable across execution providers) and keep its ``required_operators`` config at
    ``config_target`` (when given); returns the settings for the manifest."""
    settings = {"tool": TOOL, "optimization_style": "Fixed", "optimization_level": "basic"}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.onnx"
        shutil.copyfile(source, model)
        result = subprocess.run(
            # Isolated (-I): neither the working folder nor PYTHONPATH may put a foreign "onnxruntime" first.
            [sys.executable, "-I", "-m", TOOL, str(model), "--output_dir", tmp,
             "--optimization_style", "Fixed", "--target_platform", "amd64"],
            capture_output=True, text=True, cwd=tmp,
            env={**os.environ, "ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL": "basic"},
        )
        # The converter names its files after the optimisation level.
        produced, config = Path(tmp) / "model.basic.ort", Path(tmp) / "model.required_operators.basic.config"
        if result.returncode != 0 or not produced.is_file() or not config.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"ORT format conversion of {source} failed: {tail[0]}")
        with atomic_path(target) as tmp_target:
            shutil.copyfile(produced, tmp_target)
        if config_target is not None:
            # Its header names the converted file: this temp folder's, made the artifact's own name.
            text = config.read_text(encoding="utf-8")
            for name in (str(produced.resolve()), str(produced)):
                text = text.replace(name, Path(target).name)
            with atomic_path(config_target) as tmp_config:
                Path(tmp_config).write_text(text, encoding="utf-8")
            settings["required_operators"] = Path(config_target).name
    return settings


def required_operators(config: str | Path) -> dict[str, list[str]]:
    """A ``required_operators.config`` read back: ``"<domain>;<opset>"`` -> sorted op types."""
    ops: dict[str, list[str]] = {}
    for line in Path(config).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            domain, opset, names = line.split(";", 2)
            ops[f"{domain};{opset}"] = sorted(n.strip() for n in names.split(",") if n.strip())
    return ops
