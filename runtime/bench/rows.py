"""Turning results into report rows: a measured group (figures, parity and ratios against a
reference) and an engine's scores on a set of images."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..catalogue import canonical_precision
from ..parity import compare, tolerance_for
from ..quality import MATLAB_BICUBIC, SetQuality
from .engines import EngineInfo
from .machine import MatmulPeak
from .protocol import Outcome
from .schema import MEASURED, QualityRow, Row, apply_ratios, derive_figures


def bench_input(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """The shared float32 NCHW input in [0, 1]: deterministic, the same for every engine and machine.

    Smooth gradients plus noise: convolution cost does not depend on content, but parity figures
    are more telling on image-like data than on pure noise.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, height, dtype=np.float32), np.linspace(0, 1, width, dtype=np.float32),
                         indexing="ij")
    base = np.stack([xx, yy, 0.5 * (xx + yy)])[None]
    noise = rng.random((batch, 3, height, width), dtype=np.float32)
    return np.clip(0.7 * base + 0.3 * noise, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class GroupInfo:
    model: str
    scale: int
    resolution: str
    batch: int
    input_hw: tuple[int, int]
    threads: int
    # Rows of several models timed in the same rounds share one group name (the first model's).
    shared_with: str | None = None

    @property
    def name(self) -> str:
        return f"{self.shared_with or self.model} x{self.scale} {self.resolution}"

    @property
    def output_hw(self) -> list[int]:
        return [self.input_hw[0] * self.scale, self.input_hw[1] * self.scale]


def build_rows(
    group: GroupInfo,
    outcomes: list[Outcome],
    reference_label: str | None,
    complexity: Callable[[EngineInfo], tuple[int | None, int | None]],
    peaks: Sequence[MatmulPeak],
) -> list[Row]:
    """One row per outcome. ``complexity(info)`` gives (params, MACs) of what that engine executes;
    each row's peak fraction divides by the one of ``peaks`` in its own precision."""
    rows = []
    reference = next((o for o in outcomes if o.engine.info.label == reference_label), None)
    for outcome in outcomes:
        info = outcome.engine.info
        params, macs = complexity(info)
        row = Row(
            group=group.name, model=group.model, scale=group.scale, resolution=group.resolution,
            input_hw=list(group.input_hw), output_hw=group.output_hw, batch=group.batch, label=info.label,
            backend=info.backend, variant=info.variant, precision=info.precision, strategy=info.strategy,
            device=info.device, threads=group.threads, status=outcome.status, engine=outcome.description,
            timing=outcome.timing, memory=outcome.memory, params=params, macs=macs, notes=dict(info.notes),
        )
        if reference is not None and reference.output is not None and outcome.output is not None:
            parity = compare(outcome.output, reference.output, {})
            # Infinite where they are (identical outputs: PSNR inf); Report.write writes them as null.
            row.parity_psnr_db, row.parity_max_abs_diff = parity.psnr_db, parity.max_abs_diff
            variant = getattr(outcome.engine, "variant", None)
            if variant is not None:
                row.tolerance = tolerance_for(variant, canonical_precision(info.precision))
        derive_figures(row, peaks)
        rows.append(row)
    ref_row = next((r for r in rows if r.label == reference_label and r.status == MEASURED), None)
    if ref_row is not None:
        apply_ratios(rows, ref_row)
    return rows


def bicubic_info() -> EngineInfo:
    """What the protocol's bicubic baseline row names as its engine."""
    return EngineInfo(MATLAB_BICUBIC, "numpy", "imresize", "float64")


def quality_row(
    model: str, info: EngineInfo, quality: SetQuality, params: int | None = None, vs_reference_db: float | None = None
) -> QualityRow:
    """One engine's mean Y-PSNR/SSIM (and RGB PSNR) on a set; ``vs_reference_db``: its float output
    against the reference's on the same images (worst image), infinity written as null."""
    mean = quality.mean
    finite = vs_reference_db if vs_reference_db is None or np.isfinite(vs_reference_db) else None
    return QualityRow(
        model=model, scale=quality.scale, label=info.label, backend=info.backend, variant=info.variant,
        precision=info.precision, dataset=quality.dataset, images=len(quality.per_image),
        psnr_y=mean.psnr_y, ssim_y=mean.ssim_y, psnr_rgb=mean.psnr_rgb, params=params,
        psnr_vs_reference_db=finite,
        per_image={name: {"psnr_y": s.psnr_y, "ssim_y": s.ssim_y} for name, s in quality.per_image.items()},
        protocol=quality.protocol,
    )
