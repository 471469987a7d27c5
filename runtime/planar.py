"""The one run of an image through an :class:`runtime.Upscaler`'s engine, whatever its layout.

:func:`run_regions` is what both :meth:`Upscaler.upscale_array` (images, HxWxC) and
:func:`upscale_planar` (the video path's float32 3xHxW frames) call: the image given as a tile
reader and writer, it runs whole on the engine, tiled through the tiling graphs with whole-image
attention statistics (:mod:`runtime.tiling`), or tiled through fixed-shape graphs with a ``valid``
mask (:mod:`runtime.fixed_tiling`, the LiteRT files), and refuses a picture with any pixel left
without engine output. ``adjust`` (the video path's temporal smoothing) replaces the statistics on
either tiled path; with it, a frame that would run whole runs as one tile through the tiling graphs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .errors import UserError
from .fixed_tiling import edge_region
from .tiling import PooledHook, Tile, TileReader, TileWriter, pad_to_align

if TYPE_CHECKING:
    from .upscaler import Upscaler


def run_regions(upscaler: Upscaler, read: TileReader, write: TileWriter, height: int, width: int,
                covered: tuple[int, int], adjust: PooledHook | None = None, what: str = "picture") -> None:
    """Upscale an align-padded ``height`` x ``width`` image through ``read``/``write`` (each output core
    ``write`` gets is CHW, up to ``scale`` x its tile's core); every LR pixel of the ``covered`` (H, W)
    top-left region must get output, or UserError."""
    if adjust is not None and upscaler.tiling is None:
        raise UserError("smoothing the attention statistics needs the artifact's tiling graphs "
                        "(pass the artifact folder, not a bare engine)")
    scale = upscaler.scale
    seen = np.zeros(covered, dtype=bool)  # LR pixels whose output has been written

    def tracked(tile: Tile, core: np.ndarray) -> None:
        write(tile, core)
        rows, cols = core.shape[1] // scale, core.shape[2] // scale
        seen[tile.cy0 : tile.cy0 + rows, tile.cx0 : tile.cx0 + cols] = True

    tiles = upscaler.plan(height, width)
    whole = Tile(0, height, 0, width, 0, height, 0, width)
    if tiles is None and adjust is None:
        tracked(whole, upscaler.run_whole(read([whole]))[0])
    else:
        upscaler.run_tiled(read, tracked, tiles or [whole], height, width, adjust)
    if not seen.all():
        raise UserError(f"{np.count_nonzero(~seen)} of {seen.size} pixels got no engine output: "
                        f"refusing a partial {what}")


def upscale_planar(upscaler: Upscaler, planes: np.ndarray, adjust_pooled: PooledHook | None = None) -> np.ndarray:
    """float32 3xHxW RGB planes in [0, 1] -> float32 3x(s*H)x(s*W), the engine's output unclipped
    (see :meth:`runtime.Upscaler.upscale_planar`)."""
    if planes.ndim != 3 or planes.shape[0] != 3 or planes.dtype != np.float32:
        raise UserError(f"planes must be float32 3xHxW; got {planes.dtype} {planes.shape}")
    _, height, width = planes.shape
    if height < upscaler.min_size or width < upscaler.min_size:
        raise UserError(f"frame is {width}x{height}; this model needs at least "
                        f"{upscaler.min_size}x{upscaler.min_size}")
    scale = upscaler.scale
    source = pad_to_align(planes, upscaler.align, channels_first=True)
    padded_h, padded_w = source.shape[1:]
    if adjust_pooled is None and upscaler.plan(padded_h, padded_w) is None:
        # Whole on the engine: the output is the engine's own array, cropped (no copy).
        return upscaler.run_whole(source[None])[0, :, : height * scale, : width * scale]
    out = np.zeros((3, height * scale, width * scale), dtype=np.float32)

    def read(group: list[Tile]) -> np.ndarray:
        regions = [edge_region(source, t, channels_first=True, border=upscaler.border) for t in group]
        return np.ascontiguousarray(np.stack(regions))

    def write(tile: Tile, core: np.ndarray) -> None:
        y, x = tile.cy0 * scale, tile.cx0 * scale
        core = core[:, : out.shape[1] - y, : out.shape[2] - x]
        out[:, y : y + core.shape[1], x : x + core.shape[2]] = core

    run_regions(upscaler, read, write, padded_h, padded_w, (height, width), adjust_pooled, "frame")
    return out
