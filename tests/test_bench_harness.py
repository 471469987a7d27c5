"""benchmarks.run on a tiny model at a tiny size: files written, schema stable, figures sane.

Only the harness is tested here; speed goals are never asserted (see benchmarks/targets.py).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks import run as bench_run
from benchmarks.config import RunConfig
from benchmarks.report import combine
from benchmarks.run import run, write_reports
from benchmarks.targets import Target, evaluate_targets
from runtime.bench.schema import MEASURED, SCHEMA_VERSION, Report, Row, read_report
from runtime.bench.timing import Timing
from runtime.manifest import read_manifest

# The schema's field names: changing any of them must come with a SCHEMA_VERSION bump.
REPORT_KEYS = {"tool", "machine", "versions", "settings", "memory_method", "matmul_peak", "matmul_peaks", "rows",
               "quality", "video", "checks", "notes", "created", "schema", "schema_version"}
ROW_KEYS = {"group", "model", "scale", "resolution", "input_hw", "output_hw", "batch", "label", "backend", "variant",
            "precision", "strategy", "device", "threads", "status", "engine", "timing", "throughput_mp_s", "memory",
            "params", "macs", "flops", "gflops_per_s", "peak_fraction", "reference", "speedup_paired",
            "speedup_of_medians", "parity_psnr_db", "parity_max_abs_diff", "tolerance", "notes"}
TIMING_KEYS = {"samples_ms", "warmup", "first_run_ms", "median_ms", "p90_ms", "p95_ms", "min_ms", "mean_ms", "runs"}
QUALITY_KEYS = {"model", "scale", "label", "backend", "variant", "precision", "dataset", "images", "psnr_y", "ssim_y",
                "psnr_rgb", "params", "psnr_vs_reference_db", "per_image", "protocol"}
ROUNDS = 3


def own_peak(data: dict, precision: str) -> float | None:
    """The best measured matmul peak of ``precision`` in a report's JSON (None: none measured)."""
    measured = [p["gflops"] for p in data["matmul_peaks"] if p["precision"] == precision and p["gflops"]]
    return max(measured, default=None)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("bench")
    config = RunConfig(models=("dyconvsr_tiny", "srcnn_tiny"), resolutions=("16x12",),
                       backends=("pytorch", "onnxruntime", "gpu", "bicubic"), rounds=ROUNDS, warmup=1,
                       out=root / "reports", artifacts=root / "artifacts", quiet=True)
    # Pair the two tiny models the way dyconvsr and its static twin are paired in a real run.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bench_run, "paired_twins", lambda models: {"dyconvsr_tiny": "srcnn_tiny"})
        report, qualities = run(config)
    write_reports(report, qualities, config)
    return config.out, json.loads((config.out / "benchmark.json").read_text())


def test_report_files_written(bench: tuple[Path, dict]) -> None:
    out, _ = bench
    for name in ("benchmark.json", "benchmark.md", "latency_by_resolution.png", "quality_vs_latency.png",
                 "quality_vs_params.png", "visual_comparison.png"):
        assert (out / name).stat().st_size > 0, name
    from PIL import Image

    from benchmarks.visual import CROP, ZOOM

    with Image.open(out / "visual_comparison.png") as visual:  # HR + bicubic + SRCNN + DyConvSR at least
        assert visual.width >= 4 * CROP * ZOOM, visual.size  # crops shown at ZOOM x or more
    markdown = (out / "benchmark.md").read_text()
    assert "dyconvsr_tiny + srcnn_tiny x2, 16x12" in markdown and "not measured: no GPU" in markdown
    assert "srcnn_tiny: onnxruntime model.onnx" in markdown
    assert "Export targets" in markdown


def test_schema_is_stable_and_round_trips(bench: tuple[Path, dict]) -> None:
    out, data = bench
    assert set(data) == REPORT_KEYS and data["schema_version"] == SCHEMA_VERSION
    for row in data["rows"]:
        assert set(row) == ROW_KEYS
        if row["timing"]:
            assert set(row["timing"]) == TIMING_KEYS
    for row in data["quality"]:
        assert set(row) == QUALITY_KEYS
    again = read_report(out / "benchmark.json")
    assert again.to_dict() == data


