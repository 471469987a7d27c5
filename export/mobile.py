"""The ``mobile`` lowering: DyConvSR as phone runtimes (LiteRT/XNNPACK, Core ML, ORT Mobile + NNAPI) take it.

``mobile_module(model, (H, W))`` returns a new module computing the network's function on one fixed,
even ``(1, 3, H, W)`` input, built only from what those runtimes accept:

- constant conv weights everywhere: the dynamic conv is the ``stacked`` lowering written with rank-4
  ops (the input scaled by each attention weight, concatenated on channels, one static Conv with the
  K kernels side by side; the attention MLP as two MatMuls);
- no in-graph padding and no Shape/Mod arithmetic: the shape is fixed and even (checked here);
- PixelUnshuffle(2) as a constant 0/1 Conv 3->12 (2x2, stride 2): exact, one product by 1 per output;
- the high-frequency blur on the LR/2 grid with a slice-based border (export/fusion.py's PhaseBlur);
- one DepthToSpace(2s) in DCR order at the end (the tail and high-frequency convs' output channels
  permuted to it, the repeat skip a constant 1x1 conv at LR/2), written as rank-4 channels-last
  reshapes/transposes, and as the ONNX ``DepthToSpace(mode="DCR")`` node when exporting to ONNX;
- every tensor of rank <= 5.

The tiling counterparts (``pooled=True``): the attention reads ``pooled_0`` (1, C), the whole image's
mean of the dynamic conv's input, and a ``valid`` mask (1, 1, H/2, W/2) marks the part of the fixed
tile that lies inside the image. Multiplying each zero-padded conv's input by it makes the conv see
exactly the zeros it would see at the image's border, and the runtime edge-replicates the image into
the rest of the tile, which is what the replicate-padded blur reads there; so a fixed-size tile that
overhangs the image computes what the whole-image network computes (runtime/fixed_tiling.py).
``mobile_stats_module`` is the statistics graph: tile + mask -> the dynamic conv's input features.

Exact rewrites only: every op computes what the training network computes up to fp32 reassociation
(tests/test_mobile_lowering.py holds it <= 1e-4). They are chosen for the phone delegates: the spatial
attention's channel max as Transpose -> MaxPool(C x 1) -> Transpose in ONNX (one reduce-max elsewhere)
and its channel mean as a constant 1/C 1x1 conv (no ReduceMax / ReduceMean), the attention's global mean
as GlobalAveragePool + Reshape, its broadcast by one Reshape (no Unsqueeze, no Flatten): NNAPI and Core ML
NeuralNetwork 2 partitions (only the two Erf left out), Core ML MLProgram 1. GELU keeps its Erf form."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from runtime.errors import UserError
from train.models import model_config, model_traits
from train.models.dyconvsr import DyConvSR
from train.models.dynamic_conv import DynamicConv2d

from .fusion import PhaseBlur, block_node, fused_channel_order, fused_skip_weight, space_to_depth_order

NOTE = ("mobile lowering: fixed even shape, constant conv weights (stacked dynamic conv), PixelUnshuffle as a "
        "0/1 stride-2 conv, slice-bordered LR/2 blur, one DCR DepthToSpace(2s) (rank-4 reshapes outside ONNX), "
        "channel max as MaxPool and channel/global means as Conv/GlobalAveragePool in ONNX, rank <= 5 "
        "(export/mobile.py)")
VALID_INPUT = "valid"


def check_mobile_shape(height: int, width: int) -> tuple[int, int]:
    if height < 2 or width < 2 or height % 2 or width % 2:
        raise UserError(f"the mobile lowering needs a fixed even input shape of at least 2x2; got {height}x{width}")
    return int(height), int(width)


def dcr_order(channels: int, block: int) -> torch.Tensor:
    """``order[n]``: the CRD (PixelShuffle) channel that DCR channel n must hold.

    DCR channel (i * block + j) * C + c and CRD channel c * block^2 + i * block + j both land on
    output pixel (c, h * block + i, w * block + j)."""
    i, j, c = torch.meshgrid(torch.arange(block), torch.arange(block), torch.arange(channels), indexing="ij")
    return (c * block * block + i * block + j).flatten()


def depth_to_space_dcr(x: torch.Tensor, block: int) -> torch.Tensor:
    """DCR DepthToSpace through channels-last, rank 4: (N, H, W, C) -> (N*H, W, i, (j, c)) -> swap W and i
    -> (N, H*block, W*block, c) -> channels first. On a channels-last engine (LiteRT/XNNPACK) the first
    permute cancels its layout transpose: two transposes, where a rank-5 columns-then-rows form took three."""
    n, channels, height, width = x.shape
    colours = channels // (block * block)
    x = x.permute(0, 2, 3, 1).reshape(n * height, width, block, block * colours).permute(0, 2, 1, 3)
    return x.reshape(n, height * block, width * block, colours).permute(0, 3, 1, 2)


# The ONNX node of DCR DepthToSpace; used only while exporting to ONNX.
_DepthToSpaceDCR = block_node("DepthToSpace", depth_to_space_dcr, mode_s="DCR")


def space_to_depth_weight(colours: int = 3) -> torch.Tensor:
    """A 0/1 (4C, C, 2, 2) stride-2 conv weight: output channel (dy * 2 + dx) * C + c copies x[c, 2h+dy, 2w+dx]."""
    weight = torch.zeros(4 * colours, colours, 2, 2)
    for dy in range(2):
        for dx in range(2):
            for c in range(colours):
                weight[(dy * 2 + dx) * colours + c, c, dy, dx] = 1.0
    return weight


def _check_model(model: nn.Module) -> DyConvSR:
    if not model_traits(model).fuses_pixel_shuffle or not isinstance(model, DyConvSR):
        raise UserError(f"the mobile lowering applies to the DyConvSR models; got {model_config(model).name!r}")
    if getattr(model, "fused_pixel_shuffle", False):
        raise UserError("the mobile lowering starts from the unfused network (it permutes the weights itself)")
    return model


class MobileDyConvSR(nn.Module):
    """DyConvSR at one fixed even shape in the mobile form (see the module docstring)."""

    def __init__(self, model: nn.Module, shape: tuple[int, int], pooled: bool = False) -> None:
        super().__init__()
        net = _check_model(model)
        self.shape = check_mobile_shape(*shape)
        self.scale, self.pooled = int(net.scale), bool(pooled)
        inputs = space_to_depth_order(3)
        block = 2 * self.scale
        order = fused_channel_order(self.scale)[dcr_order(3, block)]  # DCR channel -> original tail channel
        detach = lambda t: t.detach().clone()  # noqa: E731 - one-line helper
        self.register_buffer("s2d_weight", space_to_depth_weight(3))
        self.register_buffer("head_weight", detach(net.head.weight[:, inputs]))
        self.register_buffer("head_bias", detach(net.head.bias))
        self.head_activation = bool(net.head_activation)  # DyConvSR+: a GELU after the head conv
        self.dynamic = isinstance(net.body, DynamicConv2d)
        if self.dynamic:
            body: DynamicConv2d = net.body
            self.register_buffer("fc1", detach(body.attention.fc1.weight.flatten(1)))
            self.register_buffer("fc2", detach(body.attention.fc2.weight.flatten(1)))
            self.temperature = float(body.attention.temperature)
            self.register_buffer("body_weight", detach(body.weight.permute(1, 0, 2, 3, 4).flatten(1, 2)))
            self.register_buffer("body_bias", detach(body.bias) if body.bias is not None else None)
            self.kernels = body.num_kernels
        else:
            self.register_buffer("body_weight", detach(net.body.weight))
            self.register_buffer("body_bias", detach(net.body.bias))
        self.register_buffer("tail_weight", detach(net.tail.weight[order]))
        self.register_buffer("tail_bias", detach(net.tail.bias[order]))
        self.blur = None
        if net.high_frequency is not None:
            # Both paddings are slices (no gathers); fixed tiles that overhang the image are filled to match
            # (runtime Tiling.border: "edge" for replicate, "reflect" for the authors' reflect-padded blur).
            self.blur = PhaseBlur(net.blur.kernel[0, 0], colours=3, padding_mode=net.blur.padding_mode)
            self.register_buffer("hf_weight", detach(net.high_frequency.weight[order][:, inputs]))
            self.register_buffer("hf_bias", detach(net.high_frequency.bias[order]))
        self.spatial = net.spatial_attention is not None
        if self.spatial:
            self.register_buffer("sa_weight", detach(net.spatial_attention.conv.weight))
            channels = int(net.tail.weight.shape[0])
            self.register_buffer("channel_mean", torch.full((1, channels, 1, 1), 1.0 / channels))
        self.skip = net.repeat_skip
        if self.skip:
            skip = fused_skip_weight(self.scale, net.skip_order)[:, inputs][dcr_order(3, block)]
            self.register_buffer("skip_weight", skip.contiguous())

    @property
    def tile_border(self) -> str:
        """How fixed tiles must be filled beyond the image for this blur (runtime Tiling.border)."""
        return "reflect" if self.blur is not None and self.blur.padding_mode == "reflect" else "edge"

    def attention(self, pooled: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(pooled @ self.fc1.t())
        return torch.softmax((hidden @ self.fc2.t()) / self.temperature, dim=1)

    def features(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(lr, head features): the dynamic conv's input, whose mean drives its attention."""
        if tuple(x.shape[-2:]) != self.shape:
            raise UserError(f"this mobile module is fixed at {self.shape[0]}x{self.shape[1]}; "
                            f"got {x.shape[-2]}x{x.shape[-1]}")
        lr = F.conv2d(x, self.s2d_weight, stride=2)
        feat = F.conv2d(_masked(lr, valid), self.head_weight, self.head_bias, padding=1)
        return lr, F.gelu(feat) if self.head_activation else feat

    def forward(self, input: torch.Tensor, pooled_0: torch.Tensor | None = None,
                valid: torch.Tensor | None = None) -> torch.Tensor:
        # Parameter names are the graph's input names (litert-torch takes the examples by keyword).
        lr, feat = self.features(input, valid)
        pooled = pooled_0
        feat = _masked(feat, valid)
        if self.dynamic:
            # GlobalAveragePool + Reshape, not ReduceMean + Flatten (Flatten splits Core ML MLProgram).
            attention = self.attention(F.adaptive_avg_pool2d(feat, 1).reshape(1, -1) if pooled is None else pooled)
            weights = attention.reshape(1, self.kernels, 1, 1)  # a Reshape, not K Unsqueeze pairs
            scaled = torch.cat([feat * weights[:, k : k + 1] for k in range(self.kernels)], dim=1)
            feat = F.conv2d(scaled, self.body_weight, None, padding=1)
            if self.body_bias is not None:
                feat = feat + (attention @ self.body_bias).reshape(1, -1, 1, 1)
        else:
            feat = F.conv2d(feat, self.body_weight, self.body_bias, padding=1)
        feat = F.conv2d(_masked(F.gelu(feat), valid), self.tail_weight, self.tail_bias, padding=1)
        if self.blur is not None:
            detail = _masked(lr - self.blur(lr), valid)
            feat = feat + F.gelu(F.conv2d(detail, self.hf_weight, self.hf_bias, padding=1))
        if self.spatial:
            stats = torch.cat([F.conv2d(feat, self.channel_mean), _channel_max(feat)], dim=1)
            feat = feat * torch.sigmoid(F.conv2d(_masked(stats, valid), self.sa_weight, padding=3))
        if self.skip:
            feat = feat + F.conv2d(lr, self.skip_weight)
        if torch.onnx.is_in_onnx_export():
            return _DepthToSpaceDCR.apply(feat, 2 * self.scale)
        return depth_to_space_dcr(feat, 2 * self.scale)


