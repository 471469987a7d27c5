"""Turning a measured group into report rows: figures, parity and ratios against a reference."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..parity import compare
from .engines import EngineInfo
from .machine import MatmulPeak
from .protocol import Outcome
from .schema import MEASURED, Row, apply_ratios, derive_figures


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
    peak: MatmulPeak | None,
) -> list[Row]:
    """One row per outcome. ``complexity(info)`` gives (params, MACs) of what that engine executes."""
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
            # JSON has no infinity: identical outputs are max |diff| 0 with PSNR null.
            row.parity_psnr_db = parity.psnr_db if np.isfinite(parity.psnr_db) else None
            row.parity_max_abs_diff = parity.max_abs_diff if np.isfinite(parity.max_abs_diff) else None
        derive_figures(row, peak)
        rows.append(row)
    ref_row = next((r for r in rows if r.label == reference_label and r.status == MEASURED), None)
    if ref_row is not None:
        apply_ratios(rows, ref_row)
    return rows
