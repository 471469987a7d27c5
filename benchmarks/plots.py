"""PNG figures from a report: latency by size per backend, quality vs latency and vs parameters.

Published points (DyConvSR Table 1) are drawn hollow and labelled "published"; they were
measured by the paper's authors on other images (Set5), never by this run.
"""
from __future__ import annotations

from pathlib import Path

from runtime.bench.schema import Report, Row

from .published import SOURCE, TABLE1_X2

DPI = 80
PUBLISHED_SET = "Set5"


def _pyplot():  # returns the matplotlib.pyplot module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _measured(report: Report) -> list[Row]:
    return [r for r in report.rows if r.measured]


def latency_by_resolution(report: Report, path: Path) -> bool:
    rows = _measured(report)
    models = list(dict.fromkeys((r.model, r.scale) for r in rows))
    if not models:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(len(models), 1, figsize=(7.5, 2.8 * len(models)), squeeze=False)
    for ax, (model, scale) in zip(axes[:, 0], models, strict=True):
        mine = [r for r in rows if r.model == model and r.scale == scale]
        sizes = sorted({(r.output_hw[0] * r.output_hw[1], r.resolution) for r in mine})
        for label in dict.fromkeys(r.label for r in mine):
            points = sorted((r.output_hw[0] * r.output_hw[1], r.timing.median_ms) for r in mine if r.label == label)
            ax.plot([p[0] / 1e6 for p in points], [p[1] for p in points], marker="o", ms=3, lw=1, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([s[0] / 1e6 for s in sizes], [s[1] for s in sizes])
        ax.minorticks_off()
        ax.set_title(f"{model} x{scale}: median latency by size ({rows[0].threads} threads)", fontsize=9)
        ax.set_ylabel("ms (log)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return True


def _headline(report: Report) -> str | None:
    """The size quality-vs-latency is drawn at: 720p if measured, else the largest."""
    sizes = {r.resolution: r.output_hw[0] * r.output_hw[1] for r in _measured(report)}
    if not sizes:
        return None
    return "720p" if "720p" in sizes else max(sizes, key=sizes.get)


def quality_vs_latency(report: Report, path: Path) -> bool:
    size = _headline(report)
    points = []
    for q in report.quality:
        row = next((r for r in _measured(report) if r.model == q.model and r.scale == q.scale
                    and r.resolution == size and r.label == q.label), None)
        if row is not None:
            points.append((row.timing.median_ms, q.psnr_y, f"{q.model}: {q.label}", q.dataset))
    if not points:
        return False
    # Points far below bicubic (untrained models) would squash the axis; they are named instead.
    bicubic = [db for _, db, label, _ in points if "bicubic" in label]
    floor = min(bicubic) - 3.0 if bicubic else -float("inf")
    left_out = [label for _, db, label, _ in points if db < floor]
    points = [p for p in points if p[1] >= floor]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    markers = "osD^v<>P*X"
    for i, (ms, db, label, _) in enumerate(points):
        ax.scatter(ms, db, s=22, marker=markers[i % len(markers)], label=label)
    ax.legend(fontsize=5.5, loc="lower right", ncol=2, framealpha=0.8)
    if left_out:
        import textwrap

        note = "not drawn (> 3 dB below bicubic, e.g. untrained): " + ", ".join(left_out)
        fig.text(0.01, 0.005, "\n".join(textwrap.wrap(note, 180)), fontsize=5, color="grey", va="bottom")
        fig.subplots_adjust(bottom=0.2)
    for entry in (e for e in TABLE1_X2 if e.method in ("DyConvSR", "Bicubic")):
        value = entry.psnr[PUBLISHED_SET]
        ax.axhline(value, ls="--", lw=0.8, color="grey")
        ax.text(0.01, value, f"published {entry.method} ({PUBLISHED_SET}; no latency published)",
                transform=ax.get_yaxis_transform(), fontsize=6, va="bottom", color="grey")
    _finish_log_x(plt, fig, ax, path, f"median latency at {size} (ms, log), measured",
                  f"Y-PSNR (dB) on {points[0][3]}", f"Quality vs latency (x2). Dashed: {SOURCE}")
    return True


def quality_vs_params(report: Report, path: Path) -> bool:
    measured = [q for q in report.quality if q.params and q.backend == "pytorch"]
    if not measured:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for q in measured:
        ax.scatter(q.params / 1e3, q.psnr_y, s=18, color="tab:blue")
        ax.annotate(f"{q.model} x{q.scale} (measured, {q.dataset})", (q.params / 1e3, q.psnr_y), fontsize=6,
                    xytext=(3, 2), textcoords="offset points")
    for entry in TABLE1_X2:
        if entry.params_k is None:
            continue
        value = entry.psnr[PUBLISHED_SET]
        ax.scatter(entry.params_k, value, s=18, facecolors="none", edgecolors="tab:red")
        ax.annotate(f"{entry.method} (published, {PUBLISHED_SET})", (entry.params_k, value), fontsize=6,
                    xytext=(3, -8), textcoords="offset points", color="tab:red")
    _finish_log_x(plt, fig, ax, path, "parameters (K, log)", "Y-PSNR (dB)",
                  f"Quality vs parameters (x2). Hollow red: {SOURCE}")
    return True


def _finish_log_x(plt, fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> None:
    """The shared look of the scatter plots (log x axis, small type, light grid), then save."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
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