def test_every_figure_present_and_positive(bench: tuple[Path, dict]) -> None:
    _, data = bench
    assert data["matmul_peak"]["gflops"] > 0 and data["matmul_peak"]["precision"] == "fp32"
    # Every precision has a record saying how its peak was taken, or why it was not.
    assert {p["precision"] for p in data["matmul_peaks"]} >= {"fp32", "bf16", "fp16", "int8"}
    for peak in data["matmul_peaks"]:
        assert peak["method"].startswith("measured: " if peak["gflops"] else "not measured: "), peak
    assert own_peak(data, "int8") is not None  # torch._int_mm or ONNX Runtime MatMulInteger on any CPU
    measured = [r for r in data["rows"] if r["status"] == MEASURED]
    labels = {r["label"] for r in measured}
    assert {"pytorch eager grouped", "pytorch eager branches", "onnxruntime model.onnx", "pillow bicubic"} <= labels
    for row in measured:
        t = row["timing"]
        assert t["runs"] == ROUNDS and len(t["samples_ms"]) == ROUNDS
        assert 0 < t["min_ms"] <= t["median_ms"] <= t["p90_ms"] <= t["p95_ms"]
        for key in ("throughput_mp_s", "macs", "flops", "gflops_per_s", "speedup_paired"):
            assert row[key] is not None and row[key] > 0, (row["label"], key)
        # A fraction exactly where the row's own precision has a measured peak (fp32 always does).
        assert (row["peak_fraction"] is not None) == (own_peak(data, row["precision"]) is not None), row["label"]
        assert row["precision"] != "fp32" or row["peak_fraction"] > 0
        assert row["memory"]["peak_rss_mb"] > 0 and row["memory"]["added_mb"] >= 0
        if row["backend"] != "pillow":
            assert row["params"] > 0
    for q in data["quality"]:
        assert q["psnr_y"] > 0 and 0 < q["ssim_y"] <= 1 and q["images"] == 3


def test_ratios_and_rates_follow_from_the_timings(bench: tuple[Path, dict]) -> None:
    _, data = bench
    for group, model in {(r["group"], r["model"]) for r in data["rows"]}:
        rows = {r["label"]: r for r in data["rows"]
                if (r["group"], r["model"]) == (group, model) and r["status"] == MEASURED}
        reference = rows[next(iter(rows.values()))["reference"]]
        assert reference["speedup_paired"] == pytest.approx(1.0)
        for row in rows.values():
            ref_t, t = np.array(reference["timing"]["samples_ms"]), np.array(row["timing"]["samples_ms"])
            assert row["speedup_paired"] == pytest.approx(float(np.median(ref_t / t)))
            ratio = reference["timing"]["median_ms"] / row["timing"]["median_ms"]
            assert row["speedup_of_medians"] == pytest.approx(ratio)
            seconds = row["timing"]["median_ms"] / 1000
            assert row["flops"] == 2 * row["macs"]
            assert row["gflops_per_s"] == pytest.approx(row["flops"] / seconds / 1e9)
            peak = own_peak(data, row["precision"])
            assert row["peak_fraction"] == (None if peak is None else pytest.approx(row["gflops_per_s"] / peak))
            h, w = row["output_hw"]
            assert row["throughput_mp_s"] == pytest.approx(row["batch"] * h * w / 1e6 / seconds)


def test_twins_are_timed_in_the_same_rounds(bench: tuple[Path, dict]) -> None:
    _, data = bench
    rows = [r for r in data["rows"] if r["status"] == MEASURED]
    assert {r["group"] for r in rows} == {"dyconvsr_tiny x2 16x12"}
    assert {r["model"] for r in rows} == {"dyconvsr_tiny", "srcnn_tiny"}
    assert {len(r["timing"]["samples_ms"]) for r in rows} == {ROUNDS}
    # Each model keeps its own reference: the partner's output is a different function.
    assert {r["model"]: r["reference"] for r in rows} == {"dyconvsr_tiny": "pytorch eager grouped",
                                                          "srcnn_tiny": "pytorch eager"}


