"""The export issue's speed targets, judged from a report (never asserted in tests).

Targets are defined for DyConvSR x2, batch 1, 640x360 -> 1280x720, 2 threads. Ratios between
rows of one group are paired per round (runtime.bench.timing.paired_ratio); ratios against the
static twin come from another group, so they are ratios of medians and say so.
"""
from __future__ import annotations

from dataclasses import dataclass

from runtime import catalogue
from runtime.bench.schema import QualityRow, Report, Row
from runtime.bench.timing import paired_ratio
from runtime.parity import within

MODEL, TWIN, SCALE, RESOLUTION = "dyconvsr", "dyconvsr_static", 2, "720p"
MAX_PSNR_LOSS_DB = 0.1
TRT_SAFE_DYNAMIC_BATCH = ("branches", "stacked")


@dataclass
class Target:
    claim: str
    threshold: str
    value: str
    holds: bool | None  # None: not evaluable from this report
    detail: str


def _rows(report: Report, model: str) -> list[Row]:
    return [r for r in report.rows
            if r.model == model and r.scale == SCALE and r.resolution == RESOLUTION and r.measured]


def _ratio(slow: Row, fast: Row) -> float:
    """How many times faster ``fast`` is than ``slow``: paired when timed in the same rounds."""
    if slow.group == fast.group and len(slow.timing.samples_ms) == len(fast.timing.samples_ms):
        return paired_ratio(slow.timing.samples_ms, fast.timing.samples_ms)
    return slow.timing.median_ms / fast.timing.median_ms


def parity_ok(row: Row) -> bool:
    """The row against the PyTorch reference row, judged as runtime.check judges: by runtime.parity.within
    against the tolerance the row records (its variant's), else the catalogue's for its precision."""
    if row.label == row.reference or row.backend == "pillow":
        return True
    rule = row.tolerance or catalogue.tolerance(catalogue.canonical_precision(row.precision))
    return within(rule, row.parity_max_abs_diff, row.parity_psnr_db)


def _precision_setting(row: Row, rows: list[Row]) -> bool:
    """An fp32 file that OpenVINO was told to compute in a reduced precision: the same file also has an
    fp32 row on that backend (only fp32 graphs are run at several precisions)."""
    return row.precision != "fp32" and any(r.variant == row.variant and r.backend == row.backend
                                           and r.precision == "fp32" for r in rows)


def _fp32_partner(low: Row, rows: list[Row]) -> Row | None:
    """The fp32 row a reduced-precision row is timed against on its backend: the same file at fp32 (an
    OpenVINO precision setting), else the file it was converted from (its recorded ``source``), else a
    file converted from that same source (the fp32 IR beside the INT8 IR); rows without a recorded
    source (reports from before it) fall back to the fp32 row of the same lowering."""
    fp32 = [r for r in rows if r.backend == low.backend and r.precision == "fp32"]
    source = low.notes.get("source")
    rules = [lambda r: r.variant == low.variant]
    if source is not None:
        rules += [lambda r: r.variant == source, lambda r: r.notes.get("source") == source]
    else:
        rules.append(lambda r: r.strategy == low.strategy)
    return next((r for rule in rules for r in fp32 if rule(r)), None)


def _fastest(rows: list[Row]) -> Row | None:
    return min(rows, key=lambda r: r.timing.median_ms) if rows else None


def _speed(claim: str, minimum: float, slow: Row | None, fast: Row | None, at_most: bool = False) -> Target:
    sign = "<=" if at_most else ">="
    if slow is None or fast is None:
        return Target(claim, f"{sign} {minimum}x", "-", None, "rows missing from this report")
    paired = slow.group == fast.group
    if at_most:  # "within X of": slowdown of `fast` relative to `slow`
        value = 1.0 / _ratio(slow, fast)
        holds = value <= minimum
        text = f"{value:.2f}x slower"
    else:
        value = _ratio(slow, fast)
        holds = value >= minimum
        text = f"{value:.2f}x"
    how = "paired per round" if paired else "ratio of medians from different groups (not paired)"
    return Target(claim, f"{sign} {minimum}x", text, holds,
                  f"{fast.label} {fast.timing.median_ms:.1f} ms vs {slow.label} {slow.timing.median_ms:.1f} ms ({how})")


def _quality(report: Report, label: str) -> QualityRow | None:
    return next((q for q in report.quality if q.model == MODEL and q.scale == SCALE and q.label == label), None)


