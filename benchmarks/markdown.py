"""benchmark.md: the tables a person reads, from one or several reports (one per machine)."""
from __future__ import annotations

import datetime
from collections.abc import Sequence

from runtime.bench.machine import MatmulPeak
from runtime.bench.schema import MEASURED, QualityRow, Report, Row, VideoRow
from runtime.cpu import machine_kind

from .targets import MODEL, RESOLUTION, SCALE, evaluate_targets, parity_ok

BUSY_LOAD_PER_CPU = 0.5


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


# Other processes using more than this share of the usable CPUs during the run make it "busy".
BUSY_OTHER_CPU_SHARE = 0.1


def busy(report: Report) -> bool:
    """Other processes' CPU share where measured; else (older reports) the load average, which also
    counts the benchmark's own threads."""
    if report.machine.other_cpu_share is not None:
        return report.machine.other_cpu_share > BUSY_OTHER_CPU_SHARE
    loads = [v for v in report.machine.load_average.values() if v is not None]
    return bool(loads) and max(loads) > BUSY_LOAD_PER_CPU * report.machine.usable_cpus


def taken(report: Report) -> str:
    """When the report was taken, to the minute: '2026-11-22 03:48 UTC'."""
    when = datetime.datetime.fromisoformat(report.created).astimezone(datetime.UTC)
    return when.strftime("%Y-%m-%d %H:%M UTC")


MACHINES_FOLDER = "machines"  # <report folder>/machines/<machine kind>.json: each kind's latest run


def report_machine_kind(report: Report) -> str:
    """The kind of machine a report was taken on (runtime.cpu.machine_kind of its CPU model and flags)."""
    return machine_kind(report.machine.cpu, frozenset(report.machine.isa))


def provenance(report: Report) -> str:
    """The machine and date every table and figure states: CPU model, usable cores, host, date, tool."""
    m = report.machine
    cores = f"{m.usable_cpus} CPUs" if m.usable_cpus == m.logical_cpus else f"{m.usable_cpus} of {m.logical_cpus} CPUs"
    return f"{m.cpu}, {cores} (host {m.name}), {taken(report)}, {report.tool}"


def peak_text(peak: MatmulPeak | None) -> str:
    return "unknown" if peak is None else f"{peak.gflops:,.0f} ({peak.library})"


def precisions_of(report: Report) -> list[str]:
    """Precisions that have a peak record or a row with MACs, in a fixed order."""
    found = {p.precision for p in report.matmul_peaks} | {r.precision for r in report.rows if r.macs is not None}
    order = ["fp32", "bf16", "fp16", "int8"]
    return [p for p in order if p in found] + sorted(found - set(order))


def peaks_section(reports: Sequence[Report]) -> list[str]:
    """Every peak record, measured or not, with how it was taken; the denominator of 'of peak' is the
    best measured one per precision."""
    lines = ["## Matrix-multiply peaks", "",
             "Each row's 'of peak' divides its GFLOP/s by the best measured matrix-multiply peak of its own "
             "precision on its machine (int8: GOP/s, a multiply-add counts 2); a precision without a "
             "measured peak gets '-'.", ""]
    cells = []
    for r in reports:
        for peak in r.matmul_peaks:
            used = peak is r.peak_of(peak.precision)
            value = "-" if peak.gflops is None else f"{peak.gflops:,.0f}" + (" (used)" if used else "")
            cells.append((r.machine.name, peak.precision, value, peak.library, str(peak.threads),
                          peak.method or "measured (method not recorded)"))
        for precision in precisions_of(r):
            if not any(p.precision == precision for p in r.matmul_peaks):
                cells.append((r.machine.name, precision, "-", "-", "-", "no peak recorded: its rows have no 'of peak'"))
    return [*lines, *md_table(("machine", "precision", "GFLOP/s", "library", "threads", "how"), cells), ""]


