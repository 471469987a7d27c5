"""The device side in the installs devices have: a fresh torch-free venv with only the wheel's ``cpu`` extra, and
one with ``cpu,litert-runtime,reference``, each built here from the wheel (pip, the package registries). An
artifact holding OpenVINO and LiteRT files is proven PASS in both: what an install lacks is a named skip, never
a failure."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_runtime_fixtures import SAMPLE


def device_venv(root: Path, wheel: Path, extras: str) -> Path:
    """A venv with the wheel and ``extras`` only (no torch), built once per session."""
    folder = root / f"venv-{extras.replace(',', '-')}"
    python = folder / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[{extras}]"],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"pip could not install the wheel with [{extras}] here: {done.stderr.strip()[-300:]}")
    return folder


def run(venv: Path, script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(venv / "bin" / script), *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env=env)


@pytest.mark.slow
@pytest.mark.parametrize("extras", ["cpu", "cpu,litert-runtime,reference"])
def test_a_device_install_proves_the_artifact_and_names_what_it_skips(
        extras: str, wheel: Path, litert_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    venv = device_venv(tmp_path_factory.getbasetemp(), wheel, extras)
    work = tmp_path_factory.mktemp("elsewhere")
    torch = run(venv, "python", "-c", "import torch", cwd=work)
    assert torch.returncode != 0 and "No module named 'torch'" in torch.stderr
    check = run(venv, "dyconvsr-check", str(litert_artifact), cwd=work)
    assert check.returncode == 0 and "verdict: PASS" in check.stdout, check.stdout + check.stderr
    rows = {line.split()[0]: line for line in check.stdout.splitlines() if line.startswith(("model.", "tiled"))}
    assert rows["model.onnx"].rstrip().endswith("pass")
    for name, row in rows.items():
        if name.endswith(".tflite"):
            wanted = "pass" if "litert" in extras else "skip: the LiteRT backend needs the optional extra"
            assert wanted in row, row
        if name.endswith(".xml"):  # neither install has OpenVINO
            assert f"skip: the OpenVINO backend needs the optional extra: pip install '{wheel}[openvino]'" in row, row
    arbiter = run(venv, "dyconvsr-check", str(litert_artifact), "--backend", "onnx-reference", cwd=work)
    if "reference" in extras:  # the ONNX specification's own evaluator, torch-free
        assert arbiter.returncode == 0 and "verdict: PASS" in arbiter.stdout, arbiter.stdout + arbiter.stderr
        assert any(line.startswith("model.onnx ") and "onnx reference evaluator" in line
                   for line in arbiter.stdout.splitlines()), arbiter.stdout
    else:  # the required model.onnx cannot run on a backend that is not installed: a failure naming the extra
        assert arbiter.returncode == 1 and f"pip install '{wheel}[reference]'" in arbiter.stdout, arbiter.stdout
    tflite = next(name for name in rows if name.endswith(".int8.tflite"))
    infer = run(venv, "dyconvsr-upscale", str(litert_artifact), str(SAMPLE), "-o", str(work / "out"),
                "--variant", tflite, cwd=work)
    if "litert" in extras:
        assert infer.returncode == 0, infer.stderr
        assert (work / "out" / "astronaut_crop_x2.png").is_file()
    else:
        assert infer.returncode == 2 and infer.stderr.count("\n") == 1
        assert "without --variant this machine runs model.onnx" in infer.stderr


@pytest.mark.slow
def test_a_device_install_upscales_and_proves_a_packaged_model_by_name(
        wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 25's done-when: a torch-free [cpu] install, an unrelated folder, the model by name: a JPEG upscaled
    x2 by the network then resized to x3 and kept a JPEG, and the packaged engines proven PASS."""
    from PIL import Image

    venv = device_venv(tmp_path_factory.getbasetemp(), wheel, "cpu")
    work = tmp_path_factory.mktemp("photos_elsewhere")
    Image.open(SAMPLE).convert("RGB").save(work / "photo.jpg", quality=92)
    width, height = Image.open(work / "photo.jpg").size
    up = run(venv, "dyconvsr-upscale", "dyconvsr_x2", "photo.jpg", "-s", "3", "--ext", "auto", cwd=work)
    assert up.returncode == 0, up.stderr
    out = Image.open(work / "upscaled" / "photo_x3.jpg")
    assert out.format == "JPEG" and out.size == (3 * width, 3 * height)
    check = run(venv, "dyconvsr-check", "dyconvsr_x2", cwd=work)
    assert check.returncode == 0 and "verdict: PASS" in check.stdout, check.stdout + check.stderr
    assert "site-packages/dyconvsr_engines/dyconvsr_x2.artifact" in check.stdout.splitlines()[0]
    unknown = run(venv, "dyconvsr-check", "dyconvsr_x9", cwd=work)
    assert unknown.returncode == 2 and "'dyconvsr_x9' is neither a file or folder here nor a packaged model " \
        "(dyconvsr_x2, dyconvsr_x3, dyconvsr_x4)" in unknown.stderr, unknown.stderr


@pytest.mark.slow
def test_a_device_install_merges_benchmark_reports_and_says_what_figures_need(
        wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """benchmarks.report on a torch-free [cpu] install: the tables from a real report, and for the figures
    one line naming what to install (was a 34-line traceback)."""
    venv = device_venv(tmp_path_factory.getbasetemp(), wheel, "cpu")
    work = tmp_path_factory.mktemp("reports_elsewhere")
    report = Path(__file__).resolve().parents[1] / "reports" / "benchmark.json"
    tables = run(venv, "python", "-m", "benchmarks.report", str(report), "--no-figures", "-o", "merged", cwd=work)
    assert tables.returncode == 0, tables.stderr
    assert (work / "merged" / "benchmark.md").read_text().startswith("#")
    figures = run(venv, "python", "-m", "benchmarks.report", str(report), "-o", "figs", cwd=work)
    assert figures.returncode == 2 and figures.stderr.splitlines() == [
        "error: the figures need matplotlib, which is not installed: pip install torch --index-url "
        f"https://download.pytorch.org/whl/cpu, then pip install '{wheel}[train]'; or pass --no-figures for the "
        "tables alone"], figures.stderr  # the hint installs from the wheel this venv came from
    assert not (work / "figs").exists()
