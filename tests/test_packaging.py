"""Packaging: the wheel's console scripts and shipped weights, the installed export run from any
folder, and a runtime-only install answering export/train with one line instead of a traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_runtime_fixtures import WHEEL_PACKAGES as PACKAGES

REPO = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPTS = {
    "dyconvsr-upscale": "runtime.infer:main",
    "dyconvsr-check": "runtime.check:main",
    "dyconvsr-bench": "runtime.bench.cli:main",
    "dyconvsr-batch": "runtime.batch.cli:main",
    "dyconvsr-export": "export.__main__:run",
    "dyconvsr-train": "train.__main__:run",
}
# What no training installs: a finder that refuses torch, as on a device with only the cpu extra.
NO_TORCH = """import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def shipped_files() -> list[str]:
    return sorted(p.name for p in (REPO / "weights").iterdir() if p.suffix in (".json", ".safetensors"))


def test_wheel_has_the_console_scripts_every_package_and_the_weights_but_not_the_runs(wheel: Path) -> None:
    assert (REPO / "weights" / "runs").is_dir()  # else the exclusion below proves nothing
    names = zipfile.ZipFile(wheel).namelist()
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    scripts = dict(line.replace(" ", "").split("=") for line in text.split("[console_scripts]")[1].split("\n")
                   if "=" in line)
    assert scripts == CONSOLE_SCRIPTS
    shipped = sorted(n.removeprefix("dyconvsr_weights/") for n in names if n.startswith("dyconvsr_weights/"))
    assert shipped == shipped_files() and len(shipped) >= 2
    assert not [n for n in names if "runs/" in n or "optim" in n]
    # Every package of the tree, so a new sub-package missing from pyproject.toml's list fails here.
    packages = sorted(str(p.parent.relative_to(REPO)) for name in PACKAGES for p in (REPO / name).rglob("__init__.py"))
    assert packages and all(f"{package}/__init__.py" in names for package in packages)


def test_the_wheel_finds_its_shipped_weights_from_any_folder(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a wheel unpacked is its installed layout
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "weights").mkdir(parents=True)  # a weights/ here must not be what is found
    code = ("import train; from train.shipped import shipped_checkpoints; "
            "print(train.__file__); print(*[p.name for p in shipped_checkpoints()]); "
            "print(*{str(p.parent) for p in shipped_checkpoints()})")
    result = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(site)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    module, names, folder = result.stdout.splitlines()
    assert Path(module).is_relative_to(site)  # the unpacked wheel's code, not the editable checkout
    assert names.split() == [n for n in shipped_files() if n.endswith(".json")]
    assert Path(folder) == site / "dyconvsr_weights"


def packaged_folders() -> list[Path]:
    return sorted((REPO / "engines").glob("*.artifact"))


def test_the_wheel_carries_every_packaged_engine_file_and_nothing_else_there(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packaged = sorted(n.removeprefix("dyconvsr_engines/") for n in names if n.startswith("dyconvsr_engines/"))
    expected = []
    for folder in packaged_folders():
        manifest = json.loads((folder / "manifest.json").read_text())
        expected += [f"{folder.name}/{rel}" for rel in [*manifest["files"], "manifest.json"]]
    assert len(packaged_folders()) >= 3 and packaged == sorted(expected)


@pytest.mark.parametrize("folder", packaged_folders(), ids=lambda p: p.name)
def test_each_packaged_engine_was_made_from_the_shipped_checkpoint_of_its_name(folder: Path) -> None:
    """`make engines` is rerun whenever a shipped checkpoint changes: a stale engine in the wheel fails here."""
    from runtime.manifest import read_manifest, verify_files

    manifest = read_manifest(folder)
    assert not verify_files(folder, manifest)
    name = folder.name.removesuffix(".artifact")
    shipped = json.loads((REPO / "weights" / f"{name}.json").read_text())
    assert manifest.checkpoint == f"{name}.json" and manifest.checkpoint_sha256 == shipped["weights_sha256"]
    files = {v.file for v in manifest.variants}
    assert {"model.onnx", "model.int8.onnx"} <= files and any(f.endswith(".int8.tflite") for f in files)
    assert manifest.default_variant == "model.onnx" and manifest.tiling is not None


def test_the_readme_opens_on_the_picture_the_packaged_engine_made() -> None:
    from benchmarks.front import COMMAND, engine_of_picture

    manifest = json.loads((REPO / "engines" / "dyconvsr_x2.artifact" / "manifest.json").read_text())
    assert engine_of_picture(REPO / "reports" / "front.png") == manifest["files"][manifest["default_variant"]]
    first_screen = "\n".join((REPO / "README.md").read_text().splitlines()[:25])
    assert "(reports/front.png)" in first_screen and COMMAND in first_screen


def test_console_export_outside_the_repository_exports_the_trained_checkpoint(tmp_path: Path) -> None:
    command = Path(sys.executable).parent / "dyconvsr-export"
    assert command.is_file(), "console scripts not registered: pip install -e . (make setup does)"
    openvino_int8 = _importable("nncf") and _importable("openvino")  # NNCF is the noisy one
    args = [str(command), "dyconvsr_x2", "-o", "out", "--strategy", "aggregate", "--only-default", "--no-reduced",
            "--no-ort", "--no-tensorrt", "--no-tiling", "--no-mobile",
            *(["--openvino", "int8"] if openvino_int8 else [])]
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)  # piped, like a log
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "dyconvsr_x2" / "manifest.json").read_text())
    shipped = REPO / "weights" / "dyconvsr_x2.json"
    assert Path(manifest["checkpoint"]).resolve() == shipped.resolve()
    assert manifest["checkpoint_sha256"] == json.loads(shipped.read_text())["weights_sha256"]
    assert "untrained" not in manifest["notes"]
    if openvino_int8:
        assert any(v["file"] == "model.openvino.int8.xml" for v in manifest["variants"])
    # Only the project's own lines: no NNCF log lines or rich bar, no carriage-return redraws.
    for stream in (result.stdout, result.stderr):
        assert "\r" not in stream and "nncf" not in stream.lower() and "━" not in stream, stream
    assert all(line.startswith(("exporting ", "  .. ", "  done in ")) for line in result.stderr.splitlines()), \
        result.stderr



def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.mark.parametrize("argv", [["-m", "export", "--help"], ["-m", "train", "--help"], ["-m", "train", "fit"]])
def test_without_torch_export_and_train_name_the_extra_in_one_line(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    blocked = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert blocked.returncode != 0 and "No module named 'torch'" in blocked.stderr  # the shim works
    result = subprocess.run([sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: python -m {argv[1]} needs the 'train' extra, and torch is not installed: pip install torch "
        f"--index-url https://download.pytorch.org/whl/cpu, then pip install -e '{REPO}[train]'"
    ]  # a source checkout: the command that installs its own extra, torch first from PyTorch's CPU index
    # The runtime commands need no torch and still answer.
    runtime = subprocess.run([sys.executable, "-m", "runtime.check", "--help"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert runtime.returncode == 0 and "--backend" in runtime.stdout, runtime.stderr
