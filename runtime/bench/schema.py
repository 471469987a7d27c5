"""The benchmark report's JSON schema: one file per run, the same for every machine and tool.

Version policy: ``SCHEMA_VERSION`` changes when a field is renamed, removed or changes meaning;
adding a field keeps it. Readers refuse other versions with a clear message, except version 1,
which they upgrade (its ``peak_fraction`` divided every row by the fp32 peak; see ``upgrade_v1``).
"""
from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import atomic_write_bytes, json_bytes
from .machine import Machine, MatmulPeak, peak_for
from .memory import MemoryUse
from .timing import Timing, paired_ratio

SCHEMA = "dyconvsr-toolchain/benchmark"
SCHEMA_VERSION = 3  # 3: rows record the tolerance their parity is judged against
READABLE_VERSIONS = (1, 2, SCHEMA_VERSION)
MEASURED = "measured"
NOT_MEASURED = "not measured"
FAILED = "failed"


@dataclass
class Row:
    """One engine on one model, scale and size. Rows sharing ``group`` were timed in the same rounds."""

    group: str
    model: str
    scale: int
    resolution: str
    input_hw: list[int]
    output_hw: list[int]
    batch: int
    label: str
    backend: str
    variant: str
    precision: str
    strategy: str | None
    device: str
    threads: int
    status: str  # "measured" | "not measured: <reason>" | "failed: <reason>"
    engine: str = ""  # where it really ran, as the runner reports it
    timing: Timing | None = None
    throughput_mp_s: float | None = None  # output megapixels per second at the median latency
    memory: MemoryUse | None = None
    params: int | None = None
    macs: int | None = None  # multiply-accumulates this lowering executes per call
    flops: int | None = None  # 2 x macs
    gflops_per_s: float | None = None  # flops / median latency
    peak_fraction: float | None = None  # gflops_per_s / the matmul peak of this row's precision (None: unknown)
    reference: str | None = None  # label of the row the ratios below are taken against
    speedup_paired: float | None = None  # median over rounds of reference_k / this_k
    speedup_of_medians: float | None = None  # reference median / this median
    parity_psnr_db: float | None = None  # output vs the reference output on the same input
    parity_max_abs_diff: float | None = None
    # What that parity is judged against (runtime.parity.tolerance_for of the row's variant, in the precision it
    # computes in); None for rows without a variant (PyTorch, bicubic): the catalogue's for their precision.
    tolerance: dict[str, float] | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.status == MEASURED and self.timing is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Row:
        data = dict(data)
        data["timing"] = Timing.from_dict(data["timing"]) if data.get("timing") else None
        data["memory"] = MemoryUse(**data["memory"]) if data.get("memory") else None
        return cls(**_known(cls, data))


@dataclass
class QualityRow:
    """Quality of one model/engine on a set of HR images (Y = BT.601 luma, border = scale)."""

    model: str
    scale: int
    label: str
    backend: str
    variant: str
    precision: str
    dataset: str
    images: int
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    params: int | None = None
    psnr_vs_reference_db: float | None = None  # float output vs the PyTorch output, [0, 1] range
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: str = "standard"  # runtime.quality PROTOCOLS: "standard", or "authors" (the DyConvSR paper's)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityRow:
        return cls(**_known(cls, data))


@dataclass
class VideoRow:
    """Video throughput of one engine variant: a clip decoded, upscaled and encoded
    (runtime/video/bench.py). ``engine_fps``: the engine alone on the same decoded frames;
    ``end_to_end_fps``: file to file, decode and encode overlapping the engine in threads."""

    model: str
    scale: int
    resolution: str
    input_hw: list[int]
    output_hw: list[int]
    label: str
    backend: str
    variant: str
    precision: str
    threads: int
    status: str  # "measured" | "not measured: <reason>" | "failed: <reason>"
    frames: int = 0
    engine: str = ""
    engine_fps: float | None = None
    end_to_end_fps: float | None = None
    end_to_end_share: float | None = None  # end_to_end_fps / engine_fps
    decode_ms: float | None = None  # per frame, in the decoder thread
    encode_ms: float | None = None  # per frame, in the encoder thread (colour conversion + encoder)
    codec: str = ""
    preset: str | None = None
    smoothing: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoRow:
        return cls(**_known(cls, data))


