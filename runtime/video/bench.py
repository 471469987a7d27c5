"""Video throughput, for ``runtime.bench --video`` and ``benchmarks.run --video``: one row per engine variant.

Per size (the benchmark names: 720p is 640x360 -> 1280x720 at x2, 1080p 960x540 -> 1920x1080), a
panned clip of ``frames`` frames is written once (a deterministic textured picture: the engine's
cost does not depend on content, the encoder's a little). For every variant: the engine alone on
the decoded frames (:meth:`runtime.Upscaler.upscale_planar`, after warm-up), then file to file
through :func:`runtime.video.upscale_video` (decode, engine and encode overlapping).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..bench.resolutions import parse_resolution
from ..bench.schema import FAILED, MEASURED, NOT_MEASURED, VideoRow
from ..errors import BackendUnavailable, UserError, first_line
from ..manifest import Manifest
from ..runners import RunnerConfig, backend_for
from ..upscaler import VIDEO_TILE, Upscaler
from .clip import PannedClip, write_clip
from .decode import DecodedFrame, VideoReader
from .encode import EncodeConfig
from .flicker import FlickerReport, StepMeter, TemporalMad
from .pipeline import VideoOptions, upscale_frame, upscale_video
from .smoothing import PooledSmoother, SmoothingConfig, statistics_vector

VIDEO_RESOLUTIONS = ("720p", "1080p")
WARMUP = 2


def bench_picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 HxWx3: gradients and texture at a quarter of the resolution (not per-pixel noise, which
    no camera records and which would make the encoder, not the engine, the subject)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, height, dtype=np.float32), np.linspace(0, 1, width, dtype=np.float32),
                         indexing="ij")
    base = np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)
    texture = rng.random((height // 4 + 1, width // 4 + 1, 3), dtype=np.float32).repeat(4, 0).repeat(4, 1)
    return (np.clip(0.7 * base + 0.3 * texture[:height, :width], 0, 1) * 255 + 0.5).astype(np.uint8)


def video_rows(folder: Path, manifest: Manifest, variants: list[str], resolutions: list[str], threads: int,
               frames: int = 30, encode: EncodeConfig | None = None, smoothing: float = 0.0) -> list[VideoRow]:
    encode = encode or EncodeConfig()
    rows: list[VideoRow] = []
    scale = manifest.scale
    with tempfile.TemporaryDirectory(prefix="video-bench-") as temp:
        for text in resolutions:
            resolution = parse_resolution(text)
            height, width = resolution.lr_size(scale)
            pan = PannedClip(bench_picture((height + frames) * scale, (width + 2 * frames) * scale), scale,
                             (width, height), frames)
            clip = write_clip(Path(temp) / f"{resolution.name}.mp4", pan.lr_frames(), 30)
            with VideoReader(clip) as reader:
                decoded = [item.planes for item in reader.items() if isinstance(item, DecodedFrame)]
            for variant in variants:
                chosen = manifest.variant(variant)
                row = VideoRow(manifest.model_name, scale, resolution.name, [height, width],
                               [height * scale, width * scale], f"video {variant}", "", variant,
                               chosen.precision, threads, MEASURED, codec=encode.codec_name,
                               preset=encode.preset, smoothing=smoothing)
                fixed = chosen.fixed_input_shape
                if fixed and tuple(fixed[-2:]) != (height, width) and chosen.tiling is None:
                    # The upscaler would run the artifact's fp32 tiling graphs instead: not this file's speed.
                    row.status = f"{NOT_MEASURED}: fixed input shape {fixed[-1]}x{fixed[-2]}"
                    rows.append(row)
                    continue
                try:
                    row.backend = backend_for(folder / variant, RunnerConfig())
                    _measure(row, folder, variant, clip, decoded, Path(temp) / "out.mp4", encode, smoothing)
                except BackendUnavailable as exc:
                    row.status = f"{NOT_MEASURED}: {first_line(exc)}"
                except (UserError, RuntimeError, OSError) as exc:
                    row.status = f"{FAILED}: {first_line(exc)}"
                rows.append(row)
    return rows


def _measure(row: VideoRow, folder: Path, variant: str, clip: Path, decoded: list[np.ndarray], out: Path,
             encode: EncodeConfig, smoothing: float) -> None:
    config = SmoothingConfig(smoothing)
    with Upscaler(folder, variant=variant, config=RunnerConfig(threads=row.threads), tile=VIDEO_TILE) as upscaler:
        row.engine = upscaler.engine.description
        smoother = PooledSmoother(config) if config.enabled else None
        for planes in decoded[:WARMUP]:
            upscale_frame(upscaler, planes, smoother)
        tick = time.perf_counter()
        for planes in decoded:
            upscale_frame(upscaler, planes, smoother)
        row.engine_fps = len(decoded) / (time.perf_counter() - tick)
        result = upscale_video(upscaler, clip, out, VideoOptions(encode=encode, smoothing=config), overwrite=True)
    row.frames = result.frames
    row.end_to_end_fps = result.fps
    row.end_to_end_share = result.fps / row.engine_fps
    row.decode_ms = 1000 * result.decode_seconds / result.frames
    row.encode_ms = 1000 * result.encode_seconds / result.frames


def video_summary(rows: list[VideoRow]) -> list[str]:
    lines = []
    for row in rows:
        name = f"{row.model} x{row.scale} {row.resolution}"
        if row.status != MEASURED:
            lines.append(f"{name:<24} {row.label:<44} {row.status}")
            continue
        lines.append(f"{name:<24} {row.label:<44} engine {row.engine_fps:6.1f} fps  end to end "
                     f"{row.end_to_end_fps:6.1f} fps ({100 * row.end_to_end_share:.0f}%)  decode {row.decode_ms:.1f} "
                     f"ms  encode {row.encode_ms:.1f} ms/frame")
    return lines


def flicker_figures(folder: Path, pan: PannedClip, clip: Path, strength: float, variant: str | None = None,
                    threads: int = 0) -> dict[str, float | None]:
    """Y-PSNR against the HR frames (border = scale) and the flicker figures of one run over ``clip``
    (made from ``pan``): temporal MAD of output and HR, and the pooled statistics' step."""
    from ..metrics import psnr, y_channel

    hr = list(pan.hr_frames())
    hr_mad, out_mad, stats = TemporalMad(), TemporalMad(), StepMeter()
    scores: list[float] = []
    border = pan.scale
    with Upscaler(folder, variant=variant, config=RunnerConfig(threads=threads), tile=VIDEO_TILE) as upscaler, \
            VideoReader(clip) as reader:
        smoother = PooledSmoother(SmoothingConfig(strength if strength > 0 else 0.5))
        raw, aligned, previous = StepMeter(), [], None
        dx, dy = pan.step[0] * pan.scale, pan.step[1] * pan.scale
        w, h = pan.hr_size
        for item in reader.items():
            if not isinstance(item, DecodedFrame):
                continue
            smoother.next_frame(item.planes)
            # The statistics are always computed (to measure them); only strength > 0 uses the smoothed ones.
            if strength > 0:
                planes = upscaler.upscale_planar(item.planes, adjust_pooled=smoother.adjust)
                stats.add(statistics_vector(smoother.used))
            else:  # the per-frame output; the statistics from a second, recording pass
                planes = upscaler.upscale_planar(item.planes)
                upscaler.upscale_planar(item.planes, adjust_pooled=lambda i, p: smoother.raw.__setitem__(i, p) or p)
            raw.add(statistics_vector(smoother.raw))
            frame = (np.clip(planes.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
            target = hr[item.index]
            if previous is not None:  # the pan undone: what is left is the upscaler's own change
                aligned.append(float(np.abs(frame[: h - dy, : w - dx].astype(np.float32)
                                            - previous[dy:, dx:].astype(np.float32)).mean()))
            previous = frame
            out_mad.add(frame)
            hr_mad.add(target)
            scores.append(psnr(y_channel(frame)[border:-border, border:-border],
                               y_channel(target)[border:-border, border:-border]))
    report = FlickerReport(out_mad.value, hr_mad.value, stats.mean)
    return {"psnr_y": float(np.mean(scores)), "output_mad": report.output_mad, "hr_mad": report.hr_mad,
            "ratio": report.ratio, "statistics_step": report.statistics_step, "raw_statistics_step": raw.mean,
            "aligned_mad": float(np.mean(aligned)) if aligned else None, "cuts": float(len(smoother.cuts))}
