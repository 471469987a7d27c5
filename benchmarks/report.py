"""``python -m benchmarks.report FILE.json...``: merge benchmark reports from several machines.

Rows keep their machine; MACs missing from a device report (runtime.bench cannot trace without
torch) are filled from a host report's row of the same model, scale, input size and lowering,
and GFLOP/s are then recomputed against that device's own matmul peak of each row's precision.
One report gets every figure benchmarks.run draws (so figures can be redrawn from a JSON file);
several get one latency figure per machine.
"""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import click

from runtime.bench.schema import Report, derive_figures, read_report
from runtime.cli_options import NamedPath
from runtime.errors import UserError, cli_errors
from runtime.files import atomic_write_bytes
from runtime.host import install_command

from .markdown import render_markdown


def fill_macs(reports: list[Report]) -> int:
    """Copy MACs/params into rows lacking them from any report's matching row; returns how many."""
    known: dict[tuple, tuple[int | None, int]] = {}
    for report in reports:
        for row in report.rows:
            if row.macs is not None:
                known[(row.model, row.scale, tuple(row.input_hw), row.batch, row.strategy)] = (row.params, row.macs)
    filled = 0
    for report in reports:
        for row in report.rows:
            key = (row.model, row.scale, tuple(row.input_hw), row.batch, row.strategy)
            if row.macs is None and key in known:
                row.params, row.macs = known[key]
                row.notes["macs_from"] = "traced on another machine's report (same model, size, lowering)"
                derive_figures(row, report.matmul_peaks)
                filled += 1
    return filled


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "machine"


def combine(paths: list[Path], out: Path, figures: bool = True) -> Path:
    if not paths:
        raise UserError("give at least one benchmark JSON file")
    if figures and importlib.util.find_spec("matplotlib") is None:  # a device install has no train extra
        raise UserError(f"the figures need matplotlib, which is not installed: {install_command('train')}; "
                        "or pass --no-figures for the tables alone")
    reports = [read_report(p) for p in paths]
    fill_macs(reports)
    out.mkdir(parents=True, exist_ok=True)
    drawn: dict[str, str] = {}
    if figures and len(reports) == 1:
        from .plots import write_plots

        drawn = write_plots(reports[0], out)
    elif figures:
        from .plots import latency_by_resolution

        for report in reports:
            name = f"latency_{_slug(report.machine.name)}_{_slug(report.tool)}.png"
            if latency_by_resolution(report, out / name):
                drawn[f"latency on {report.machine.name} ({report.tool})"] = name
    target = out / "benchmark.md"
    atomic_write_bytes(target, render_markdown(reports, drawn).encode())
    return target


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, type=NamedPath(dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=NamedPath(file_okay=False, path_type=Path), default=Path("reports/combined"),
              show_default=True, help="Folder for the merged benchmark.md and the figures (every figure for one file, "
                   "a latency figure per machine for several).")
@click.option("--no-figures", is_flag=True, help="Skip the PNG plots.")
@cli_errors
def main(files: tuple[Path, ...], out: Path, no_figures: bool) -> None:
    """Merge benchmark JSON FILES (from benchmarks.run and runtime.bench, any machines) into one report.

    Every file must follow the same schema version; tables gain a machine column.
    """
    click.echo(f"wrote {combine(list(files), out, not no_figures)}")


if __name__ == "__main__":
    main(sys.argv[1:])
