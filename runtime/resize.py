"""MATLAB-compatible bicubic ``imresize`` in numpy: the resize SR papers make their LR images with.

``imresize(image, scale)`` reproduces MATLAB's ``imresize(image, scale, 'bicubic')`` (antialiasing
on, its default):

- the cubic kernel with a = -0.5 (Keys); when downscaling, the kernel is stretched by 1/scale (and
  its height scaled by ``scale``), which is the antialiasing;
- output pixel x (1-based) samples input position u = x / scale + 0.5 * (1 - 1 / scale);
- each output pixel uses ceil(kernel width) + 2 taps; taps that fall outside the image are
  mirrored with MATLAB's symmetric rule (..., 2, 1, 1, 2, ...); weights are normalised to sum 1;
- the dimension with the smaller scale is resized first (rows first when equal);
- output size is ceil(scale * input size);
- for uint8 input each pass is rounded (half away from zero) and saturated to uint8, as
  MATLAB's imresizemex returns the input's class after every pass; float input stays float64 and
  is neither rounded nor clipped.

How the other bicubic resizes differ (all of them give a few tenths of a dB different PSNR on
the standard benchmarks, which is why the papers' numbers need this one):

- PIL ``Image.resize(..., BICUBIC)``: also a = -0.5 with the kernel stretched when downscaling,
  but taps outside the image are dropped and the rest renormalised (no mirroring), 8-bit images
  are filtered in fixed point, and the horizontal pass runs first.
- torch ``F.interpolate(mode="bicubic", antialias=True)``: PIL's algorithm (a = -0.5, truncated
  and renormalised at the border) in float. With ``antialias=False`` (the default, and what the
  models' internal pre-upscale uses) the kernel is a = -0.75 (OpenCV's), never stretched, and
  edge taps are clamped (replicate), so downscaling aliases.
- OpenCV ``INTER_CUBIC``: a = -0.75, no antialiasing, replicate border.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import UserError
from .images import to_uint8

KERNEL_WIDTH = 4.0  # support of the cubic kernel, [-2, 2]


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def contributions(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel: the 0-based input indices it reads and their weights, (out_length, taps).

    Mirrors MATLAB's ``contributions`` in imresize.m, including dropping tap columns whose weight
    is zero for every output pixel.
    """
    stretch = scale < 1 and antialiasing
    width = KERNEL_WIDTH / scale if stretch else KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based, may be out of range
    distance = u[:, None] - indices
    weights = scale * cubic(scale * distance) if stretch else cubic(distance)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # MATLAB's symmetric padding: index sequence 1..n, n..1 repeated.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, mirror.size)]
    keep = np.any(weights != 0, axis=0)
    return indices[:, keep], weights[:, keep]


def output_size(in_length: int, scale: float) -> int:
    # The tolerance keeps e.g. 255 * (1/3) = 84.99999999999999 from rounding up to 86.
    return max(1, int(math.ceil(in_length * scale - 1e-9)))


def _resize_axis(image: np.ndarray, axis: int, out_length: int, scale: float, antialiasing: bool) -> np.ndarray:
    indices, weights = contributions(image.shape[axis], out_length, scale, antialiasing)
    moved = np.moveaxis(image, axis, 0).astype(np.float64, copy=False)
    out = np.zeros((out_length,) + moved.shape[1:], dtype=np.float64)
    shape = (out_length,) + (1,) * (moved.ndim - 1)
    for tap in range(indices.shape[1]):
        out += weights[:, tap].reshape(shape) * moved[indices[:, tap]]
    return np.moveaxis(out, 0, axis)


def imresize(
    image: np.ndarray,
    scale: float | tuple[float, float] | None = None,
    output_shape: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> np.ndarray:
    """Bicubic resize of an HxW or HxWxC array, as MATLAB's ``imresize(image, scale, 'bicubic')``.

    Give ``scale`` (a number, or (row, column) factors; 0.5 halves, 3 triples) or ``output_shape``
    (rows, columns); with only ``output_shape`` the factors are output / input, as in MATLAB.
    uint8 in -> uint8 out (rounded after each pass); any other dtype -> float64, unclipped.
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise UserError(f"imresize expects an HxW or HxWxC image; got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise UserError(f"imresize got an empty image of shape {array.shape}")
    if (scale is None) == (output_shape is None):
        raise UserError("imresize needs exactly one of scale or output_shape")
    in_shape = array.shape[:2]
    if scale is not None:
        factors = (float(scale), float(scale)) if np.isscalar(scale) else tuple(float(s) for s in scale)
        if len(factors) != 2 or not all(math.isfinite(f) and f > 0 for f in factors):
            raise UserError(f"imresize scale must be a positive number or (rows, cols) pair; got {scale!r}")
        out_shape = tuple(output_size(n, f) for n, f in zip(in_shape, factors, strict=True))
    else:
        if len(output_shape) != 2 or not all(int(n) >= 1 for n in output_shape):
            raise UserError(f"imresize output_shape must be two positive sizes; got {output_shape!r}")
        out_shape = (int(output_shape[0]), int(output_shape[1]))
        factors = (out_shape[0] / in_shape[0], out_shape[1] / in_shape[1])

    is_uint8 = array.dtype == np.uint8
    out = array
    for axis in sorted((0, 1), key=lambda a: factors[a]):  # stable: rows first on a tie
        out = _resize_axis(out, axis, out_shape[axis], factors[axis], antialiasing)
        if is_uint8:
            out = to_uint8(out, peak=255.0)  # MATLAB rounds half away from zero
    return out if is_uint8 else out.astype(np.float64, copy=False)
