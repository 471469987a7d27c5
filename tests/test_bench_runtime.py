"""python -m runtime.bench: torch-free, same schema, parity against the stored references."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from export.artifact import ExportOptions, export_artifact
from runtime.bench.resolutions import parse_resolution
from runtime.bench.schema import MEASURED, read_report
from runtime.bench.timing import Timing, paired_ratio
from runtime.errors import UserError
from runtime.quality import MATLAB_BICUBIC
from test_runtime_fixtures import BLOCK_TORCH
from train.models import create_model

ROOT = Path(__file__).resolve().parents[1]
TRAINED = ROOT / "weights" / "dyconvsr_x2"


def bench_without_torch(args: list[object]) -> subprocess.CompletedProcess[str]:
    """``runtime.bench`` in a fresh interpreter where torch, train and export cannot be imported."""
    code = f"{BLOCK_TORCH}; from runtime.bench.cli import main; main({[str(a) for a in args]!r})"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def fp32_onnx_only(extra_strategies: tuple[str, ...]) -> ExportOptions:
    """model.onnx (branches), the given extra lowerings and the tiling graphs: no reduced precision, no IR."""
    return ExportOptions(mobile_shape=None,
                         strategy="branches", extra_strategies=extra_strategies, precisions=(), ort_format=False,
                         tensorrt=(), openvino=())


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("artifact") / "tiny"
    export_artifact(create_model("dyconvsr_tiny", scale=2), folder, fp32_onnx_only(("aggregate",)))
    return folder


def test_device_benchmark_runs_without_torch(artifact: Path, tmp_path: Path) -> None:
    out = tmp_path / "device.json"
    bench_without_torch([artifact, "-r", "12x10", "--rounds", "2", "--warmup", "0", "--backend",
                         "onnxruntime", "--backend", "gpu", "-o", out, "-q", "--machine-name", "device"])
    report = read_report(out)
    assert report.tool == "runtime.bench" and report.machine.name == "device"
    measured = {r.label: r for r in report.rows if r.status == MEASURED}
    assert {"onnxruntime model.onnx", "onnxruntime model.aggregate.onnx"} <= set(measured)
    assert measured["onnxruntime model.onnx"].speedup_paired == pytest.approx(1.0)
    assert all(r.timing.median_ms > 0 and r.throughput_mp_s > 0 for r in measured.values())
    assert any(r.status == "not measured: no GPU" for r in report.rows) or report.machine.gpus
    assert report.checks and all(c["status"] == "pass" for c in report.checks)


def test_named_resolutions_follow_the_scale() -> None:
    assert parse_resolution("720p").lr_size(2) == (360, 640)
    assert parse_resolution("1080p").lr_size(2) == (540, 960)
    assert parse_resolution("4k").lr_size(2) == (1080, 1920)
    assert parse_resolution("720p").lr_size(3) == (240, 427)
    assert parse_resolution("lr256").lr_size(4) == (256, 256)
    assert parse_resolution("64x48").lr_size(2) == (48, 64)
    with pytest.raises(UserError, match="unknown resolution '8k'"):
        parse_resolution("8k")


def test_timing_statistics_and_paired_ratio() -> None:
    timing = Timing([4.0, 1.0, 3.0, 2.0, 5.0], warmup=1, first_run_ms=9.0)
    assert (timing.min_ms, timing.median_ms, timing.runs) == (1.0, 3.0, 5)
    assert timing.median_ms <= timing.p90_ms <= timing.p95_ms <= 5.0
    assert paired_ratio([2.0, 4.0, 6.0], [1.0, 1.0, 3.0]) == 2.0
    with pytest.raises(ValueError):
        paired_ratio([1.0], [1.0, 2.0])


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux /proc/stat")
def test_other_processes_cpu_is_counted_and_our_own_is_not() -> None:
    """A separate process burning CPU shows in the share; the measuring process's own work does not
    (other tests running beside this one can only add to the share, so only lower bounds are safe)."""
    import os
    import time

    from runtime.bench.machine import OtherCpuUse

    cpus = len(os.sched_getaffinity(0))
    burner = ("import time, os\nt = time.process_time()\nwhile time.process_time() - t < 1.0: pass\n"
              "print(time.process_time() - t)")
    probe = OtherCpuUse()
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", burner], stdout=subprocess.PIPE, text=True)
    own_start = time.process_time()
    while time.process_time() - own_start < 0.5:  # our own busy work: excluded
        pass
    burned = float(child.communicate()[0])
    share = probe.share(cpus)
    wall = time.monotonic() - start
    assert share is not None
    assert share >= 0.8 * burned / (wall * cpus)


@pytest.fixture(scope="module")
def trained_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained DyConvSR x2 of weights/, model.onnx (+ tiling graphs) only."""
    if not TRAINED.with_suffix(".json").is_file():
        pytest.skip(f"{TRAINED} not trained here")
    folder = tmp_path_factory.mktemp("trained") / "dyconvsr_x2"
    export_artifact(TRAINED, folder, fp32_onnx_only(()))
    return folder


