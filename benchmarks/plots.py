"""PNG figures from a report: latency by size per backend, quality vs latency and vs parameters.

Every figure's footer names the machine (CPU model, cores, host) and date it came from. Published
points (DyConvSR Table 1) are drawn hollow or dashed and labelled "published"; they were measured
by the paper's authors on other images (Set5), never by this run.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from runtime.backends import TITLES
from runtime.bench.schema import Report, Row

from .markdown import busy, provenance
from .published import SOURCE, TABLE1_X2

DPI = 100
PUBLISHED_SET = "Set5"
# Small multiples: one panel per model and backend family, so no panel holds more than a handful of lines.
FAMILIES = {**TITLES, "pytorch": "PyTorch", "torch.compile": "PyTorch", "onnxruntime-cuda": TITLES["onnxruntime"],
            "onnxruntime-tensorrt": TITLES["onnxruntime"], "pillow": "bicubic"}
BASELINE = "pillow"
FAMILY_MARKERS = {"PyTorch": "o", "ONNX Runtime": "s", "OpenVINO": "D", "TensorRT": "^", "bicubic": "v"}


def family(row: Row) -> str:
    return FAMILIES.get(row.backend, row.backend)


def _pyplot():  # returns the matplotlib.pyplot module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _measured(report: Report) -> list[Row]:
    return [r for r in report.rows if r.measured]


def _footer(fig, report: Report, extra: str = "") -> None:
    text = f"Measured on {provenance(report)}" + (" (machine busy: latencies noisy)" if busy(report) else "")
    fig.text(0.005, 0.003, "\n".join(textwrap.wrap(text + (". " + extra if extra else ""), 160)),
             fontsize=6.5, color="dimgrey", va="bottom")


def _pixels(row: Row) -> int:
    return row.output_hw[0] * row.output_hw[1]


def _line(ax, rows: list[Row], label: str, **style) -> None:
    points = sorted((_pixels(r), r.timing.median_ms) for r in rows)
    ax.plot([p[0] / 1e6 for p in points], [p[1] for p in points], marker="o", ms=3, label=label, **style)


def latency_by_resolution(report: Report, path: Path) -> bool:
    """Rows: models; columns: backend families. Each panel repeats the model's PyTorch reference
    (grey, dashed), so panels compare without sharing one crowded axis. Bicubic, ten times faster
    than any network, would stretch every axis: it is in the tables and the quality figure."""
    rows = _measured(report)
    models = list(dict.fromkeys((r.model, r.scale) for r in rows))
    if not models:
        return False
    families = list(dict.fromkeys(family(r) for r in rows if r.backend != BASELINE))
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, LogLocator

    fig, axes = plt.subplots(len(models), max(len(families), 1), figsize=(3.6 * max(len(families), 1) + 0.3,
                             3.0 * len(models) + 0.7), squeeze=False, sharey="row")
    for line, (model, scale) in enumerate(models):
        mine = [r for r in rows if r.model == model and r.scale == scale]
        reference = next((r.reference for r in mine if r.reference), None)
        sizes = sorted({(_pixels(r), f"{r.resolution}\n{r.output_hw[1]}x{r.output_hw[0]}") for r in mine})
        for ax, name in zip(axes[line], families, strict=True):
            labels = list(dict.fromkeys(r.label for r in mine if family(r) == name))
            if not labels:
                ax.axis("off")
                ax.text(0.5, 0.5, f"{model} x{scale}: no {name} engine", ha="center", fontsize=7, color="grey",
                        transform=ax.transAxes)
                continue
            backends = {r.backend for r in mine if family(r) == name}
            for label in labels:
                engine = [r for r in mine if r.label == label]
                # A panel of one backend names it in its title: the legend keeps the precision and the file.
                _line(ax, engine, label.removeprefix(f"{engine[0].backend} ") if len(backends) == 1 else label, lw=1.2)
            if reference and reference not in labels:
                _line(ax, [r for r in mine if r.label == reference], f"{reference} (reference)", lw=0.9,
                      color="grey", ls="--")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks([s[0] / 1e6 for s in sizes], [s[1] for s in sizes])
            ax.minorticks_off()
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.set_title(f"{model} x{scale}: {name}", fontsize=8)
            ax.tick_params(labelsize=6.5)
            ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, ncol=2)
            ax.grid(alpha=0.3)
        axes[line][0].set_ylabel("median ms (log)", fontsize=7)
    fig.suptitle(f"Median latency by output size (log-log), batch {rows[0].batch}, {rows[0].threads} threads",
                 fontsize=9)
    _footer(fig, report)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return True


def headline_size(report: Report) -> str | None:
    """The size quality-vs-latency is drawn at: 720p if measured, else the largest."""
    sizes = {r.resolution: _pixels(r) for r in _measured(report)}
    if not sizes:
        return None
    return "720p" if "720p" in sizes else max(sizes, key=sizes.get)


@dataclass(frozen=True)
class Point:
    model: str
    family: str
    label: str
    median_ms: float
    psnr_y: float
    dataset: str
    protocol: str = "standard"


def scatter_points(report: Report) -> list[Point]:
    """The fastest engine per model and backend family at the headline size (bicubic once, being the
    same function for every model), among engines with a quality figure; the rest are in the tables."""
    size = headline_size(report)
    timed = {(r.model, r.scale, r.label): r for r in _measured(report) if r.resolution == size}
    scale = min((q.scale for q in report.quality), default=None)
    best: dict[tuple[str, str], Point] = {}
    for q in report.quality:
        row = timed.get((q.model, q.scale, q.label))
        if row is None or q.scale != scale:
            continue
        point = Point(q.model, family(row), q.label, row.timing.median_ms, q.psnr_y, q.dataset, q.protocol)
        key = ("", point.family) if row.backend == BASELINE else (q.model, point.family)
        if key not in best or point.median_ms < best[key].median_ms:
            best[key] = point
    return list(best.values())


def _below_floor(report: Report, values: dict[str, float]) -> set[str]:
    """Models more than 3 dB below bicubic (untrained ones): drawn, they would squash the axis."""
    bicubic = [q.psnr_y for q in report.quality if q.backend == BASELINE]
    floor = min(bicubic) - 3.0 if bicubic else -float("inf")
    return {model for model, db in values.items() if db < floor}


def _numbered(ax, marks: list[tuple[float, float, str, dict]], title: str) -> None:
    """Scatter ``(x, y, legend text, style)`` marks, each numbered beside its marker and listed with
    its number in a legend outside the axes: labels never overlap, however close the points."""
    for number, (x, y, text, style) in enumerate(marks, start=1):
        ax.scatter(x, y, s=40, zorder=3, label=f"{number}  {text}", **style)
        ax.annotate(str(number), (x, y), xytext=(4, 3 + 7 * (number % 2)), textcoords="offset points", fontsize=7,
                    color=style.get("color", style.get("edgecolors", "black")))
    ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=title,
              title_fontsize=7)


def like_the_paper(dataset: str, protocol: str) -> bool:
    """Whether quality measured on ``dataset`` by ``protocol`` stands on the paper's axis: its Set5 figures were
    measured by the authors' protocol (runtime.quality), so only such points share an axis with them."""
    return dataset.lower() == PUBLISHED_SET.lower() and protocol == "authors"


