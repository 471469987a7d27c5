"""``python -m benchmarks.readme``: rewrite the README's benchmark block from reports/benchmark.json.

Only the text between ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` is replaced: the tables,
the machine and date they came from, and the figures with their captions. ``make bench`` runs it
after the benchmarks, so the README never shows numbers other than the report's.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path, PurePosixPath

import click

from runtime.bench.schema import MEASURED, Report, Row, read_report
from runtime.cli_options import NamedPath
from runtime.errors import UserError, cli_errors
from runtime.files import atomic_write_bytes

from .markdown import (
    MACHINES_FOLDER,
    VIDEO_HEADER,
    busy,
    fmt,
    md_table,
    parity_text,
    peak_text,
    precisions_of,
    provenance,
    report_machine_kind,
    taken,
    video_cells,
)
from .plots import headline_size
from .targets import MODEL, SCALE

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
# Figure file (in the report's folder) -> caption; a figure is linked only when its file exists.
FIGURES = {
    "latency_by_resolution.png": "Median latency by output size, one panel per model and backend family "
                                 "(grey dashed: the model's PyTorch eager reference).",
    "quality_vs_latency.png": "Y-PSNR against median latency: the fastest engine per model and backend.",
    "quality_vs_params.png": "Y-PSNR against parameters, measured here and published (DyConvSR Table 1).",
    "visual_comparison.png": "The same crops upscaled by every method, with each image's Y-PSNR.",
}


def _psnr(report: Report, row: Row) -> str:
    q = next((q for q in report.quality if (q.model, q.scale, q.label) == (row.model, row.scale, row.label)), None)
    return "-" if q is None else f"{q.psnr_y:.2f}"


def main_table(report: Report, size: str) -> list[str]:
    """Every engine of the main model (DyConvSR x2, else the first model) at ``size``."""
    models = [(r.model, r.scale) for r in report.rows if r.measured and r.resolution == size]
    model, scale = (MODEL, SCALE) if (MODEL, SCALE) in models else models[0]
    rows = [r for r in report.rows if (r.model, r.scale, r.resolution) == (model, scale, size)]
    measured = [r for r in rows if r.measured]
    first = measured[0]
    (h, w), (oh, ow) = first.input_hw, first.output_hw
    dataset = next((q.dataset for q in report.quality if q.model == model), None)
    cells = [(r.label, r.precision, fmt(r.timing.median_ms, 2), fmt(r.timing.p90_ms, 2), fmt(r.speedup_paired, 2, "x"),
              fmt(r.peak_fraction * 100 if r.peak_fraction is not None else None, 0, "%"), _psnr(report, r),
              parity_text(r)) for r in measured]
    lines = [f"#### {model} x{scale}, {size}: {w}x{h} -> {ow}x{oh}, batch {first.batch}, {first.threads} threads", "",
             *md_table(("engine", "precision", "median ms", "p90 ms",
                        f"speed-up vs {first.reference or 'reference'} (median of per-round ratios)",
                        "of own-precision peak", f"Y-PSNR ({dataset or 'not measured'})", "vs reference output"),
                       cells)]
    missing = sorted({f"{r.label} ({r.status})" for r in rows if not r.measured})
    if missing:
        lines += ["", "Not measured here: " + "; ".join(missing) + "."]
    return [*lines, ""]


def models_table(report: Report, size: str) -> list[str]:
    """One line per model at ``size``: its fastest engine (bicubic aside) against its PyTorch reference."""
    cells = []
    for model, scale in dict.fromkeys((r.model, r.scale) for r in report.rows):
        rows = [r for r in report.rows if (r.model, r.scale, r.resolution) == (model, scale, size)
                and r.measured and r.backend != "pillow"]
        if not rows:
            continue
        fastest = min(rows, key=lambda r: r.timing.median_ms)
        reference = next((r for r in rows if r.label == fastest.reference), None)
        cells.append((f"{model} x{scale}", fmt(fastest.params / 1e3 if fastest.params else None, 1, "K"),
                      fastest.label, fmt(fastest.timing.median_ms, 2),
                      fmt(reference.timing.median_ms if reference else None, 2), fmt(fastest.speedup_paired, 2, "x"),
                      _psnr(report, reference) if reference else "-"))
    header = ("model", "params", "fastest engine", "median ms", "PyTorch eager ms", "speed-up", "Y-PSNR (eager)")
    return [f"#### Every model at {size}", "", *md_table(header, cells), ""]


VIDEO_PER_SIZE = 3  # the README shows this many variants per size, fastest end to end first


def video_table(report: Report) -> list[str]:
    """The main model's fastest video variants per size (end to end); empty without measured video rows."""
    rows = [v for v in report.video if v.status == MEASURED and v.end_to_end_fps is not None]
    if not rows:
        return []
    main = [v for v in rows if (v.model, v.scale) == (MODEL, SCALE)] or [v for v in rows if v.model == rows[0].model]
    shown = []
    for size in dict.fromkeys(v.resolution for v in main):
        shown += sorted((v for v in main if v.resolution == size), key=lambda v: -v.end_to_end_fps)[:VIDEO_PER_SIZE]
    first = shown[0]
    return [f"#### Video, {first.model} x{first.scale}: fastest {VIDEO_PER_SIZE} variants per size end to end "
            f"({first.frames} frames, {first.codec} {first.preset or ''}, {first.threads} threads)", "",
            *md_table(VIDEO_HEADER, video_cells(shown)), ""]