def machine_section(reports: Sequence[Report]) -> list[str]:
    header = ("machine", "tool", "CPU", "cores", "ISA", "GPU", "load avg start/end", "other processes' CPU",
              "matmul peaks (GFLOP/s)", "taken")
    rows = []
    for r in reports:
        m, load = r.machine, r.machine.load_average
        peaks = "; ".join(f"{p} {peak_text(r.peak_of(p))}" for p in precisions_of(r)) or "-"
        rows.append((m.name, r.tool, m.cpu, f"{m.usable_cpus}/{m.logical_cpus}", " ".join(m.isa) or "-",
                     ", ".join(m.gpus) or "none", f"{load.get('start')}/{load.get('end')}",
                     "-" if m.other_cpu_share is None else f"{m.other_cpu_share:.0%}", peaks, taken(r)))
    lines = ["## Machines", "", *md_table(header, rows), ""]
    for r in reports:
        if busy(r):
            what = (f"other processes used {r.machine.other_cpu_share:.0%} of its {r.machine.usable_cpus} CPUs"
                    if r.machine.other_cpu_share is not None else
                    f"1-minute load average up to {max(v for v in r.machine.load_average.values() if v is not None)} "
                    f"on {r.machine.usable_cpus} CPUs")
            lines.append(f"**{r.machine.name} was busy during this run** ({what}): latencies are noisy and must be "
                         "re-taken on a quiet machine before anyone quotes them. Paired per-round speed-ups are the "
                         "most robust figure.")
            lines.append("")
    lines.append("Versions: " + "; ".join(
        f"{r.machine.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(r.versions.items())) for r in reports))
    return [*lines, ""]


def parity_text(row: Row) -> str:
    """The 'vs reference' cell: the reference itself, bit-identical, or the PSNR against it."""
    if row.label == row.reference:
        return "reference"
    return "identical" if row.parity_max_abs_diff == 0 else fmt(row.parity_psnr_db, 1, " dB")


def _row_cells(row: Row, machine: str | None, with_model: bool = False) -> list[str]:
    lead = [machine] if machine is not None else []
    label = f"{row.model}: {row.label}" if with_model else row.label
    if not row.measured:
        return [*lead, label, row.status, *["-"] * 12]
    t, m = row.timing, row.memory
    if m and m.added_mb is not None:
        memory = f"{m.added_mb:.0f} (+{m.peak_rss_mb:.0f})"
    else:
        memory = fmt(m.peak_rss_mb, 0) if m else "-"
    parity = parity_text(row)
    if not parity_ok(row):
        parity += " **PARITY FAIL**"
    return [*lead, label, row.engine, fmt(t.median_ms, 2), fmt(t.p90_ms, 2), fmt(t.p95_ms, 2), fmt(t.min_ms, 2),
            fmt(row.throughput_mp_s, 2), memory, fmt(row.params / 1e3 if row.params is not None else None, 1, "K"),
            fmt(row.macs / 1e9 if row.macs is not None else None, 2), fmt(row.gflops_per_s, 1),
            fmt(row.peak_fraction * 100 if row.peak_fraction is not None else None, 1, "%"),
            fmt(row.speedup_paired, 2, "x"), parity]


def latency_section(reports: Sequence[Report]) -> list[str]:
    multi = len(reports) > 1
    header = (["machine"] if multi else []) + [
        "engine", "runs on", "median ms", "p90 ms", "p95 ms", "min ms", "out MP/s", "peak MB added (process)",
        "params", "GMACs", "GFLOP/s", "of own-precision peak", "speed-up (median of per-round ratios)", "vs reference"]
    groups: dict[str, list[tuple[str, Row]]] = {}
    for report in reports:
        for row in report.rows:
            groups.setdefault(row.group, []).append((report.machine.name, row))
    lines = ["## Latency", ""]
    for items in groups.values():
        first = items[0][1]
        models = list(dict.fromkeys(row.model for _, row in items))
        h, w = first.input_hw
        lines += [f"### {' + '.join(models)} x{first.scale}, {first.resolution}: "
                  f"{w}x{h} -> {first.output_hw[1]}x{first.output_hw[0]}, "
                  f"batch {first.batch}, {first.threads} threads", ""]
        lines += md_table(header, [_row_cells(row, machine if multi else None, len(models) > 1)
                                   for machine, row in items])
        ref = first.reference or "-"
        lines += ["", f"Speed-up: median over rounds of ({ref} time / engine time), same rounds. "
                  "'vs reference': PSNR of the engine's output against the reference's on the same input.", ""]
        if len(models) > 1:
            lines += [f"{' and '.join(models)} were timed in the same rounds (their ratios are paired); each model's "
                      "speed-up and parity are against its own PyTorch reference.", ""]
    return lines


def quality_section(reports: Sequence[Report]) -> list[str]:
    lines = ["## Quality", ""]
    rows: list[QualityRow] = [q for r in reports for q in r.quality]
    if not rows:
        return [*lines, "Not measured in this run.", ""]
    datasets = sorted({q.dataset for q in rows})
    lines += [f"Y-channel (BT.601) PSNR/SSIM, border = scale, on {', '.join(datasets)} "
              "(train/evaluate.py protocol: MATLAB bicubic LR, uint8 SR). 'vs PyTorch': PSNR of the engine's float "
              "output against the PyTorch output on the same images (worst image).", ""]
    seen = set()
    table = []
    for q in rows:
        key = (q.model, q.scale, q.label, q.dataset)
        if key in seen:
            continue
        seen.add(key)
        table.append((f"{q.model} x{q.scale}", q.label, q.precision, f"{q.psnr_y:.2f}", f"{q.ssim_y:.4f}",
                      f"{q.psnr_rgb:.2f}", fmt(q.psnr_vs_reference_db, 1, " dB"),
                      fmt(q.params / 1e3 if q.params else None, 1, "K"), q.dataset))
    lines += md_table(("model", "engine", "precision", "Y-PSNR", "Y-SSIM", "RGB PSNR", "vs PyTorch", "params",
                       "images"), table)
    return [*lines, ""]


VIDEO_HEADER = ("size", "variant", "precision", "engine fps", "end-to-end fps", "share", "decode ms", "encode ms")


def video_cells(rows: Sequence[VideoRow]) -> list[tuple[str, ...]]:
    """One line per video row: fps of the engine alone and file to file, and the decode/encode threads' ms/frame."""
    cells = []
    for v in rows:
        (h, w), (oh, ow) = v.input_hw, v.output_hw
        size = f"{v.resolution}: {w}x{h} -> {ow}x{oh}"
        if v.status != MEASURED:
            cells.append((size, v.variant, v.precision, v.status, *["-"] * 4))
            continue
        share = fmt(v.end_to_end_share * 100 if v.end_to_end_share is not None else None, 0, "%")
        cells.append((size, v.variant, v.precision, fmt(v.engine_fps), fmt(v.end_to_end_fps), share,
                      fmt(v.decode_ms), fmt(v.encode_ms)))
    return cells


def video_section(reports: Sequence[Report]) -> list[str]:
    lines = ["## Video", ""]
    if not any(r.video for r in reports):
        return [*lines, "Not measured in this run (`--video N`).", ""]
    lines += ["A panned clip of N frames per size (runtime/video/bench.py): 'engine fps' is the engine alone on the "
              "decoded frames; 'end-to-end fps' is file to file (decode, engine and encode overlapping in threads); "
              "'share' is their ratio (target >= 85%). Decode and encode ms are per frame in their own threads.", ""]
    for r in reports:
        for (model, scale), rows in _by_model(r.video).items():
            first, frames = rows[0], max(v.frames for v in rows)
            lines += [f"{model} x{scale} on {r.machine.name}, {first.threads} threads, {frames or '?'} frames, "
                      f"{first.codec} {first.preset or ''}, smoothing {first.smoothing:g}:", ""]
            lines += [*md_table(VIDEO_HEADER, video_cells(rows)), ""]
    return lines


def _by_model(rows: Sequence[VideoRow]) -> dict[tuple[str, int], list[VideoRow]]:
    groups: dict[tuple[str, int], list[VideoRow]] = {}
    for v in rows:
        groups.setdefault((v.model, v.scale), []).append(v)
    return groups


def targets_section(reports: Sequence[Report]) -> list[str]:
    lines = ["## Export targets (issue 4, Performance)", "",
             f"Judged on {MODEL} x{SCALE} at {RESOLUTION} (640x360 -> 1280x720), batch 1, from the table above; "
             "never asserted in tests.", ""]
    for report in reports:
        targets = evaluate_targets(report)
        lines.append(f"On {report.machine.name}:")
        lines.append("")
        cells = [(t.claim, t.threshold, t.value,
                  {True: "holds", False: "does not hold", None: "not evaluable"}[t.holds], t.detail) for t in targets]
        lines += md_table(("target", "threshold", "measured", "verdict", "from"), cells)
        if busy(report):
            lines.append("")
            lines.append("The machine was busy: these verdicts are provisional until re-taken on a quiet machine.")
        lines.append("")
    return lines


def render_markdown(reports: Sequence[Report], figures: dict[str, str] | None = None) -> str:
    notes = sorted({n for r in reports for n in r.notes})
    method = sorted({r.memory_method for r in reports})
    lines = ["# Benchmark report", "",
             *[f"Taken on {provenance(r)}." for r in reports], "",
             "Generated by `python -m benchmarks.run` / `python -m runtime.bench`; "
             "merged by `python -m benchmarks.report`.",
             ""]
    lines += machine_section(reports)
    lines += peaks_section(reports)
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    lines += ["## How the figures are taken", "",
              "- Each engine is loaded and run once, then warmed up; then every engine of a group runs once per round "
              "(one untimed settle call, one timed call), the order rotating by round. Median/p90/p95/min are over "
              "the timed calls.",
              f"- Peak memory: {'; '.join(method)}. 'added' is what loading the engine and its first inference "
              "added to the process; the figure in brackets is the whole process at that moment.",
              "- MACs: torch.utils.flop_counter trace of what each engine executes (the lowering it runs: "
              "`branches` counts the dynamic layer K times); FLOPs = 2 x MACs; element-wise ops not counted. "
              "Pillow bicubic: 4-tap separable passes, counted analytically.",
              "- GFLOP/s = FLOPs / median latency; 'of own-precision peak' divides by the matrix-multiply peak of "
              "the row's precision measured in the same run (fp32: best of torch.mm and numpy; bf16/fp16: torch.mm "
              "where the CPU has that arithmetic; int8: best of torch._int_mm and ONNX Runtime MatMulInteger; "
              "2048x2048, best of 5; see 'Matrix-multiply peaks').",
              "- GPU rows say 'not measured: no GPU' where there is none; nothing is estimated.", ""]
    lines += targets_section(reports)
    lines += latency_section(reports)
    lines += quality_section(reports)
    lines += video_section(reports)
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({path})" for name, path in figures.items()]
        lines.append("")
    lines += ["## Reproduce", "", "```bash",
              "make bench        # python -m benchmarks.run (defaults above), then python -m benchmarks.readme",
              "python -m benchmarks.run -m dyconvsr -r 720p -n 30   # one model, one size, more rounds",
              "python -m runtime.bench artifacts/dyconvsr_x2 --video 30   # video fps, every variant, 720p and 1080p",
              "python -m runtime.bench artifacts/dyconvsr_x2 -o bench-device.json   # on a device, torch-free",
              "python -m benchmarks.report reports/benchmark.json bench-device.json -o reports/combined",
              "```", ""]
    return "\n".join(lines)