def _unlike_note(dataset: str, protocol: str) -> str:
    return (f"The paper's {PUBLISHED_SET} figures are not drawn: these points are {dataset} on the {protocol} "
            f"protocol (benchmarks.run --quality-folder <{PUBLISHED_SET}> --quality-protocol authors draws them).")


def quality_vs_latency(report: Report, path: Path) -> bool:
    points = scatter_points(report)
    if not points:
        return False
    scale = min(q.scale for q in report.quality)
    networks = [p for p in points if p.family != FAMILIES[BASELINE]]
    left_out = _below_floor(report, {p.model: p.psnr_y for p in networks})
    points = sorted((p for p in points if p not in networks or p.model not in left_out), key=lambda p: p.median_ms)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10.5, 4.6))
    colours = dict(zip(dict.fromkeys(p.model for p in points if p.family != FAMILIES[BASELINE]),
                       plt.get_cmap("tab10").colors, strict=False))
    marks = []
    for p in points:
        baseline = p.family == FAMILIES[BASELINE]
        marks.append((p.median_ms, p.psnr_y, f"{'bicubic' if baseline else p.model}: {p.label}, "
                      f"{p.median_ms:.1f} ms, {p.psnr_y:.2f} dB",
                      {"marker": FAMILY_MARKERS.get(p.family, "X"), "color": "grey" if baseline else colours[p.model]}))
    _numbered(ax, marks, "fastest engine per model and backend")
    dataset, protocol = points[0].dataset, points[0].protocol
    comparable = scale == 2 and like_the_paper(dataset, protocol)
    if comparable:
        for entry in (e for e in TABLE1_X2 if e.method in ("DyConvSR", "Bicubic")):
            value = entry.psnr[PUBLISHED_SET]
            ax.axhline(value, ls="--", lw=0.8, color="grey")
            ax.text(0.01, value, f"published {entry.method} ({PUBLISHED_SET}; no latency published)",
                    transform=ax.get_yaxis_transform(), fontsize=6.5, va="bottom", color="grey")
    note = "Every engine's latency and quality are in benchmark.md. " + (
        f"Dashed: {SOURCE}." if comparable else _unlike_note(dataset, protocol) if scale == 2 else "")
    if left_out:
        note += " Not drawn (> 3 dB below bicubic, e.g. untrained): " + ", ".join(sorted(left_out)) + "."
    _finish_log_x(plt, fig, ax, path, report, f"median latency at {headline_size(report)} (ms, log), measured",
                  f"Y-PSNR (dB) on {dataset}, {protocol} protocol",
                  f"Quality vs latency, x{scale} at {headline_size(report)}", note)
    return True


