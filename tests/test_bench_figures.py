"""What a user sees of a benchmark, from the real reports/benchmark.json: peak fractions per precision,
the figures, the markdown header and the README's generated block."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from benchmarks.markdown import render_markdown
from benchmarks.peak import torch_int8_peak
from benchmarks.plots import scatter_points, write_plots
from benchmarks.readme import BEGIN, END, replace_block, update_readme
from runtime.bench.machine import numpy_matmul_peak, peak_for, torch_free_peaks
from runtime.bench.schema import MEASURED, derive_figures, read_report
from runtime.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "benchmark.json"
pytestmark = pytest.mark.skipif(not REPORT.is_file(), reason="reports/benchmark.json not generated yet")


@pytest.fixture(scope="module")
def data() -> dict:
    return json.loads(REPORT.read_text())


def _best(data: dict, precision: str) -> float | None:
    values = [p["gflops"] for p in data["matmul_peaks"] if p.get("precision", "fp32") == precision and p["gflops"]]
    return max(values, default=None)


def test_every_row_is_judged_against_its_own_precision(data: dict) -> None:
    report = read_report(REPORT)
    measured = [r for r in report.rows if r.measured and r.gflops_per_s is not None]
    assert {r.precision for r in measured} >= {"fp32", "bf16", "int8"}
    for row in measured:
        peak = _best(data, row.precision)
        if peak is None:
            assert row.peak_fraction is None, row.label  # never divided by another precision's peak
        else:
            assert row.peak_fraction == pytest.approx(row.gflops_per_s / peak), row.label


def test_a_measured_int8_peak_is_the_denominator_of_int8_rows_only() -> None:
    report = read_report(REPORT)
    int8 = torch_int8_peak(threads=0, size=256, repeats=2)
    assert int8.gflops > 0 and int8.precision == "int8" and int8.method.startswith("measured: ")
    peaks = [*report.matmul_peaks, int8]
    best = {p.precision: max(q.gflops for q in report.matmul_peaks if q.precision == p.precision)
            for p in report.matmul_peaks if p.gflops}
    best["int8"] = max(best.get("int8", 0.0), int8.gflops)  # the highest int8 peak measured
    for row in report.rows:
        derive_figures(row, peaks)
        if not row.measured or row.gflops_per_s is None:
            continue
        expected = best.get(row.precision)
        assert row.peak_fraction == (None if expected is None else pytest.approx(row.gflops_per_s / expected))


def test_torch_free_peaks_leave_other_precisions_unknown() -> None:
    peaks = torch_free_peaks(size=256)
    assert peak_for("fp32", peaks).gflops > 0
    for precision in ("bf16", "fp16", "int8"):
        assert peak_for(precision, peaks) is None
        assert any(p.precision == precision and p.method.startswith("not measured: ") for p in peaks)
    small = numpy_matmul_peak(size=64, repeats=1)
    assert peak_for("fp32", [small, *peaks]).gflops == max(small.gflops, peaks[0].gflops)  # the best one


def test_figures_are_written_from_the_real_report(tmp_path: Path) -> None:
    figures = write_plots(read_report(REPORT), tmp_path)
    assert set(figures) == {"latency_by_resolution", "quality_vs_latency", "quality_vs_params"}
    for name in figures.values():
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width >= 600 and image.height >= 300, name


def test_the_scatter_holds_the_fastest_engine_per_model_and_backend(data: dict) -> None:
    points = scatter_points(read_report(REPORT))
    size = "720p"
    timed = {(r["model"], r["label"]): r for r in data["rows"] if r["status"] == MEASURED and r["resolution"] == size}
    with_quality = [timed[(q["model"], q["label"])] for q in data["quality"] if (q["model"], q["label"]) in timed]
    families = {"pytorch": "PyTorch", "torch.compile": "PyTorch", "onnxruntime": "ONNX Runtime",
                "openvino": "OpenVINO", "litert": "LiteRT", "pillow": "bicubic"}
    expected = {}
    for row in with_quality:
        key = ("", "bicubic") if row["backend"] == "pillow" else (row["model"], families[row["backend"]])
        expected[key] = min(expected.get(key, float("inf")), row["timing"]["median_ms"])
    got = {("" if p.family == "bicubic" else p.model, p.family): p.median_ms for p in points}
    assert got == expected
    assert len(points) < len(with_quality)  # the rest are in the tables, not the figure


def test_markdown_names_the_machine_and_date(data: dict) -> None:
    markdown = render_markdown([read_report(REPORT)])
    header = markdown.split("## Machines")[0]
    assert data["machine"]["cpu"] in header and data["created"][:10] in header
    m = data["machine"]
    assert f"{m['usable_cpus']} CPUs" in header or f"{m['usable_cpus']} of {m['logical_cpus']} CPUs" in header
    assert "## Matrix-multiply peaks" in markdown


def test_replace_block_replaces_exactly_the_marked_text() -> None:
    text = f"# Title\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n"
    assert replace_block(text, "new") == f"# Title\n\nbefore\n{BEGIN}\nnew\n{END}\nafter\n"
    for broken in ("no markers\n", f"{END}\n{BEGIN}\n", f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n"):
        with pytest.raises(UserError, match="exactly one"):
            replace_block(broken, "new")


def test_update_readme_rewrites_only_its_block_from_the_real_report(data: dict, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    head, tail = text.split(BEGIN)[0], text.split(END)[1]
    readme.write_text(f"{head}{BEGIN}\nstale table\n{END}{tail}")
    folder = tmp_path / "reports"
    folder.mkdir()
    shutil.copy(REPORT, folder / "benchmark.json")
    (folder / "latency_by_resolution.png").write_bytes((REPORT.parent / "latency_by_resolution.png").read_bytes())
    update_readme(readme, folder / "benchmark.json")
    new = readme.read_text()
    assert new.startswith(head + BEGIN) and new.endswith(END + tail) and "stale table" not in new
    block = new.split(BEGIN)[1].split(END)[0]
    assert data["machine"]["cpu"] in block and data["created"][:10] in block
    reference = next(r for r in data["rows"] if r["model"] == "dyconvsr" and r["resolution"] == "720p"
                     and r["label"] == r["reference"])
    assert f"| {reference['label']} | fp32 | {reference['timing']['median_ms']:.2f} |" in block
    # Only figures that exist are linked, by their path relative to the README.
    assert "(reports/latency_by_resolution.png)" in block and "quality_vs_latency.png" not in block
    update_readme(readme, folder / "benchmark.json")
    assert readme.read_text() == new  # idempotent: a second make bench changes nothing without new numbers


def test_video_rows_make_a_table_in_the_markdown_and_the_readme(tmp_path: Path) -> None:
    from runtime.bench.schema import VideoRow

    report = read_report(REPORT)
    row = {"model": "dyconvsr", "scale": 2, "label": "", "backend": "openvino", "threads": 2, "frames": 30,
           "codec": "libx264", "preset": "veryfast"}
    report.video = [
        VideoRow(**row, resolution="1080p", input_hw=[540, 960], output_hw=[1080, 1920], variant=f"v{n}.xml",
                 precision="int8", status=MEASURED, engine_fps=10.0 + n, end_to_end_fps=9.0 + n,
                 end_to_end_share=(9.0 + n) / (10.0 + n), decode_ms=1.5, encode_ms=12.25) for n in range(4)]
    report.video.append(VideoRow(**row, resolution="720p", input_hw=[360, 640], output_hw=[720, 1280],
                                 variant="model.mobile.360x640.tflite", precision="fp32",
                                 status="not measured: LiteRT not installed"))
    markdown = render_markdown([report])
    video = markdown.split("## Video")[1].split("\n## ")[0]
    assert "| 1080p: 960x540 -> 1920x1080 | v3.xml | int8 | 13.0 | 12.0 | 92% | 1.5 | 12.2 |" in video
    assert "| 720p: 640x360 -> 1280x720 | model.mobile.360x640.tflite | fp32 | not measured" in video
    folder = tmp_path / "reports"
    folder.mkdir()
    report.write(folder / "benchmark.json")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n{BEGIN}\nstale\n{END}\n")
    update_readme(readme, folder / "benchmark.json")
    block = readme.read_text().split(BEGIN)[1]
    assert "#### Video, dyconvsr x2: fastest 3 variants per size" in block
    assert "v3.xml" in block and "v1.xml" in block and "v0.xml" not in block  # the 3 fastest, fastest first
    table = block.split("#### Video, dyconvsr x2")[1].split("\n\n")[1]
    assert table.index("v3.xml") < table.index("v1.xml") and "tflite" not in table  # not-measured rows left out


@pytest.mark.parametrize(("dataset", "protocol", "drawn"), [("embedded-val", "standard", False),
                                                            ("set5", "standard", False), ("set5", "authors", True)])
def test_the_papers_figures_share_an_axis_only_with_set5_on_the_authors_protocol(
        dataset: str, protocol: str, drawn: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The published Set5 lines and points were measured by the authors' protocol: drawn over another set or
    protocol they make every model look short (issue 25), so there the note says why they are absent."""
    import dataclasses

    import benchmarks.plots as plots

    report = read_report(REPORT)
    report.quality = [dataclasses.replace(q, dataset=dataset, protocol=protocol) for q in report.quality]
    seen: dict[str, tuple[list[str], str]] = {}

    def capture(plt, fig, ax, path, report, xlabel, ylabel, title, note=""):
        seen[path.name] = ([t.get_text() for t in ax.texts] + [ylabel], note)
        plt.close(fig)

    monkeypatch.setattr(plots, "_finish_log_x", capture)
    assert plots.quality_vs_latency(report, tmp_path / "latency.png")
    assert plots.quality_vs_params(report, tmp_path / "params.png")
    texts, note = seen["latency.png"]
    assert any(t.startswith("published DyConvSR") for t in texts) == drawn
    assert f"on {dataset}, {protocol} protocol" in texts[-1]
    legend = seen["params.png"][1]
    assert ("are not drawn" in note and "are not drawn" in legend) != drawn, (note, legend)
