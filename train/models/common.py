"""Small building blocks shared by the model families."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from runtime.color import RGB_TO_YCBCR, YCBCR_OFFSET, YCBCR_TO_RGB
from runtime.errors import UserError

SUPPORTED_SCALES = (2, 3, 4)


def check_scale(scale: int) -> int:
    if scale not in SUPPORTED_SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(str, SUPPORTED_SCALES))}; got {scale!r}")
    return int(scale)


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom/right of ``x`` so H and W are multiples of ``multiple``."""
    pad_h = (-x.shape[-2]) % multiple
    pad_w = (-x.shape[-1]) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """Normalised 2-D Gaussian, shape (size, size)."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).float()


class GaussianBlur(nn.Module):
    """Fixed depthwise Gaussian blur, same-size output; ``padding_mode`` "replicate" (any input
    size >= 1) or "reflect" (torchvision's ``GaussianBlur``: each side must exceed size // 2).

    The kernel is a non-persistent buffer: it is derived from (size, sigma), never trained, and
    exports as a constant, so dynamic input shapes need no trace-time kernel construction.
    """

    def __init__(self, channels: int = 3, size: int = 5, sigma: float = 1.0, padding_mode: str = "replicate") -> None:
        super().__init__()
        self.channels = channels
        self.padding = size // 2
        self.padding_mode = check_choice(padding_mode, ("replicate", "reflect"), "padding_mode")
        kernel = gaussian_kernel(size, sigma).expand(channels, 1, size, size).clone()
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding
        if self.padding_mode == "reflect" and min(x.shape[-2:]) <= p:
            raise ValueError(f"a reflect-padded {2 * p + 1}x{2 * p + 1} blur needs more than {p} pixels a side; "
                             f"got {x.shape[-2]}x{x.shape[-1]}")
        return F.conv2d(F.pad(x, (p, p, p, p), mode=self.padding_mode), self.kernel, groups=self.channels)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: [mean, max] over channels -> Conv7x7 (2 -> 1) -> sigmoid -> multiply."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(stats))


def repeat_channels(x: torch.Tensor, times: int) -> torch.Tensor:
    """Repeat each channel ``times`` times consecutively (c0,c0,..,c1,c1,..).

    Under PyTorch's PixelShuffle channel order this makes the repeat-upscaling skip an exact
    nearest-neighbour upsample; expand+reshape exports to plain ONNX ops with dynamic shapes.
    """
    b, c, h, w = x.shape
    return x.unsqueeze(2).expand(b, c, times, h, w).reshape(b, c * times, h, w)


# SRCNN's Gaussian init with a fixed std (the paper's 0.001, tuned for 10^8 SGD steps), or "he":
# N(0, 2 / fan_in) per layer. Measured with Adam (SRCNN x2, held-out Y-PSNR at step 2,000): 0.001
# 32.23 dB, "he" 32.69 dB, PyTorch's default init (no init_std) 33.04 dB, which the shipped SRCNN
# configs use. The DCNN went the other way (x2 at step 11,000: 0.001 32.78 dB, default 32.53) and keeps 0.001.
InitStd = float | str


def gaussian_std(init_std: InitStd, weight: torch.Tensor) -> float:
    """The std of a Gaussian init for ``weight`` (a conv's (out, in, k, k) or a dynamic conv's (K, out, in, k, k))."""
    if isinstance(init_std, str):
        if init_std != "he":
            raise UserError(f"init_std must be a positive number or 'he'; got {init_std!r}")
        fan_in = weight.shape[-3] * weight.shape[-2] * weight.shape[-1]
        return (2.0 / fan_in) ** 0.5
    if init_std <= 0:
        raise UserError(f"init_std must be a positive number or 'he'; got {init_std!r}")
    return float(init_std)


def init_gaussian(model: nn.Module, std: InitStd) -> None:
    """SRCNN's initialisation: conv weights ~ N(0, std) (see :data:`InitStd`), biases 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, gaussian_std(std, module.weight))
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def bicubic_upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def _affine_colour(x: torch.Tensor, matrix, bias) -> torch.Tensor:
    # A 1x1 conv rather than einsum: it exports to a plain ONNX Conv every runtime fuses.
    weight = torch.as_tensor(matrix, dtype=x.dtype, device=x.device).view(3, 3, 1, 1)
    return F.conv2d(x, weight, torch.as_tensor(bias, dtype=x.dtype, device=x.device))


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> YCbCr (BT.601, MATLAB convention) in [0, 1]."""
    return _affine_colour(x, RGB_TO_YCBCR, YCBCR_OFFSET)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`."""
    return _affine_colour(x, YCBCR_TO_RGB, -YCBCR_TO_RGB @ YCBCR_OFFSET)


def upscale_on_y(x: torch.Tensor, scale: int, forward_y) -> torch.Tensor:
    """The Y-channel SR contract of SRCNN and the DCNN: bicubic-upscale the RGB input, run
    ``forward_y`` on its Y (BT.601), keep the bicubic Cb/Cr, convert back to RGB."""
    ycbcr = rgb_to_ycbcr(bicubic_upscale(x, scale))
    y = forward_y(ycbcr[:, :1])
    return ycbcr_to_rgb(torch.cat([y, ycbcr[:, 1:]], dim=1))
