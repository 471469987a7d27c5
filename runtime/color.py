"""BT.601 colour conversion (MATLAB's rgb2ycbcr convention) on [0, 1] float arrays.

The constants live here, in the bottom layer, so train/ (torch) and runtime/ (numpy) share them.
"""
from __future__ import annotations

import numpy as np

# Rows give Y, Cb, Cr from [0, 1] RGB; offsets are added after the product.
RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
) / 255.0
YCBCR_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    """RGB in [0, 1] -> YCbCr in [0, 1] (Y in [16/255, 235/255])."""
    moved = np.moveaxis(np.asarray(rgb, dtype=np.float64), channel_axis, -1)
    out = moved @ RGB_TO_YCBCR.T + YCBCR_OFFSET
    return np.moveaxis(out, -1, channel_axis)


def ycbcr_to_rgb(ycbcr: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    moved = np.moveaxis(np.asarray(ycbcr, dtype=np.float64), channel_axis, -1)
    out = (moved - YCBCR_OFFSET) @ YCBCR_TO_RGB.T
    return np.moveaxis(out, -1, channel_axis)


def rgb_to_y(rgb: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    """Luma only, the channel SR papers report PSNR/SSIM on."""
    moved = np.moveaxis(np.asarray(rgb, dtype=np.float64), channel_axis, -1)
    return moved @ RGB_TO_YCBCR[0] + YCBCR_OFFSET[0]