@pytest.fixture(scope="module")
def hr_folder(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Set5's two smallest images (256x256 and 288x288), one in a sub-folder."""
    folder = tmp_path_factory.mktemp("quality") / "set5_small"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(shared_data / "set5" / "butterfly.png", folder / "butterfly.png")
    shutil.copy(shared_data / "set5" / "bird.png", folder / "sub" / "bird.png")
    return folder


def test_device_quality_beats_bicubic_and_equals_train_evaluate(trained_artifact: Path, hr_folder: Path,
                                                                 tmp_path: Path) -> None:
    from benchmarks.markdown import render_markdown
    from train.evaluate import BICUBIC, evaluate, load_benchmark, load_candidates

    out = tmp_path / "device.json"
    result = bench_without_torch([trained_artifact, "-r", "16x16", "--rounds", "1", "--warmup", "0", "--backend",
                                  "onnxruntime", "--no-check", "--quality", hr_folder, "-o", out])
    assert "\r" not in result.stderr  # no progress bar off a terminal
    report = read_report(out)
    rows = {q.label: q for q in report.quality}
    assert set(rows) == {"onnxruntime model.onnx", MATLAB_BICUBIC}
    engine, bicubic = rows["onnxruntime model.onnx"], rows[MATLAB_BICUBIC]
    assert engine.images == bicubic.images == 2 and engine.dataset == "set5_small" and engine.scale == 2
    assert engine.psnr_y > bicubic.psnr_y + 1.0 and engine.ssim_y > bicubic.ssim_y
    assert report.settings["quality"] == str(hr_folder)
    assert "(bicubic" in result.stdout and "quality set5_small x2 onnxruntime model.onnx" in result.stdout

    host = {r.method: r for r in evaluate(load_candidates([TRAINED]), [load_benchmark(hr_folder)], progress=False)}
    assert {i.image for i in host["dyconvsr_x2"].images} == set(engine.per_image) == {"butterfly.png", "sub/bird.png"}
    for label, method, tolerance in ((engine.label, "dyconvsr_x2", 0.01), (MATLAB_BICUBIC, BICUBIC, 1e-9)):
        for image in host[method].images:
            assert rows[label].per_image[image.image]["psnr_y"] == pytest.approx(image.scores.psnr_y, abs=tolerance)
            assert rows[label].per_image[image.image]["ssim_y"] == pytest.approx(image.scores.ssim_y, abs=1e-3)
    quality = render_markdown([report]).split("## Quality")[1]
    assert f"| onnxruntime model.onnx | fp32 | {engine.psnr_y:.2f} | {engine.ssim_y:.4f} |" in quality
    assert f"| {MATLAB_BICUBIC} | float64 | {bicubic.psnr_y:.2f} |" in quality


@pytest.mark.parametrize("case", ["missing", "empty", "too small"])
def test_device_quality_refuses_bad_folders_in_one_line(artifact: Path, tmp_path: Path, case: str) -> None:
    from click.testing import CliRunner
    from PIL import Image

    from runtime.bench.cli import main

    folder = tmp_path / "hr"
    if case != "missing":
        folder.mkdir()
    if case == "too small":
        Image.new("RGB", (1, 5)).save(folder / "sliver.png")
    expected = {"missing": f"{folder}: not a folder of HR images",
                "empty": f"no images (png, jpg, webp, ...) found under {folder}",
                "too small": "sliver.png: image of shape (5, 1, 3) is smaller than the scale 2"}[case]
    result = CliRunner().invoke(main, [str(artifact), "--quality", str(folder), "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and line.endswith(expected)
    assert not (tmp_path / "out.json").exists()  # refused before any timing or writing
    assert not (tmp_path / "out.json").exists()


def test_device_quality_on_the_authors_protocol_equals_train_evaluate(trained_artifact: Path, hr_folder: Path,
                                                                        tmp_path: Path) -> None:
    from runtime.quality import PROTOCOLS
    from train.evaluate import evaluate, load_benchmark, load_candidates

    out = tmp_path / "device.json"
    bench_without_torch([trained_artifact, "-r", "16x16", "--rounds", "1", "--warmup", "0", "--backend",
                         "onnxruntime", "--no-check", "--quality", hr_folder, "--quality-protocol", "authors",
                         "-o", out])
    report = read_report(out)
    engine = next(q for q in report.quality if q.label == "onnxruntime model.onnx")
    assert report.settings["quality_protocol"] == "authors"
    assert {q.protocol for q in report.quality} == {"authors"}  # each row says it: figures draw the paper beside it
    authors = {r.method: r for r in evaluate(load_candidates([TRAINED]), [load_benchmark(hr_folder)], progress=False,
                                             protocol=PROTOCOLS["authors"])}
    standard = {r.method: r for r in evaluate(load_candidates([TRAINED]), [load_benchmark(hr_folder)], progress=False)}
    for image, theirs in zip(authors["dyconvsr_x2"].images, standard["dyconvsr_x2"].images, strict=True):
        assert engine.per_image[image.image]["psnr_y"] == pytest.approx(image.scores.psnr_y, abs=0.01)
        assert abs(image.scores.psnr_y - theirs.scores.psnr_y) > 0.01  # the protocols differ on this image
