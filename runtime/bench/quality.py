"""``python -m runtime.bench ARTIFACT --quality DIR``: the evaluation protocol on this device.

The HR images of DIR get their LR by the protocol (:mod:`runtime.quality`) at the artifact's
scale; every engine that was timed upscales each whole LR image through :class:`runtime.Upscaler`
(which tiles, exactly, where the engine cannot take the image whole), the float output is rounded
once to uint8 and scored (Y-channel PSNR/SSIM, border = scale) beside the MATLAB bicubic baseline.
Same numbers as ``python -m train evaluate`` for the same network, without torch; ``--quality-protocol authors``
measures as the DyConvSR authors do (runtime.quality.PROTOCOLS), as ``train evaluate --protocol authors``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..images import to_uint8
from ..progress import progress_bar
from ..quality import (
    MATLAB_BICUBIC,
    STANDARD,
    Protocol,
    ProtocolImage,
    SetQuality,
    bicubic_quality,
    network_input,
    protocol_images,
    read_hr_folder,
    score_set,
)
from ..upscaler import Upscaler
from .engines import Engine, NotMeasured, RunnerEngine
from .protocol import one_line
from .rows import bicubic_info, quality_row
from .schema import QualityRow


@dataclass(frozen=True)
class QualitySet:
    """The protocol's images of one folder at one scale, with the bicubic baseline already scored."""

    dataset: str
    scale: int
    images: list[ProtocolImage]
    bicubic: SetQuality
    protocol: Protocol = STANDARD


def quality_set(folder: Path, scale: int, protocol: Protocol = STANDARD) -> QualitySet:
    """Read and prepare ``folder``; scoring the bicubic baseline here refuses images too small for
    the protocol (below the scale, or below SSIM's window after the border) before any timing."""
    images = protocol_images(read_hr_folder(folder), scale, protocol)
    dataset = folder.resolve().name
    return QualitySet(dataset, scale, images, bicubic_quality(dataset, images, scale, protocol), protocol)


def engine_quality(
    artifact: Path, engine: RunnerEngine, data: QualitySet, step: Callable[[int], object] | None = None
) -> SetQuality:
    """Upscale every image of ``data`` with ``engine``'s variant and runner settings, and score it."""
    variant = engine.variant.file if engine.variant is not None else None
    with Upscaler(artifact, variant=variant, config=engine.config) as upscaler:
        return score_set(data.dataset, data.images, data.scale,
                         lambda image: to_uint8(upscaler.upscale_array(network_input(image.lr))), step, data.protocol)


def quality_rows(
    artifact: Path, model: str, engines: Sequence[Engine | NotMeasured], data: QualitySet, quiet: bool = False
) -> tuple[list[QualityRow], list[str]]:
    """A row per engine that ran (then the bicubic row), and a note per engine that failed."""
    runnable = [e for e in engines if isinstance(e, RunnerEngine)]
    rows, notes = [], []
    bar = progress_bar(total=len(runnable) * len(data.images), quiet=quiet, desc=f"quality {data.dataset}",
                       unit="img", leave=False)
    try:
        for engine in runnable:
            bar.set_postfix_str(engine.info.label)
            try:
                rows.append(quality_row(model, engine.info, engine_quality(artifact, engine, data, bar.update)))
            except Exception as exc:  # one engine failing is a note of the report, not a crash
                notes.append(f"quality of {engine.info.label} not measured: {one_line(exc)}")
    finally:
        bar.close()
    rows.append(quality_row(model, bicubic_info(), data.bicubic))
    return rows, notes


def quality_summary(rows: Sequence[QualityRow]) -> list[str]:
    """One line per engine: mean Y-PSNR/SSIM and the gain over the bicubic baseline."""
    bicubic = next((r for r in rows if r.label == MATLAB_BICUBIC), None)
    lines = []
    for row in rows:
        line = (f"quality {row.dataset} x{row.scale} {row.label:<44} Y-PSNR {row.psnr_y:6.2f} dB  "
                f"Y-SSIM {row.ssim_y:.4f}")
        if bicubic is not None and row is not bicubic:
            line += (f"  (bicubic {bicubic.psnr_y:.2f} dB / {bicubic.ssim_y:.4f}, "
                     f"{row.psnr_y - bicubic.psnr_y:+.2f} dB)")
        lines.append(line)
    return lines