def evaluate_targets(report: Report) -> list[Target]:
    rows, twin = _rows(report, MODEL), _rows(report, TWIN)
    eager = [r for r in rows if r.backend == "pytorch"]
    as_trained = next((r for r in eager if r.label == r.reference), eager[0] if eager else None)
    ort = [r for r in rows if r.backend == "onnxruntime"]
    ort_fp32 = [r for r in ort if r.precision == "fp32"]
    default = next((r for r in ort if r.variant == catalogue.DEFAULT_FILE), None)
    # Every file of the artifact as it runs on a CPU backend the runtime ships (ONNX Runtime, OpenVINO);
    # an fp32 ONNX graph that OpenVINO is told to run in bf16 is a setting, not a file, and is left out
    # (model.openvino.bf16.xml, which stores bf16 in the file, counts).
    artifact_files = [r for r in rows if r.backend in ("onnxruntime", "openvino") and not _precision_setting(r, rows)]
    targets = [
        _speed(f"default {catalogue.DEFAULT_FILE} on ONNX Runtime vs PyTorch eager as trained", 1.5, as_trained,
               default),
        _speed("fastest ONNX Runtime variant in the artifact vs PyTorch eager as trained", 2.0, as_trained,
               _fastest(ort)),
        _speed("fastest variant file in the artifact (ONNX Runtime or OpenVINO) vs PyTorch eager as trained", 2.0,
               as_trained, _fastest([r for r in artifact_files if parity_ok(r)])),
        _speed("ONNX Runtime fp32, best lowering vs fastest PyTorch eager formulation", 1.3, _fastest(eager),
               _fastest(ort_fp32)),
    ]
    # The cost of the dynamic kernel, per backend: fp32 lowerings against the static twin's default file.
    for backend, name in (("onnxruntime", "ONNX Runtime"), ("openvino", "OpenVINO f32")):
        fp32 = [r for r in rows if r.backend == backend and r.precision == "fp32"]
        twin_row = next((r for r in twin if r.backend == backend and r.precision == "fp32"
                         and r.variant == catalogue.DEFAULT_FILE), None)
        # The dynamic-batch lowerings with constant conv weights (TensorRT- and INT8-safe).
        trt_safe = _fastest([r for r in fp32 if r.strategy in TRT_SAFE_DYNAMIC_BATCH])
        targets += [
            _speed(f"best lowering within 1.05x of the static twin ({name})", 1.05, twin_row, _fastest(fp32),
                   at_most=True),
            _speed(f"dynamic-batch TensorRT-safe lowering (fastest of branches, stacked) within 1.2x of the static "
                   f"twin ({name})", 1.2, twin_row, trt_safe, at_most=True),
        ]
    targets.append(_reduced_precision(report, rows))
    targets += _litert(report, rows, default)
    return targets


def _litert(report: Report, rows: list[Row], default: Row | None) -> list[Target]:
    """Issue 14: LiteRT (mobile lowering, XNNPACK) against ONNX Runtime model.onnx fp32 at the same size."""
    litert = [r for r in rows if r.backend == "litert" and parity_ok(r)]
    fp32 = _fastest([r for r in litert if r.precision == "fp32"])
    int8 = _fastest([r for r in litert if r.precision == "int8"])
    speed = _speed(f"LiteRT full INT8 vs ONNX Runtime {catalogue.DEFAULT_FILE} fp32", 1.5, default, int8)
    q_low, q_base = (_quality(report, r.label) if r else None for r in (int8, fp32))
    if speed.holds is not None and q_low and q_base:
        loss = q_base.psnr_y - q_low.psnr_y
        speed.claim += f", <= {MAX_PSNR_LOSS_DB} dB Y-PSNR lost against LiteRT fp32"
        speed.value += f", {loss:+.3f} dB lost"
        speed.holds = speed.holds and loss <= MAX_PSNR_LOSS_DB
    return [speed, _speed(f"LiteRT fp32 (mobile lowering) vs ONNX Runtime {catalogue.DEFAULT_FILE} fp32", 1.0,
                          default, fp32)]


def _reduced_precision(report: Report, rows: list[Row]) -> Target:
    claim = ("a reduced-precision variant (INT8/BF16) >= 1.5x faster than fp32 on the same backend, "
             "<= 0.1 dB Y-PSNR lost")
    candidates, broken = [], []
    for low in (r for r in rows if r.precision in ("int8", "bf16")):
        base = _fp32_partner(low, rows)
        if base is None:
            continue
        if not parity_ok(base):
            broken.append(f"{base.label} fails parity ({base.parity_psnr_db or 0:.1f} dB vs PyTorch)")
            continue
        speed = _ratio(base, low)
        q_low, q_base = _quality(report, low.label), _quality(report, base.label)
        loss = q_base.psnr_y - q_low.psnr_y if q_low and q_base else None
        candidates.append((speed, loss, low, base))
    if not candidates:
        why = "; ".join(broken) or "no INT8/BF16 row with an fp32 partner on the same backend"
        return Target(claim, ">= 1.5x, <= 0.1 dB", "-", None, why)
    best = max(candidates, key=lambda c: (c[1] is not None and c[1] <= MAX_PSNR_LOSS_DB, c[0]))
    speed, loss, low, base = best
    holds = speed >= 1.5 and loss is not None and loss <= MAX_PSNR_LOSS_DB
    loss_text = f"{loss:+.3f} dB lost" if loss is not None else "quality not measured"
    # The stricter reading: against the fastest fp32 graph on that backend, not the same graph's fp32.
    fastest = _fastest([r for r in rows if r.backend == low.backend and r.precision == "fp32" and parity_ok(r)])
    strict = (f"; against the fastest fp32 on {low.backend} ({fastest.label}): {_ratio(fastest, low):.2f}x"
              if fastest else "")
    others = "; ".join([*(f"{c[2].label} {c[0]:.2f}x" + (f" ({c[1]:+.3f} dB)" if c[1] is not None else "")
                          for c in candidates if c is not best), *broken])
    return Target(claim, ">= 1.5x, <= 0.1 dB", f"{speed:.2f}x, {loss_text}", holds,
                  f"{low.label} vs {base.label} (same graph, paired per round){strict}"
                  + (f"; others: {others}" if others else ""))