def _channel_max(x: torch.Tensor) -> torch.Tensor:
    """The max over channels. In ONNX as Transpose -> MaxPool(C x 1) -> Transpose: exact, and no ReduceMax
    (which NNAPI and Core ML NeuralNetwork do not take); elsewhere (LiteRT, Core ML from the traced module)
    one reduce-max, which XNNPACK runs on its NHWC channels without the two transposes."""
    if not torch.onnx.is_in_onnx_export():
        return x.amax(dim=1, keepdim=True)
    pooled = F.max_pool2d(x.permute(0, 2, 1, 3), kernel_size=(x.shape[1], 1))
    return pooled.permute(0, 2, 1, 3)


def _masked(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    return x if valid is None else x * valid


class MobileTilingMain(nn.Module):
    """Fixed tile + ``pooled_0`` + ``valid`` -> upscaled tile (the tiling counterpart of a mobile file)."""

    def __init__(self, mobile: MobileDyConvSR) -> None:
        super().__init__()
        self.mobile = mobile

    def forward(self, input: torch.Tensor, pooled_0: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.mobile(input, pooled_0, valid)


class MobileTilingStats(nn.Module):
    """Fixed tile + ``valid`` -> the dynamic conv's input features (their core's mean is ``pooled_0``)."""

    def __init__(self, mobile: MobileDyConvSR) -> None:
        super().__init__()
        self.mobile = mobile

    def forward(self, input: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return _masked(self.mobile.features(input, valid)[1], valid)


def mobile_module(model: nn.Module, shape: tuple[int, int]) -> MobileDyConvSR:
    """The mobile lowering of ``model`` (an unfused DyConvSR) at the fixed even LR ``shape`` (H, W), eval mode."""
    return MobileDyConvSR(model, shape).eval()

