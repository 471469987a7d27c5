"""Seamless tiling for networks whose dynamic convolutions pool over the whole image.

Naive tiles would each see a different global average pool, hence different kernels and seams.
Export writes the network split in two (see :class:`runtime.manifest.Tiling`):

1. for each dynamic layer i, ``stats[i]`` maps a tile to the feature map whose *whole-image*
   mean drives layer i's attention; we run it over overlapping tiles, sum only each tile's
   core region (the halo's features are wrong near a tile edge but the core's are exact) and
   divide by the feature map's size: the exact global mean, in O(tile) memory;
2. ``main`` maps a tile plus every ``pooled_<i>`` to the upscaled tile; only the core of each
   output tile is kept, so every output pixel is computed from the same receptive field as in
   one whole-image run. Tiled == untiled within fp32 rounding.

The image is padded to a multiple of ``align`` first (edge replicate, bottom/right: what the
network itself does), so tile edges inside the image sit where the network's own grid does.

:func:`run_tiles` is the tiled path :class:`runtime.upscaler.Upscaler` runs; :func:`upscale_tiled`
runs it on one float image, which is how export certifies the tiling graphs it writes (the
manifest's ``tiling.parity``) and how :func:`probe_seams` checks them on a device.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .catalogue import FP32_MAX_ABS_DIFF
from .errors import UserError
from .manifest import Tiling
from .runners import Runner

# (tiles of one region shape) -> float32 (N, C, h, w) batch of those regions.
TileReader = Callable[[list["Tile"]], np.ndarray]
# (tile, float32 (C, s*h_core, s*w_core) output core) -> None
TileWriter = Callable[["Tile", np.ndarray], None]
# (dynamic layer index, its whole-image (1, C_i) statistics) -> the statistics to use instead
# (the video path's temporal smoothing, runtime/video/smoothing.py); layer i+1's statistics are
# computed with the adjusted values of layers <= i, as the network would see them.
PooledHook = Callable[[int, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Tile:
    """Input region ``[y0:y1, x0:x1]`` (core plus halo) and the core ``[cy0:cy1, cx0:cx1]`` it owns."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def plan_tiles(height: int, width: int, tile: int, halo: int, align: int = 1) -> list[Tile]:
    """Cover a ``height`` x ``width`` image with cores of at most ``tile`` pixels a side.

    Cores start at multiples of ``align``; each region extends ``halo`` (rounded up to ``align``)
    beyond its core, clipped at the image border.
    """
    align = max(1, align)
    step = max(align, tile // align * align)
    margin = math.ceil(max(0, halo) / align) * align
    tiles = []
    for cy0 in range(0, height, step):
        cy1 = min(cy0 + step, height)
        for cx0 in range(0, width, step):
            cx1 = min(cx0 + step, width)
            tiles.append(
                Tile(max(0, cy0 - margin), min(height, cy1 + margin), max(0, cx0 - margin), min(width, cx1 + margin),
                     cy0, cy1, cx0, cx1)
            )
    return tiles


def batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
    """Groups of up to ``size`` tiles with the same region shape (an engine batch is one shape)."""
    groups: dict[tuple[int, int], list[Tile]] = {}
    for tile in tiles:
        groups.setdefault(tile.shape, []).append(tile)
    for group in groups.values():
        for start in range(0, len(group), max(1, size)):
            yield group[start : start + max(1, size)]


def _span(start: int, stop: int, origin: int, factor: float) -> slice:
    # Core [start, stop) of a region starting at ``origin``, in a map ``factor`` x the input size;
    # ceil matches the network's own rounding (it pads odd sizes up).
    return slice(math.ceil((start - origin) * factor), math.ceil((stop - origin) * factor))


def pad_to_align(image: np.ndarray, align: int, channels_first: bool = False) -> np.ndarray:
    """An H x W x C (or, ``channels_first``, C x H x W) image edge-replicated at the bottom/right up to
    multiples of ``align``."""
    height, width = image.shape[1:] if channels_first else image.shape[:2]
    pad_h, pad_w = (-height) % align, (-width) % align
    if not (pad_h or pad_w):
        return image
    pads = ((0, 0), (0, pad_h), (0, pad_w)) if channels_first else ((0, pad_h), (0, pad_w), (0, 0))
    return np.pad(image, pads, mode="edge")


def check_upscaled(output: np.ndarray, batch_shape: tuple[int, ...], scale: int, engine: str) -> np.ndarray:
    """``output`` of ``engine`` run on an (N, C, h, w) batch if it is (N, 3, s*h, s*w) and finite,
    else UserError."""
    n, _, height, width = batch_shape
    expected = (n, 3, height * scale, width * scale)
    if tuple(output.shape) != expected:
        raise UserError(f"{engine} returned {tuple(output.shape)} for an input of {tuple(batch_shape)}, not the "
                        f"{expected} of scale {scale}: engine and manifest disagree")
    bad = output.size - int(np.count_nonzero(np.isfinite(output)))
    if bad:
        raise UserError(f"{engine} returned {bad} NaN/Inf value(s) in {output.size}: "
                        "refusing to write that picture")
    return output


def _features(runner: Runner, regions: np.ndarray, pooled: list[np.ndarray], tiling: Tiling, index: int) -> np.ndarray:
    """Layer ``index``'s features of ``regions``, checked against the manifest's channels and feature_scale."""
    features = next(iter(runner.run(_feeds(runner, regions, pooled, tiling.pooled_inputs)).values()))
    n, _, height, width = regions.shape
    expected = (n, tiling.pooled_channels[index],
                math.ceil(height * tiling.feature_scale), math.ceil(width * tiling.feature_scale))
    if tuple(features.shape) != expected:
        raise UserError(f"{tiling.stats[index]} returned features {tuple(features.shape)} for a tile of "
                        f"{tuple(regions.shape)}; the manifest's pooled_channels {tiling.pooled_channels[index]} "
                        f"and feature_scale {tiling.feature_scale:g} need {expected}")
    if not np.isfinite(features).all():
        raise UserError(f"{tiling.stats[index]} returned NaN/Inf features")
    return features


def _feeds(runner: Runner, batch: np.ndarray, pooled: list[np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    feeds = {}
    for info in runner.inputs:
        if info.name in names:
            value = pooled[names.index(info.name)]
            feeds[info.name] = np.repeat(value, batch.shape[0], axis=0).astype(info.dtype, copy=False)
        else:
            feeds[info.name] = batch.astype(info.dtype, copy=False)
    return feeds


def pooled_statistics(
    read: TileReader, tiles: list[Tile], tiling: Tiling, stats: list[Runner], batch: int = 1,
    on_batch: Callable[[int], None] = lambda n: None, adjust: PooledHook | None = None,
) -> list[np.ndarray]:
    """The whole-image ``pooled_<i>`` of every dynamic layer, each (1, C_i) float32 (``adjust``ed if given)."""
    pooled: list[np.ndarray] = []
    for index, runner in enumerate(stats):
        total = np.zeros(tiling.pooled_channels[index], dtype=np.float64)
        count = 0
        for group in batches(tiles, batch):
            regions = read(group)
            features = _features(runner, regions, pooled, tiling, index)
            for tile, feature in zip(group, features, strict=True):
                rows = _span(tile.cy0, tile.cy1, tile.y0, tiling.feature_scale)
                cols = _span(tile.cx0, tile.cx1, tile.x0, tiling.feature_scale)
                core = feature[:, rows, cols].astype(np.float64)
                total += core.sum(axis=(1, 2))
                count += core.shape[1] * core.shape[2]
            on_batch(len(group))
        mean = (total / max(count, 1)).astype(np.float32)[None, :]
        pooled.append(mean if adjust is None else np.asarray(adjust(index, mean), dtype=np.float32))
    return pooled


def upscale_tiles(
    read: TileReader, write: TileWriter, tiles: list[Tile], tiling: Tiling, main: Runner,
    pooled: list[np.ndarray], scale: int, batch: int = 1, on_batch: Callable[[int], None] = lambda n: None,
) -> None:
    """Run ``main`` on every tile with the whole-image statistics; hand each output core to ``write``."""
    for group in batches(tiles, batch):
        regions = read(group)
        output = next(iter(main.run(_feeds(main, regions, pooled, tiling.pooled_inputs)).values()))
        check_upscaled(output, regions.shape, scale, tiling.main)
        for tile, result in zip(group, output, strict=True):
            rows = _span(tile.cy0, tile.cy1, tile.y0, scale)
            cols = _span(tile.cx0, tile.cx1, tile.x0, scale)
            write(tile, result[:, rows, cols])
        on_batch(len(group))


def run_tiles(
    read: TileReader, write: TileWriter, tiles: list[Tile], tiling: Tiling, stats: list[Runner], main: Runner,
    scale: int, batch: int = 1, on_batch: Callable[[int], None] = lambda n: None, adjust: PooledHook | None = None,
) -> None:
    """The tiled path: whole-image statistics over ``tiles``, then every tile's output core to ``write``."""
    pooled = pooled_statistics(read, tiles, tiling, stats, batch, on_batch, adjust)
    upscale_tiles(read, write, tiles, tiling, main, pooled, scale, batch, on_batch)


def float_image_io(source: np.ndarray, out: np.ndarray, scale: int) -> tuple[TileReader, TileWriter]:
    """The reader of float32 H x W x 3 ``source`` (every tile region inside it) and the writer of the
    output cores into ``out``, (s*H) x (s*W) x 3: the one-image runs of :func:`upscale_tiled` and
    :func:`runtime.fixed_tiling.upscale_fixed_tiled`."""

    def read(group: list[Tile]) -> np.ndarray:
        return np.ascontiguousarray(np.stack([source[t.y0 : t.y1, t.x0 : t.x1] for t in group]).transpose(0, 3, 1, 2))

    def write(t: Tile, core: np.ndarray) -> None:
        out[t.cy0 * scale : t.cy1 * scale, t.cx0 * scale : t.cx1 * scale] = core.transpose(1, 2, 0)

    return read, write


def upscale_tiled(image: np.ndarray, tiling: Tiling, stats: list[Runner], main: Runner, scale: int, tile: int,
                  batch: int = 1) -> np.ndarray:
    """float32 H x W x 3 -> (s*H) x (s*W) x 3 through the tiling graphs in tiles of at most ``tile``
    LR pixels a side: padded to ``align``, tiled, cropped back, as the Upscaler runs a float image."""
    height, width = image.shape[:2]
    source = pad_to_align(image, tiling.align)
    out = np.zeros((source.shape[0] * scale, source.shape[1] * scale, 3), dtype=np.float32)
    tiles = plan_tiles(source.shape[0], source.shape[1], tile, tiling.halo, tiling.align)
    run_tiles(*float_image_io(source, out, scale), tiles, tiling, stats, main, scale, batch)
    return out[: height * scale, : width * scale]


def probe_seams(tiling: Tiling, stats: list[Runner], main: Runner, scale: int,
                max_abs_diff: float = FP32_MAX_ABS_DIFF) -> None:
    """Run one small random image tiled and whole through the tiling graphs; UserError if they differ.

    This is what proves the manifest's ``halo`` and ``align`` right for these graphs at run time: a
    halo below the graphs' receptive field, or tiles off their block grid, make seams. The probe's
    second tile starts ``r * align`` pixels in, with ``r`` >= halo / align and ``r % 6 == 1``, so
    a true grid of 2, 3, 4 or 6 times ``align`` is hit off its grid (5 or 7 times would slip), and
    at least a halo's worth of image lies beyond that tile's region. ``feature_scale`` and the
    channels are checked on every tile by :func:`pooled_statistics`.
    """
    align, halo = tiling.align, tiling.halo
    first = max(halo // align, math.ceil(8 / align), 1)
    offset = (first + (1 - first) % 6) * align
    core = offset + halo
    side = core + align
    # Mid-range values keep activations unsaturated; an engine failing on extreme pixels fails on those images.
    image = np.random.default_rng(0).random((side, side, 3), dtype=np.float32) * 0.5 + 0.25
    whole, tiled = (upscale_tiled(image, tiling, stats, main, scale, size) for size in (2 * side, core))
    worst = float(np.abs(whole - tiled).max())
    if not worst <= max_abs_diff:
        raise UserError(f"tiling graphs are not seamless with the manifest's halo {halo} and align {align}: a "
                        f"{side}x{side} probe tiled differs from it whole by {worst:.3g} (> {max_abs_diff:g}); "
                        "the manifest's tiling values do not match its graphs")
