"""python -m runtime.bench: torch-free, same schema, parity against the stored references."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from export.artifact import ExportOptions, export_artifact
from runtime.bench.resolutions import parse_resolution
from runtime.bench.schema import MEASURED, read_report
from runtime.bench.timing import Timing, paired_ratio
from runtime.errors import UserError
from train.models import create_model

ROOT = Path(__file__).resolve().parents[1]
BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['train'] = None; sys.modules['export'] = None"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("artifact") / "tiny"
    options = ExportOptions(strategy="branches", extra_strategies=("aggregate",), precisions=(), ort_format=False,
                            tensorrt=())
    export_artifact(create_model("dyconvsr_tiny", scale=2), folder, options)
    return folder


def test_device_benchmark_runs_without_torch(artifact: Path, tmp_path: Path) -> None:
    out = tmp_path / "device.json"
    code = (f"{BLOCK_TORCH}; from runtime.bench.cli import main; "
            f"main([{str(artifact)!r}, '-r', '12x10', '--rounds', '2', '--warmup', '0', '--backend', 'onnxruntime', "
            f"'--backend', 'gpu', '-o', {str(out)!r}, '-q', '--machine-name', 'device'])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
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
