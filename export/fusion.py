"""Pixel-shuffle fusion for DyConvSR: one PixelShuffle(2s) instead of PixelShuffle(2) + skip + PixelShuffle(s).

The network ends with ``PixelShuffle(s)(PixelShuffle(2)(feat) + repeat(x, s^2))``. Both shuffles
only move values, so the output pixel (c, s*(2h+p)+i, s*(2w+q)+j) reads feat channel
``(c*s^2 + i*s + j)*4 + p*2 + q`` at (h, w) plus x(c, 2h+p, 2w+q). A single PixelShuffle(2s)
(ONNX DepthToSpace, CRD mode) reads channel ``c*4s^2 + (s*p+i)*2s + (s*q+j)`` for the same pixel,
so permuting the output channels of the tail and high-frequency convs (rows of their weights and
biases) by that map gives the same values, and the skip becomes ``PixelUnshuffle(2)(x)`` (already
computed for the head) with each channel copied over its s x s sub-block by a constant 0/1 1x1
conv, added at LR/2
resolution. Everything between the convs and the shuffle is elementwise or, for CBAM's spatial
attention, a channel mean and max, which no channel permutation changes.

The input side gets the mirror treatment: PixelUnshuffle(2) exports as a 6-D Reshape-Transpose-
Reshape, while ONNX's SpaceToDepth(2) does the same move in one op with the channels in
(row offset, column offset, colour) order instead of (colour, row offset, column offset). The fused
copy swaps its ``unshuffle`` for :class:`SpaceToDepth` and permutes the input channels of every
conv that reads it (head, high-frequency, the skip), so every value is unchanged.

The high-frequency branch ``SpaceToDepth(x - blur(x))`` moves to the LR/2 grid as well
(:class:`PhaseBlur`): a 5x5 blur at full resolution is, on the space-to-depth channels, a 3x3 conv
12 -> 12 (each output phase reads the input phases its 5x5 window covers), and full-resolution
replicate padding by 2 is, on that grid, a 1-pixel border whose phases all copy the edge pixel. So
``detail = lr - PhaseBlur(lr)`` reuses the head's ``lr`` and drops the full-resolution pad, the
depthwise conv (the slowest conv per MAC in ONNX Runtime) and the second SpaceToDepth.

Why: ONNX Runtime runs two DepthToSpace(2) on full-resolution tensors about 7x slower than one
DepthToSpace(4) (CRD), which runs at memcpy speed; DCR order is 2x slower again; the two 6-D
Transposes of PixelUnshuffle took 11% of the fused graph's time; the full-resolution depthwise
blur took 1.75 of 30.8 ms (docs/performance.md).
"""
from __future__ import annotations

import copy
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from runtime.errors import UserError
from train.models import model_config, model_traits
from train.models.common import check_choice, pad_to_multiple
from train.models.dyconvsr import BLUR_PADDINGS, DyConvSR, skip_colours
from train.models.dynamic_conv import DynamicConv2d

NOTE = ("pixel-shuffle fusion: tail/high-frequency conv outputs permuted, repeat skip added at LR/2 "
        "resolution, one DepthToSpace(2s, CRD) instead of two shuffles; SpaceToDepth(2) with permuted conv "
        "inputs instead of PixelUnshuffle's 6-D transposes; the high-frequency blur as a 3x3 conv on the "
        "space-to-depth channels (export/fusion.py)")


