"""Seamless tiling through fixed-shape graphs (LiteRT): every tile is exactly the graphs' shape.

A fixed-shape engine cannot take a clipped border tile, and padding an image up to its shape would
let the padding into the attention's pool and into every zero-padded conv near the border. The
fixed-shape tiling graphs (export/mobile.py, ``pooled=True``) take one more input, ``valid``: 1
where the tile lies inside the (align-padded) image, 0 beyond it, on the grid of the stats features.
The graphs multiply each zero-padded conv's input by it, and the tile beyond the image holds the
image's edge pixels replicated (what the replicate-padded blur reads there), so a tile overhanging
the image computes exactly what one whole-image run computes. Cores tile the image; regions start
``halo`` before their core (at 0 for the first) and have the graphs' fixed size, so only the last
region of a row or column overhangs.

:func:`run_fixed_tiles` is this module's counterpart of :func:`runtime.tiling.run_tiles`; the
statistics and the output cores are summed and kept exactly as there.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .manifest import Tiling
from .runners import Runner, TensorInfo
from .tiling import PooledHook, Tile, TileReader, TileWriter, float_image_io, pad_to_align, run_tiles


def spans(length: int, size: int, halo: int, align: int = 1) -> list[tuple[int, int, int]]:
    """(region start, core start, core stop) along one axis: regions of ``size`` covering ``length``."""
    if size <= 2 * halo or size % align or halo % align:
        raise UserError(f"fixed tiles of {size} px need more than twice the halo {halo} and multiples of "
                        f"align {align}")
    out, core = [], 0
    while core < length:
        start = 0 if core == 0 else core - halo
        if start + size >= length:
            start = max(0, min(start, length - size))
            out.append((start, core, length))
            break
        stop = start + size - halo
        out.append((start, core, stop))
        core = stop
    return out


def plan_fixed_tiles(height: int, width: int, shape: tuple[int, int], halo: int, align: int = 1) -> list[Tile]:
    """Tiles whose regions are all exactly ``shape`` (H, W); regions may extend past the bottom/right edge."""
    rows, cols = spans(height, shape[0], halo, align), spans(width, shape[1], halo, align)
    return [Tile(y0, y0 + shape[0], x0, x0 + shape[1], cy0, cy1, cx0, cx1)
            for y0, cy0, cy1 in rows for x0, cx0, cx1 in cols]


def border_indices(start: int, stop: int, size: int, border: str = "edge") -> np.ndarray:
    """Indices start..stop-1 into an axis of ``size``, folded back inside it beyond the end: "edge" repeats
    the last one, "reflect" mirrors about it (size, size + 1 -> size - 2, size - 3: numpy's and torch's reflect)."""
    index = np.arange(start, stop)
    if border == "reflect" and size > 1:
        period = 2 * (size - 1)
        index = index % period
        index = np.where(index >= size, period - index, index)
    return np.minimum(index, size - 1)


def edge_region(source: np.ndarray, tile: Tile, channels_first: bool = False, border: str = "edge") -> np.ndarray:
    """``source[y0:y1, x0:x1]`` of an H x W x C (or, ``channels_first``, C x H x W) image, filled as ``border``
    says (a Tiling's ``border``: edge-replicated or reflected) where a fixed-size tile overhangs it."""
    rows, cols = (1, 2) if channels_first else (0, 1)
    height, width = source.shape[rows], source.shape[cols]
    if tile.y1 <= height and tile.x1 <= width:
        return source[:, tile.y0 : tile.y1, tile.x0 : tile.x1] if channels_first else source[tile.y0 : tile.y1,
                                                                                              tile.x0 : tile.x1]
    ys, xs = border_indices(tile.y0, tile.y1, height, border), border_indices(tile.x0, tile.x1, width, border)
    return source[:, ys][:, :, xs] if channels_first else source[ys][:, xs]


@dataclass
class _Masked:
    """A view of a fixed-shape graph without its ``valid`` input, which it fills from the tiles last read."""

    runner: Runner
    name: str
    mask: np.ndarray | None = None

    @property
    def inputs(self) -> list[TensorInfo]:
        return [info for info in self.runner.inputs if info.name != self.name]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        assert self.mask is not None
        return self.runner.run({**feeds, self.name: self.mask})


def fixed_shape(runner: Runner, tiling: Tiling) -> tuple[int, int]:
    """The (H, W) every tile must have: the image input of a fixed-shape tiling graph."""
    image = next(info for info in runner.inputs if info.name not in (*tiling.pooled_inputs, tiling.valid_input))
    height, width = image.shape[-2:]
    if height is None or width is None:
        raise UserError(f"{tiling.main}: fixed-shape tiling needs fixed-shape graphs; its input is {image.describe()}")
    return height, width


def run_fixed_tiles(
    read: TileReader, write: TileWriter, height: int, width: int, tiling: Tiling, stats: list[Runner], main: Runner,
    scale: int, on_batch: Callable[[int], None] = lambda n: None, adjust: PooledHook | None = None,
) -> None:
    """Upscale an (align-padded) ``height`` x ``width`` image through fixed-shape tiling graphs
    (``adjust``: as :func:`runtime.tiling.run_tiles`'s).

    ``read`` gets tiles whose regions may extend past the image: it must fill them as ``tiling.border`` says."""
    if tiling.valid_input is None:
        raise UserError(f"{tiling.main}: not a fixed-shape tiling split (the manifest names no valid_input)")
    shape = fixed_shape(main, tiling)
    tiles = plan_fixed_tiles(height, width, shape, tiling.halo, tiling.align)
    views = [_Masked(r, tiling.valid_input) for r in (*stats, main)]
    grid = (math.ceil(shape[0] * tiling.feature_scale), math.ceil(shape[1] * tiling.feature_scale))

    def read_masked(group: list[Tile]) -> np.ndarray:
        masks = np.zeros((len(group), 1, *grid), dtype=np.float32)
        for n, t in enumerate(group):
            rows = math.ceil((min(t.y1, height) - t.y0) * tiling.feature_scale)
            cols = math.ceil((min(t.x1, width) - t.x0) * tiling.feature_scale)
            masks[n, :, :rows, :cols] = 1.0
        for view in views:
            view.mask = masks
        return read(group)

    run_tiles(read_masked, write, tiles, tiling, views[:-1], views[-1], scale, 1, on_batch, adjust)  # type: ignore[arg-type]


def upscale_fixed_tiled(image: np.ndarray, tiling: Tiling, stats: list[Runner], main: Runner, scale: int) -> np.ndarray:
    """float32 H x W x 3 -> (s*H) x (s*W) x 3 through fixed-shape tiling graphs (export certifies with it)."""
    height, width = image.shape[:2]
    padded_h, padded_w = (-(-height // tiling.align) * tiling.align, -(-width // tiling.align) * tiling.align)
    shape = fixed_shape(main, tiling)
    aligned = pad_to_align(image, tiling.align)
    source = np.pad(aligned, ((0, max(padded_h, shape[0]) - padded_h + shape[0]),
                              (0, max(padded_w, shape[1]) - padded_w + shape[1]), (0, 0)),
                    mode="reflect" if tiling.border == "reflect" and min(padded_h, padded_w) > 1 else "edge")
    out = np.zeros((padded_h * scale, padded_w * scale, 3), dtype=np.float32)
    run_fixed_tiles(*float_image_io(source, out, scale), padded_h, padded_w, tiling, stats, main, scale)
    return out[: height * scale, : width * scale]
