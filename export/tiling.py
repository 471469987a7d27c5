"""The tiling-ready split of a network (``runtime.manifest.Tiling``) and a reference tiler.

Dynamic-conv attention reads a global average pool, so a tile alone would get a different kernel.
The split exports, for dynamic layer i, ``stats_i``: LR tile (+ ``pooled_<k>`` for k < i) -> the
feature map whose global mean is layer i's attention input, and ``main``: LR tile + every
``pooled_<i>`` (N, C_i) -> upscaled tile. Means are summable over the tiles' core regions, so a
runtime computes them tile by tile, then runs ``main`` per tile: the result equals the untiled one.

``run_tiled`` below is that runtime procedure in numpy + ONNX Runtime; the tests and the export
self-check use it, and runtime/ can follow it step by step.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from train.models import DynamicConv2d, dynamic_convs

from .onnx_export import TRACE_HW, GraphSpec


class TilingMain(nn.Module):
    """tile + pooled statistics of every dynamic layer -> upscaled tile."""

    def __init__(self, lowered: nn.Module) -> None:
        super().__init__()
        self.model = lowered
        self.layers = dynamic_convs(lowered)

    def forward(self, x: torch.Tensor, *pooled: torch.Tensor) -> torch.Tensor:
        _set_overrides(self.layers, pooled)
        try:
            return self.model(x)
        finally:
            _set_overrides(self.layers, ())


class TilingStats(nn.Module):
    """tile (+ pooled statistics of the layers before ``index``) -> layer ``index``'s input features."""

    def __init__(self, lowered: nn.Module, index: int) -> None:
        super().__init__()
        self.model = lowered
        self.layers = dynamic_convs(lowered)
        self.index = index

    def forward(self, x: torch.Tensor, *pooled: torch.Tensor) -> torch.Tensor:
        target: DynamicConv2d = self.layers[self.index]
        _set_overrides(self.layers, pooled)
        target.capture = []
        try:
            self.model(x)  # the layers after the captured one are dead code, removed at export
            return target.capture[0]
        finally:
            target.capture = None
            _set_overrides(self.layers, ())


def _set_overrides(layers: list[DynamicConv2d], pooled: tuple[torch.Tensor, ...]) -> None:
    for i, layer in enumerate(layers):
        layer.pooled_override = pooled[i] if i < len(pooled) else None


@dataclass
class TilingGeometry:
    pooled_channels: list[int]
    feature_scale: float
    halo: int
    align: int


def pooled_name(i: int) -> str:
    return f"pooled_{i}"


def geometry(lowered: nn.Module, scale: int) -> TilingGeometry:
    """Channels, feature scale, alignment and halo (from the measured receptive field)."""
    layers = dynamic_convs(lowered)
    # nn.PixelUnshuffle and export/fusion.py's SpaceToDepth: tiles must start on their block grid.
    align = math.lcm(1, *(m.downscale_factor for m in lowered.modules()
                          if isinstance(getattr(m, "downscale_factor", None), int)))
    feature_scale = 1.0
    if layers:
        size = 8 * align
        with torch.no_grad():
            features = TilingStats(lowered, 0)(torch.rand(1, 3, size, size))
        feature_scale = features.shape[-1] / size
    radius = receptive_radius(TilingMain(lowered), len(layers), [m.in_channels for m in layers], scale, align)
    halo = align * math.ceil(radius / align)
    return TilingGeometry([m.in_channels for m in layers], feature_scale, halo, align)


