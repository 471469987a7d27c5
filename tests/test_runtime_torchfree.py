"""runtime/ runs with torch (and train/export) impossible to import, as on a device: the Upscaler API,
runtime.infer, runtime.check and runtime.bench with the evaluation protocol (--quality), and runtime.web's server."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from test_runtime_fixtures import SAMPLE

REPO = Path(__file__).resolve().parents[1]
SHIM = "import sys\nfor name in ('torch', 'train', 'export', 'torchvision'):\n    sys.modules[name] = None\n"
SCRIPT = """
import importlib, sys
for name in ('torch', 'train', 'export'):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f'{name} importable: the shim failed')
from PIL import Image
import runtime
with runtime.Upscaler(sys.argv[1]) as upscaler:
    out = upscaler.upscale(Image.open(sys.argv[2]))
print(out.size, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'train', 'export') and sys.modules[m]))
"""

# runtime.web's plan and server modules (the ORT Web files are the browser tests' business).
WEB_SCRIPT = """
import sys
from runtime.manifest import read_manifest
from runtime.web import app, server, vendor
from runtime.web.plan import page_plan
print(page_plan(read_manifest(sys.argv[1]), "x", vendor.read_lock().version)["engine"]["file"])
"""


def test_runtime_runs_without_torch(dy_artifact, tmp_path) -> None:
    (tmp_path / "shim").mkdir()
    (tmp_path / "shim" / "sitecustomize.py").write_text(SHIM)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "shim"), str(REPO)])}

    def python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)

    api = python("-c", SCRIPT, str(dy_artifact), str(SAMPLE))
    assert api.returncode == 0, api.stderr
    assert api.stdout.strip() == "(400, 400) []"
    infer = python("-m", "runtime.infer", str(dy_artifact), str(SAMPLE), "-o", str(tmp_path / "out"), "--tile", "64")
    assert infer.returncode == 0, infer.stderr
    assert Image.open(tmp_path / "out" / "astronaut_crop_x2.png").size == (400, 400)
    check = python("-m", "runtime.check", str(dy_artifact))
    assert check.returncode == 0 and "verdict: PASS" in check.stdout, check.stdout + check.stderr
    (tmp_path / "hr").mkdir()
    shutil.copy(SAMPLE, tmp_path / "hr")
    bench = python("-m", "runtime.bench", str(dy_artifact), "--quality", str(tmp_path / "hr"), "-r", "16x16",
                   "--rounds", "1", "--warmup", "0", "--backend", "onnxruntime", "--no-check", "-q",
                   "-o", str(tmp_path / "bench.json"))
    assert bench.returncode == 0, bench.stderr
    quality = json.loads((tmp_path / "bench.json").read_text())["quality"]
    assert quality[0]["label"] == "onnxruntime model.onnx" and quality[-1]["label"] == "bicubic (MATLAB imresize)"
    assert all(q["images"] == 1 and q["psnr_y"] > 0 for q in quality)
    web = python("-c", WEB_SCRIPT, str(dy_artifact))
    assert web.returncode == 0 and web.stdout.strip() == "model.onnx", web.stderr
    assert python("-m", "runtime.web", "--help").returncode == 0