def quality_vs_params(report: Report, path: Path) -> bool:
    measured = [q for q in report.quality if q.params and q.backend == "pytorch" and q.scale == 2]
    if not measured:
        return False
    # Every measured point may be left out (all untrained): the published ones and the note still say so.
    left_out = _below_floor(report, {q.model: q.psnr_y for q in measured})
    measured = [q for q in measured if q.model not in left_out]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.5, 4.4))
    marks = [(q.params / 1e3, q.psnr_y, f"{q.model} x2, measured on {q.dataset}: {q.params / 1e3:.1f}K, "
              f"{q.psnr_y:.2f} dB", {"color": "tab:blue"}) for q in measured]
    dataset, protocol = measured[0].dataset if measured else "", measured[0].protocol if measured else ""
    comparable = not measured or like_the_paper(dataset, protocol)
    if comparable:
        marks += [(e.params_k, e.psnr[PUBLISHED_SET], f"{e.method}, published on {PUBLISHED_SET}: {e.params_k}K, "
                   f"{e.psnr[PUBLISHED_SET]:.2f} dB", {"facecolors": "none", "edgecolors": "tab:red"})
                  for e in TABLE1_X2 if e.params_k is not None]
    _numbered(ax, sorted(marks, key=lambda m: m[0]), "filled: measured here; hollow: published" if comparable
              else f"measured here on {dataset}, {protocol} protocol")
    note = f"Hollow red: {SOURCE}." if comparable else _unlike_note(dataset, protocol)
    if left_out:
        note += " Not drawn (> 3 dB below bicubic, e.g. untrained): " + ", ".join(sorted(left_out)) + "."
    _finish_log_x(plt, fig, ax, path, report, "parameters (K, log)", "Y-PSNR (dB)", "Quality vs parameters (x2)",
                  note)
    return True


def _finish_log_x(plt, fig, ax, path: Path, report: Report, xlabel: str, ylabel: str, title: str,
                  note: str = "") -> None:
    """The shared look of the scatter plots (log x axis, light grid, machine footer), then save."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    _footer(fig, report, note)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def write_plots(report: Report, folder: Path) -> dict[str, str]:
    """Write every figure the report has data for; returns {name: file name inside ``folder``}."""
    figures = {}
    for name, draw in (("latency_by_resolution", latency_by_resolution), ("quality_vs_latency", quality_vs_latency),
                       ("quality_vs_params", quality_vs_params)):
        if draw(report, folder / f"{name}.png"):
            figures[name] = f"{name}.png"
    return figures