@dataclass
class Report:
    tool: str  # "benchmarks.run" | "runtime.bench"
    machine: Machine
    versions: dict[str, str]
    settings: dict[str, Any]
    memory_method: str
    matmul_peak: MatmulPeak | None  # the best fp32 peak of ``matmul_peaks``
    # Every peak per precision, with how it was measured (or why not): each row's peak_fraction
    # divides by the best measured peak of the row's own precision.
    matmul_peaks: list[MatmulPeak] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    quality: list[QualityRow] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)  # parity against stored references
    notes: list[str] = field(default_factory=list)
    video: list[VideoRow] = field(default_factory=list)  # added in v2 (older files have none)
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        atomic_write_bytes(target, json_bytes(self.to_dict()))
        return target

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        if data.get("schema") != SCHEMA or data.get("schema_version") not in READABLE_VERSIONS:
            raise UserError(
                f"benchmark report has schema {data.get('schema')!r} version {data.get('schema_version')!r}; "
                f"this tool reads {SCHEMA!r} versions {', '.join(map(str, READABLE_VERSIONS))}"
            )
        try:
            data = dict(data)
            data["machine"] = Machine(**_known(Machine, data["machine"]))
            peak = data.get("matmul_peak")
            data["matmul_peak"] = MatmulPeak(**peak) if peak else None
            data["matmul_peaks"] = [MatmulPeak(**p) for p in data.get("matmul_peaks", [])]
            data["rows"] = [Row.from_dict(r) for r in data["rows"]]
            data["quality"] = [QualityRow.from_dict(q) for q in data.get("quality", [])]
            data["video"] = [VideoRow.from_dict(v) for v in data.get("video", [])]
            report = cls(**_known(cls, data))
        except (KeyError, TypeError) as exc:
            raise UserError(f"benchmark report does not follow {SCHEMA} v{SCHEMA_VERSION}: {exc}") from None
        return upgrade_v1(report) if report.schema_version == 1 else report

    def peak_of(self, precision: str) -> MatmulPeak | None:
        return peak_for(precision, self.matmul_peaks)


def upgrade_v1(report: Report) -> Report:
    """Version 1 measured only fp32 peaks and divided every row by one; recompute each row against its
    own precision (so bf16/int8/fp16 rows get no fraction) and mark the report as version 2."""
    for row in report.rows:
        derive_figures(row, report.matmul_peaks)
    report.notes.append("read from a schema v1 report: peak fractions recomputed per precision "
                        "(v1 measured only the fp32 peak, so other precisions have none)")
    report.schema_version = SCHEMA_VERSION
    return report


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def read_report(path: str | os.PathLike[str]) -> Report:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"benchmark report {path} not found") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return Report.from_dict(data)


def derive_figures(row: Row, peaks: Sequence[MatmulPeak]) -> None:
    """Fill throughput, GFLOP/s and the peak fraction from the row's timing and MACs; the fraction
    divides by the peak of the row's own precision, and stays None where that peak is unknown."""
    if not row.measured:
        return
    seconds = row.timing.median_ms / 1000.0
    row.throughput_mp_s = row.batch * row.output_hw[0] * row.output_hw[1] / 1e6 / seconds
    if row.macs is not None:
        row.flops = 2 * row.macs
        row.gflops_per_s = row.flops / seconds / 1e9
        peak = peak_for(row.precision, peaks)
        row.peak_fraction = row.gflops_per_s / peak.gflops if peak is not None else None


def apply_ratios(rows: list[Row], reference: Row) -> None:
    """Speed-up of every measured row of a group over ``reference`` (same rounds, paired)."""
    if not reference.measured:
        return
    for row in rows:
        if row.measured and len(row.timing.samples_ms) == len(reference.timing.samples_ms):
            row.reference = reference.label
            row.speedup_paired = paired_ratio(reference.timing.samples_ms, row.timing.samples_ms)
            row.speedup_of_medians = reference.timing.median_ms / row.timing.median_ms
