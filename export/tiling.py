"""The tiling-ready split of a network (``runtime.manifest.Tiling``): its graphs and their geometry.

Dynamic-conv attention reads a global average pool, so a tile alone would get a different kernel.
The split exports, for dynamic layer i, ``stats_i``: LR tile (+ ``pooled_<k>`` for k < i) -> the
feature map whose global mean is layer i's attention input, and ``main``: LR tile + every
``pooled_<i>`` (N, C_i) -> upscaled tile. Means are summable over the tiles' core regions, so a
runtime computes them tile by tile, then runs ``main`` per tile: the result equals the untiled one.
That tiler is :mod:`runtime.tiling`, the one devices run; export certifies the graphs with it.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime import catalogue
from runtime.manifest import Parity, Tiling
from runtime.parity import compare_all
from runtime.runners import make_runner
from runtime.tiling import upscale_tiled
from train.models import DynamicConv2d, dynamic_convs

from .onnx_export import TRACE_HW, GraphSpec
from .parity import EXPORT_RUNNER


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


def certify_tiling(folder: Path, tiling: Tiling, scale: int, images: np.ndarray, references: np.ndarray) -> Parity:
    """The runtime's own tiler (:func:`runtime.tiling.upscale_tiled`, the path the Upscaler runs) on
    the tiling graphs written into ``folder``, on ``images`` (N, 3, H, W) in tiles of about 8 LR
    pixels, against their PyTorch ``references``: the manifest's ``tiling.parity``."""
    tile = tiling.align * max(1, 8 // tiling.align)
    with contextlib.ExitStack() as stack:
        stats = [stack.enter_context(make_runner(folder / name, EXPORT_RUNNER)) for name in tiling.stats]
        main = stack.enter_context(make_runner(folder / tiling.main, EXPORT_RUNNER))
        tiled = [upscale_tiled(np.ascontiguousarray(image.transpose(1, 2, 0)), tiling, stats, main, scale, tile)
                 for image in images]
    return compare_all([np.stack(tiled).transpose(0, 3, 1, 2)], [references], catalogue.tolerance("fp32"))