def receptive_radius(main: nn.Module, n_pooled: int, channels: list[int], scale: int, align: int) -> int:
    """How far (in LR pixels) an output pixel's inputs reach, measured with autograd.

    A float64 copy whose weights are positive averages (each output sums its inputs with total
    weight 1) and biases 0.01 keeps every ReLU open, rules out cancellations and keeps sigmoids
    far from saturation, so the gradient's support is the structural receptive field.
    """
    probe = copy.deepcopy(main).double().eval()
    with torch.no_grad():
        for p in probe.parameters():
            p.fill_(1.0 / p[0].numel() if p.dim() >= 2 else 0.01)
    size = 96
    radius = 0
    for centre in range(size // 2, size // 2 + align):
        x = (torch.rand(1, 3, size, size, dtype=torch.float64) * 0.5 + 0.25).requires_grad_(True)
        pooled = [torch.rand(1, c, dtype=torch.float64) + 0.1 for c in channels[:n_pooled]]
        out = probe(x, *pooled)
        block = out[..., centre * scale : (centre + 1) * scale, centre * scale : (centre + 1) * scale]
        (block * torch.rand_like(block)).sum().backward()
        rows, cols = np.nonzero(x.grad.abs().sum(dim=(0, 1)).numpy())
        radius = max(radius, int(np.abs(rows - centre).max()), int(np.abs(cols - centre).max()))
        if radius >= size // 2 - 1:
            raise RuntimeError(f"receptive field reaches the probe's border ({size} px): not local")
    return radius


def stats_spec(index: int, channels: list[int], dynamic_batch: bool) -> GraphSpec:
    return _spec(index, channels, dynamic_batch, [f"features_{index}"])


def main_spec(channels: list[int], dynamic_batch: bool) -> GraphSpec:
    return _spec(len(channels), channels, dynamic_batch, ["output"])


def _spec(n_pooled: int, channels: list[int], dynamic_batch: bool, outputs: list[str]) -> GraphSpec:
    batch = {0: "N"} if dynamic_batch else {}
    names = ["input", *(pooled_name(i) for i in range(n_pooled))]
    example = (torch.rand(1, 3, *TRACE_HW), *(torch.rand(1, channels[i]) for i in range(n_pooled)))
    axes = {"input": {**batch, 2: "H", 3: "W"}, **{pooled_name(i): dict(batch) for i in range(n_pooled)}}
    axes[outputs[0]] = {**batch, 2: "H_out", 3: "W_out"}
    return GraphSpec(names, outputs, example, axes)


# ---- reference tiler (numpy + ONNX Runtime, no torch) ----------------------------------------


def tile_starts(length: int, core: int) -> list[tuple[int, int]]:
    """Core intervals [start, end) covering ``length`` with cores of ``core`` pixels."""
    return [(s, min(s + core, length)) for s in range(0, length, core)]


def run_tiled(
    stats: list[Callable[[dict[str, np.ndarray]], np.ndarray]],
    main: Callable[[dict[str, np.ndarray]], np.ndarray],
    image: np.ndarray,
    scale: int,
    feature_scale: float,
    halo: int,
    align: int,
    core: int,
) -> np.ndarray:
    """Upscale ``image`` (N, 3, H, W) tile by tile; ``stats``/``main`` run one graph on a feed dict.

    ``core`` must be a multiple of ``align``; every tile is its core plus ``halo`` on each side,
    clipped to the image, so tile edges inside the image stay multiples of ``align``.
    """
    if core % align or halo % align:
        raise ValueError(f"core ({core}) and halo ({halo}) must be multiples of align ({align})")
    n, _, height, width = image.shape
    tiles = [
        (y0, y1, x0, x1)
        for y0, y1 in tile_starts(height, core)
        for x0, x1 in tile_starts(width, core)
    ]

    def window(y0: int, y1: int, x0: int, x1: int) -> tuple[int, int, int, int]:
        return max(0, y0 - halo), min(height, y1 + halo), max(0, x0 - halo), min(width, x1 + halo)

    pooled: dict[str, np.ndarray] = {}
    for i, stats_graph in enumerate(stats):
        total, count = None, 0
        for y0, y1, x0, x1 in tiles:
            ty0, ty1, tx0, tx1 = window(y0, y1, x0, x1)
            features = stats_graph({"input": image[:, :, ty0:ty1, tx0:tx1], **pooled})
            fy0, fy1 = int((y0 - ty0) * feature_scale), math.ceil((y1 - ty0) * feature_scale)
            fx0, fx1 = int((x0 - tx0) * feature_scale), math.ceil((x1 - tx0) * feature_scale)
            core_features = features[:, :, fy0:fy1, fx0:fx1].astype(np.float64)
            part = core_features.sum(axis=(2, 3))
            total = part if total is None else total + part
            count += core_features.shape[2] * core_features.shape[3]
        pooled[pooled_name(i)] = (total / count).astype(np.float32)

    output = np.zeros((n, 3, height * scale, width * scale), dtype=np.float32)
    for y0, y1, x0, x1 in tiles:
        ty0, ty1, tx0, tx1 = window(y0, y1, x0, x1)
        tile_out = main({"input": image[:, :, ty0:ty1, tx0:tx1], **pooled})
        oy, ox = (y0 - ty0) * scale, (x0 - tx0) * scale
        output[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = tile_out[
            :, :, oy : oy + (y1 - y0) * scale, ox : ox + (x1 - x0) * scale
        ]
    return output


def ort_runner(path: str | Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    from .parity import ort_session

    session = ort_session(path)
    names = {i.name for i in session.get_inputs()}
    return lambda feed: session.run(None, {k: v for k, v in feed.items() if k in names})[0]