def _space_to_depth(x: torch.Tensor, block: int) -> torch.Tensor:
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // block, block, w // block, block)
    return x.permute(0, 3, 5, 1, 2, 4).reshape(b, block * block * c, h // block, w // block)


def block_node(op_type: str, reference: Callable[[torch.Tensor, int], torch.Tensor],
               **attributes: str) -> type[torch.autograd.Function]:
    """A function that computes ``reference(x, block)`` in torch and exports as one ONNX ``op_type``
    node with ``blocksize`` (and ``attributes``, torch.onnx-suffixed: ``mode_s="DCR"``); for ops such
    as SpaceToDepth and DCR DepthToSpace that no torch op exports to."""

    class _Node(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: torch.Tensor, block: int) -> torch.Tensor:
            return reference(x, block)

        @staticmethod
        def symbolic(g, x, block: int):  # g: the torch.onnx graph context
            return g.op(op_type, x, blocksize_i=block, **attributes)

    _Node.__name__ = _Node.__qualname__ = f"{op_type}Node"
    return _Node


_SpaceToDepthOp = block_node("SpaceToDepth", _space_to_depth)


class SpaceToDepth(nn.Module):
    """ONNX SpaceToDepth: channel (dy * block + dx) * C + c of the output holds x[c, block*h+dy, block*w+dx]."""

    def __init__(self, block: int) -> None:
        super().__init__()
        self.block = block
        self.downscale_factor = block  # as nn.PixelUnshuffle: tiles align to it (export/tiling.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Plain (differentiable) ops in PyTorch; the single ONNX node when exporting.
        if torch.onnx.is_in_onnx_export():
            return _SpaceToDepthOp.apply(x, self.block)
        return _space_to_depth(x, self.block)


def space_to_depth_order(channels: int, block: int = 2) -> torch.Tensor:
    """``order[n]``: the PixelUnshuffle channel that SpaceToDepth channel n holds."""
    dy, dx, c = torch.meshgrid(torch.arange(block), torch.arange(block), torch.arange(channels), indexing="ij")
    return (c * block * block + dy * block + dx).flatten()


class PhaseBlur(nn.Module):
    """A depthwise ``size`` x ``size`` blur, computed on SpaceToDepth(2) channels.

    ``PhaseBlur(kernel, padding_mode=m)(SpaceToDepth(2)(x)) == SpaceToDepth(2)(GaussianBlur(x, m))`` for x
    of even size: output phase (dy, dx) of colour c sums input phases (dy', dx') of the same colour over
    a 3x3 neighbourhood with the 5x5 tap at (2a + dy' - dy, 2b + dx' - dx). The full-resolution border
    (two pixels a side) is one LR/2 pixel whose two phases are built from slices, no gathers:
    "replicate" copies the edge pixel into both (phase 0 of the first column, phase 1 of the last);
    "reflect" mirrors about the edge pixel (columns -2, -1 are 2, 1: phase 0 of LR column 1 and phase 1
    of LR column 0; columns W, W+1 are W-2, W-3), which needs at least 4 pixels a side.
    """

    def __init__(self, kernel: torch.Tensor, colours: int = 3, padding_mode: str = "replicate") -> None:
        super().__init__()
        size = kernel.shape[-1]
        if size > 5 or size % 2 == 0:
            raise ValueError(f"PhaseBlur covers odd kernels up to 5x5 (a 1-pixel border at LR/2); got {size}")
        radius = size // 2
        channels = 4 * colours
        weight = torch.zeros(channels, channels, 3, 3, dtype=kernel.dtype)
        index = torch.cartesian_prod(*(torch.arange(n) for n in (2, 2, colours, 2, 2, 3, 3)))
        for dy, dx, c, dy2, dx2, a, b in index.tolist():
            u, v = 2 * (a - 1) + dy2 - dy, 2 * (b - 1) + dx2 - dx
            if abs(u) <= radius and abs(v) <= radius:
                out_channel, in_channel = (dy * 2 + dx) * colours + c, (dy2 * 2 + dx2) * colours + c
                weight[out_channel, in_channel, a, b] = kernel[u + radius, v + radius]
        self.register_buffer("weight", weight, persistent=False)
        self.colours = colours
        self.padding_mode = check_choice(padding_mode, BLUR_PADDINGS, "padding_mode")

    def _border(self, lr: torch.Tensor, dim: int, last: bool) -> torch.Tensor:
        # One LR/2 line beyond the first (last=False) or last row/column, for each phase block
        # (dy, dx) in SpaceToDepth's channel order; ``dim`` 3 = columns (phase dx), 2 = rows (dy).
        stride = 1 if dim == 3 else 2  # a block's index is dy * 2 + dx
        parts = []
        for block in range(4):
            phase = (block // stride) % 2
            if self.padding_mode == "replicate":
                source = block + stride * ((1 if last else 0) - phase)  # this block at the edge's phase
                index = -1 if last else 0
            else:
                source = block
                index = (-1 - phase) if last else (1 - phase)
            line = [slice(None)] * 4
            line[1] = slice(source * self.colours, (source + 1) * self.colours)
            line[dim] = slice(index, index + 1 if index != -1 else None)
            parts.append(lr[tuple(line)])
        return torch.cat(parts, dim=1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        lr = torch.cat([self._border(lr, 3, False), lr, self._border(lr, 3, True)], dim=3)
        lr = torch.cat([self._border(lr, 2, False), lr, self._border(lr, 2, True)], dim=2)
        return F.conv2d(lr, self.weight)


def can_fuse(model: nn.Module) -> bool:
    """Whether the registry marks the model's network as fusable (DyConvSR's shuffle tail)."""
    return model_traits(model).fuses_pixel_shuffle


def fused_channel_order(scale: int) -> torch.Tensor:
    """``order[n]``: the original tail channel that fused channel n must hold (3 colours x 2x2 x s x s)."""
    c, p, i, q, j = torch.meshgrid(*(torch.arange(n) for n in (3, 2, scale, 2, scale)), indexing="ij")
    # Fused channels are enumerated in (c, p, i, q, j) order: n = c*4s^2 + (s*p+i)*2s + s*q + j.
    return ((c * scale**2 + i * scale + j) * 4 + p * 2 + q).flatten()


def fused_skip_weight(scale: int, order: str = "nearest") -> torch.Tensor:
    """A constant 1x1 conv (12s^2, 12, 1, 1) mapping PixelUnshuffle(2)(x) to the fused skip:
    fused channel (c, p, i, q, j) reads channel c*s^2 + i*s + j of the repeated skip, which copies
    colour k = ``skip_colours(scale, order)`` of it, so it copies unshuffled channel k*4 + p*2 + q.

    A 0/1 selection conv rather than an 8-D reshape/expand: it is exact (one product by 1, the
    rest by 0), costs ~2% of the network's MACs, and every runtime runs it correctly (OpenVINO's
    CPU plugin computed the 8-D dynamic Expand wrongly in f32).
    """
    c, p, i, q, j = torch.meshgrid(*(torch.arange(n) for n in (3, 2, scale, 2, scale)), indexing="ij")
    colour = skip_colours(scale, order)[c * scale**2 + i * scale + j]
    source = (colour * 4 + p * 2 + q).flatten()
    weight = torch.zeros(12 * scale**2, 12, 1, 1)
    weight[torch.arange(source.numel()), source] = 1.0
    return weight


def _permute_outputs(conv: nn.Conv2d, order: torch.Tensor) -> None:
    with torch.no_grad():
        conv.weight.copy_(conv.weight[order])
        if conv.bias is not None:
            conv.bias.copy_(conv.bias[order])


def _permute_inputs(conv: nn.Conv2d, order: torch.Tensor) -> None:
    with torch.no_grad():
        conv.weight.copy_(conv.weight[:, order])


def _fused_forward(self: DyConvSR, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
    # DyConvSR.forward with the shuffle tail fused; tests/test_export_fusion.py holds them equal.
    height, width = x.shape[-2:]
    x = pad_to_multiple(x, 2)
    lr = self.unshuffle(x)
    feat = self.head_features(lr)
    feat = self.body(feat, attention) if isinstance(self.body, DynamicConv2d) else self.body(feat)
    feat = self.tail(F.gelu(feat))
    if self.high_frequency is not None:
        feat = feat + F.gelu(self.high_frequency(lr - self.phase_blur(lr)))
    if self.spatial_attention is not None:
        feat = self.spatial_attention(feat)
    if self.repeat_skip:
        feat = feat + F.conv2d(lr, self.fused_skip_weight)
    out = F.pixel_shuffle(feat, 2 * self.scale)
    return out[..., : height * self.scale, : width * self.scale]


def fuse_pixel_shuffle(model: nn.Module) -> nn.Module:
    """A copy of a DyConvSR whose forward ends in one PixelShuffle(2s); the model itself is untouched."""
    if not can_fuse(model):
        raise UserError(f"pixel-shuffle fusion applies to the DyConvSR models; got {model_config(model).name!r}")
    fused = copy.deepcopy(model).eval()
    order = fused_channel_order(fused.scale)
    _permute_outputs(fused.tail, order)
    if fused.high_frequency is not None:
        _permute_outputs(fused.high_frequency, order)
    inputs = space_to_depth_order(3)
    fused.unshuffle = SpaceToDepth(2)
    _permute_inputs(fused.head, inputs)
    if fused.high_frequency is not None:
        _permute_inputs(fused.high_frequency, inputs)
    if fused.high_frequency is not None:
        fused.phase_blur = PhaseBlur(fused.blur.kernel[0, 0], colours=3, padding_mode=fused.blur.padding_mode)
    skip = fused_skip_weight(fused.scale, fused.skip_order)[:, inputs].contiguous()
    fused.register_buffer("fused_skip_weight", skip, persistent=False)
    fused.forward = types.MethodType(_fused_forward, fused)
    fused.fused_pixel_shuffle = True
    return fused