def test_gpu_rows_are_listed_not_measured(bench: tuple[Path, dict]) -> None:
    _, data = bench
    gpu = [r for r in data["rows"] if r["device"] == "gpu"]
    assert gpu, "GPU engines must be listed even where they cannot run"
    if not data["machine"]["gpus"]:
        assert all(r["status"] == "not measured: no GPU" and r["timing"] is None for r in gpu)


def test_engines_agree_with_the_pytorch_reference(bench: tuple[Path, dict]) -> None:
    _, data = bench
    for row in data["rows"]:
        if row["status"] == MEASURED and row["precision"] == "fp32" and row["backend"] != "pillow":
            assert row["parity_max_abs_diff"] is None or row["parity_max_abs_diff"] <= 1e-4, row["label"]
    for q in data["quality"]:
        if q["precision"] == "fp32" and q["psnr_vs_reference_db"] is not None:
            assert q["psnr_vs_reference_db"] > 80 or math.isinf(q["psnr_vs_reference_db"])


def test_reports_from_several_machines_merge(bench: tuple[Path, dict], tmp_path: Path) -> None:
    out, data = bench
    device = dict(data, tool="runtime.bench", machine=dict(data["machine"], name="jetson"))
    device["rows"] = [dict(r, macs=None, flops=None, gflops_per_s=None, peak_fraction=None) for r in data["rows"]]
    (tmp_path / "device.json").write_text(json.dumps(device))
    markdown = combine([out / "benchmark.json", tmp_path / "device.json"], tmp_path / "combined").read_text()
    assert "| jetson |" in markdown and f"| {data['machine']['name']} |" in markdown


def test_rows_carry_the_source_their_manifest_records(bench: tuple[Path, dict]) -> None:
    out, data = bench
    sources = {}
    for path in (out.parent / "artifacts").rglob("manifest.json"):
        manifest = read_manifest(path.parent)
        sources[manifest.model_name] = {v.file: v.source for v in manifest.variants}
    rows = [r for r in data["rows"] if r["backend"] == "onnxruntime" and r["status"] == MEASURED]
    assert any(r["precision"] == "int8" for r in rows) and any(r["variant"] == "model.ort" for r in rows)
    for row in rows:
        assert row["notes"].get("source") == sources[row["model"]][row["variant"]], row["label"]


def _row(label: str, variant: str, precision: str, median_ms: float, source: str | None = None,
         backend: str = "onnxruntime") -> Row:
    fp32 = precision == "fp32"
    return Row(group="g", model="dyconvsr", scale=2, resolution="720p", input_hw=[360, 640], output_hw=[720, 1280],
               batch=1, label=label, backend=backend, variant=variant, precision=precision, strategy="stacked",
               device="cpu", threads=2, status=MEASURED, timing=Timing([median_ms] * 3, 1, median_ms),
               reference="pytorch eager", parity_max_abs_diff=0.0 if fp32 else 0.01,
               parity_psnr_db=None if fp32 else 45.0, notes={"source": source} if source else {})


def reduced_precision_target(report: Report) -> Target:
    return next(t for t in evaluate_targets(report) if t.claim.startswith("a reduced-precision variant"))


def test_targets_pair_reduced_precision_with_its_recorded_source() -> None:
    rows = [
        _row("pytorch eager", "grouped", "fp32", 100.0, backend="pytorch"),
        # Same lowering, listed first, but not the file the INT8 graph was quantised from.
        _row("onnxruntime model.stacked.1x360x640.onnx", "model.stacked.1x360x640.onnx", "fp32", 60.0),
        _row("onnxruntime model.stacked.onnx", "model.stacked.onnx", "fp32", 30.0),
        _row("onnxruntime model.int8.onnx", "model.int8.onnx", "int8", 10.0, "model.stacked.onnx"),
    ]
    report = Report("benchmarks.run", None, {}, {}, "rss", None, rows=rows)
    target = reduced_precision_target(report)
    assert target.value == "3.00x, quality not measured"
    assert target.detail.startswith("onnxruntime model.int8.onnx vs onnxruntime model.stacked.onnx ")
    # A report from before rows carried the source: the fp32 row of the same lowering.
    rows[-1].notes = {}
    assert reduced_precision_target(report).value == "6.00x, quality not measured"