def readme_block(report: Report, report_path: str, figure_paths: dict[str, str],
                 machines: list[tuple[str, Report]] | None = None) -> str:
    """The generated README text; ``figure_paths``: figure file name -> its path relative to the README."""
    m, settings = report.machine, report.settings
    size = headline_size(report)
    if size is None:
        raise UserError(f"{report_path} has no measured row to put in the README")
    other = "" if m.other_cpu_share is None else f"; other processes used {m.other_cpu_share:.0%} of the CPUs"
    lines = [f"<!-- generated by `python -m benchmarks.readme {report_path}` (run by `make bench`); "
             "edit benchmarks/readme.py, not this block -->", "",
             f"Measured on **{provenance(report)}**; ISA: {' '.join(m.isa) or 'not read'}; "
             f"{settings.get('rounds', '?')} paired rounds after {settings.get('warmup', '?')} warm-up runs{other}."]
    if busy(report):
        lines += ["", "**The machine was busy during this run: the latencies are noisy.**"]
    peaks = ", ".join(f"{p} {peak_text(report.peak_of(p))}" for p in precisions_of(report))
    lines += ["", f"Matrix-multiply peaks in GFLOP/s (int8: GOP/s), the denominators of 'of own-precision peak': "
              f"{peaks}.", ""]
    lines += [*(f"- {note}" for note in report.notes), ""] if report.notes else []
    lines += main_table(report, size)
    lines += models_table(report, size)
    lines += video_table(report)
    lines += machines_section(report, machines or [])
    tables = PurePosixPath(report_path).with_suffix(".md")
    lines += [f"Every size, engine and figure (p95, memory, MACs, GFLOP/s, export targets): [{tables}]({tables}).",
              ""]
    for name, caption in FIGURES.items():
        if name in figure_paths:
            alt = name.removesuffix(".png").replace("_", " ")
            lines += [f"![{alt}]({figure_paths[name]})", "", f"*{caption} {provenance(report)}.*", ""]
    return "\n".join(lines).rstrip("\n")


def machine_reports(report_file: Path) -> list[tuple[str, Report]]:
    """(machine kind, its latest run) for every kind kept beside ``report_file`` (``machines/<kind>.json``)."""
    folder = report_file.parent / MACHINES_FOLDER
    found = [read_report(path) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    return sorted(((report_machine_kind(r), r) for r in found), key=lambda item: item[0])


def machines_section(report: Report, others: list[tuple[str, Report]]) -> list[str]:
    """Which file wins where: the main model's fastest engine per machine kind, then every other kind's table."""
    cells, tables = [], []
    for kind, run in others or [(report_machine_kind(report), report)]:
        size = headline_size(run)
        rows = [r for r in run.rows if (r.model, r.scale, r.resolution) == (MODEL, SCALE, size) and r.measured
                and r.backend != "pillow"]
        if not rows:
            continue
        fastest = min(rows, key=lambda r: r.timing.median_ms)
        ort = next((r for r in rows if r.label == "onnxruntime model.onnx"), None)
        eager = next((r for r in rows if r.label == fastest.reference), None)
        cells.append((kind, taken(run), " ".join(run.machine.isa) or "-", size, fastest.label,
                      fmt(fastest.timing.median_ms, 2), fmt(ort.timing.median_ms if ort else None, 2),
                      fmt(eager.timing.median_ms if eager else None, 2), fmt(fastest.speedup_paired, 2, "x")))
        if run.created != report.created:
            tables += [f"##### {kind}: {provenance(run)}", "", *main_table(run, size)]
    header = ("machine kind", "measured", "ISA", "size", f"fastest {MODEL} x{SCALE} file", "median ms",
              "ORT model.onnx ms", "PyTorch eager ms", "fastest vs eager")
    note = ("Each kind's latest `make bench` (reports/machines/<kind>.json); a kind measured by no session yet has no "
            "row. On a device, `dyconvsr-check ARTIFACT --tune` measures which file wins there, and "
            "`dyconvsr-upscale` runs it.")
    return ["#### Which file wins where (one row per machine kind)", "", *md_table(header, cells), "", note, "",
            *tables]


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between the one BEGIN and the one END marker replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise UserError(f"the README must hold exactly one {BEGIN} followed by one {END}; found "
                        f"{text.count(BEGIN)} and {text.count(END)}")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block}\n{END}{tail}"


def update_readme(readme: Path, report_file: Path) -> Path:
    report = read_report(report_file)
    base = readme.parent

    def relative(path: Path) -> str:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()

    figures = {name: relative(report_file.parent / name) for name in FIGURES if (report_file.parent / name).is_file()}
    try:
        text = readme.read_text()
    except FileNotFoundError:
        raise UserError(f"README {readme} not found") from None
    block = readme_block(report, relative(report_file), figures, machine_reports(report_file))
    atomic_write_bytes(readme, replace_block(text, block).encode())
    return readme


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("report", type=NamedPath(dir_okay=False, path_type=Path), default=Path("reports/benchmark.json"))
@click.option("--readme", type=NamedPath(dir_okay=False, path_type=Path), default=Path("README.md"),
              show_default=True, help="The file whose bench:begin/bench:end block is rewritten.")
@cli_errors
def main(report: Path, readme: Path) -> None:
    """Rewrite README's generated benchmark block from REPORT (default reports/benchmark.json).

    The figures beside REPORT are linked with the machine and date they came from.
    """
    click.echo(f"wrote {update_readme(readme, report)}")


if __name__ == "__main__":
    main(sys.argv[1:])
