"""Image quality metrics as SR papers compute them: float64, 0-255 range, numpy only.

- ``psnr``: 10 log10(255^2 / MSE); identical images give ``inf``.
- ``ssim``: Wang et al. 2004 / MATLAB ``ssim_index``: 11x11 Gaussian window (sigma 1.5),
  K1 = 0.01, K2 = 0.03, statistics over the "valid" region only, no automatic downsampling;
  the same as scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255)``.
- ``ms_ssim``: Wang, Simoncelli and Bovik 2003 (their ``msssim.m``): 5 scales with weights
  0.0448, 0.2856, 0.3001, 0.2363, 0.1333, 2x2 average + subsample between scales, mean
  contrast-structure at scales 1-4, full SSIM at the last. Two choices of ours: an image too small
  for 5 scales (the last needs an 11x11 window, so about 161 pixels a side) uses as many scales as
  fit with the weights renormalised, and a negative mean contrast-structure term is clipped to 0
  (a negative base has no real power).
- ``weighted_psnr``: the dynamic-CNN paper reports "WPSNR" without defining it. Its values sit
  10-20 dB above PSNR, which fits the WPSNR of the Checkmark benchmark (Pereira, Voloshynovskiy
  et al. 2001), the usual WPSNR of that era: the error is weighted by the noise visibility
  function NVF = 1 / (1 + theta * local variance of the reference), theta = 150 / max local
  variance, over 3x3 windows (Voloshynovskiy et al. 1999). NVF is ~1 on flat regions and ~0 on
  texture and edges, where errors are masked, so it measures visible error; WPSNR >= PSNR and a
  flat reference gives PSNR exactly. The 3x3 statistics use symmetric edge padding (Checkmark's
  filter2 pads with zeros, which makes every border pixel look textured).
- ``score_pair``: all of the above for an SR/HR pair of RGB images with a border crop, on the Y
  channel of BT.601 (``runtime.color``, not rounded to integers) plus RGB PSNR.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from .color import rgb_to_y
from .errors import UserError

DATA_RANGE = 255.0
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1, SSIM_K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
NVF_WINDOW = 3
NVF_CONTRAST = 150.0


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise UserError(f"images differ in shape: {x.shape} vs {y.shape}")
    if x.size == 0:
        raise UserError(f"cannot measure empty images of shape {x.shape}")
    return x, y


def _gray_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _pair(a, b)
    if x.ndim != 2:
        raise UserError(f"expected single-channel HxW images; got shape {x.shape}")
    return x, y


def crop_border(image: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels from every side (SR papers crop ``scale`` pixels)."""
    if border < 0:
        raise UserError(f"border must be >= 0; got {border}")
    if border == 0:
        return image
    if image.shape[0] <= 2 * border or image.shape[1] <= 2 * border:
        raise UserError(f"image of shape {image.shape} is too small for a border crop of {border}")
    return image[border:-border, border:-border]


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (MATLAB rgb2ycbcr's Y, in [16, 235]) of an RGB image in 0-255, float64."""
    return rgb_to_y(np.asarray(rgb, dtype=np.float64) / DATA_RANGE) * DATA_RANGE


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE) -> float:
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product is MATLAB's fspecial('gaussian', size, sigma)."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable correlation with ``taps`` along both axes, 'valid' output (no padding)."""
    n = taps.size
    rows = sum(taps[k] * image[k : image.shape[0] - n + 1 + k] for k in range(n))
    return sum(taps[k] * rows[:, k : rows.shape[1] - n + 1 + k] for k in range(n))


def _ssim_terms(x: np.ndarray, y: np.ndarray, data_range: float) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure) over the valid region."""
    if min(x.shape) < SSIM_WINDOW:
        raise UserError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}; got {x.shape}")
    w = gaussian_window()
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _filter_valid(x, w), _filter_valid(y, w)
    var_x = _filter_valid(x * x, w) - mu_x**2
    var_y = _filter_valid(y * y, w) - mu_y**2
    cov = _filter_valid(x * y, w) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return float(np.mean(luminance * cs)), float(np.mean(cs))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE) -> float:
    """Mean SSIM of two single-channel images (Gaussian 11x11, sigma 1.5)."""
    x, y = _gray_pair(a, b)
    return _ssim_terms(x, y, data_range)[0]


def _halve(image: np.ndarray) -> np.ndarray:
    # MATLAB: imfilter(im, ones(2)/4, 'symmetric', 'same') then im(1:2:end, 1:2:end), i.e. 2x2
    # block means with the last row/column repeated when the size is odd.
    padded = np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2)), mode="edge")
    return 0.25 * (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2])


def ms_ssim(
    a: np.ndarray, b: np.ndarray, data_range: float = DATA_RANGE, weights: tuple[float, ...] = MS_SSIM_WEIGHTS
) -> float:
    """Multi-scale SSIM of two single-channel images (see the module notes for small images)."""
    x, y = _gray_pair(a, b)
    levels = 0
    size = min(x.shape)
    while levels < len(weights) and size >= SSIM_WINDOW:
        levels += 1
        size = (size + 1) // 2
    if levels == 0:
        raise UserError(f"MS-SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}; got {x.shape}")
    used = np.asarray(weights[:levels], dtype=np.float64)
    used = used / used.sum()
    value = 1.0
    for level in range(levels):
        full, cs = _ssim_terms(x, y, data_range)
        term = full if level == levels - 1 else cs
        value *= max(term, 0.0) ** used[level]
        x, y = _halve(x), _halve(y)
    return float(value)


def _local_variance(image: np.ndarray, window: int) -> np.ndarray:
    pad = window // 2
    padded = np.pad(image, pad, mode="symmetric")
    box = np.full(window, 1.0 / window)
    mean = _filter_valid(padded, box)
    return np.maximum(_filter_valid(padded * padded, box) - mean**2, 0.0)


def noise_visibility(reference: np.ndarray, window: int = NVF_WINDOW, contrast: float = NVF_CONTRAST) -> np.ndarray:
    """Checkmark's noise visibility function of a single-channel image, values in (0, 1]."""
    variance = _local_variance(np.asarray(reference, dtype=np.float64), window)
    peak = variance.max()
    if peak == 0:
        return np.ones_like(variance)
    return 1.0 / (1.0 + (contrast / peak) * variance)


def weighted_psnr(
    reference: np.ndarray,
    test: np.ndarray,
    data_range: float = DATA_RANGE,
    window: int = NVF_WINDOW,
    contrast: float = NVF_CONTRAST,
) -> float:
    """PSNR of the NVF-weighted error (Checkmark WPSNR); the weights come from ``reference``."""
    x, y = _gray_pair(reference, test)
    mse = float(np.mean((noise_visibility(x, window, contrast) * (x - y)) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


@dataclass(frozen=True)
class Scores:
    """Quality of one SR image against its HR original (Y = BT.601 luma, 0-255)."""

    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    wpsnr_y: float
    msssim_y: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


METRIC_NAMES = tuple(Scores.__dataclass_fields__)


def authors_y(rgb: np.ndarray) -> np.ndarray:
    """The Y the DyConvSR authors measure with (SwinIR's ``bgr2ycbcr(..., y_only=True)`` given an RGB array, so
    the R and B weights are swapped: 16 + (24.966 R + 128.553 G + 65.481 B) / 255), in their float32 steps."""
    scaled = np.asarray(rgb).astype(np.float32) / np.float32(255.0)
    y = np.dot(scaled, [24.966, 128.553, 65.481]) + 16.0
    return (y / 255.0).astype(np.float32) * np.float32(255.0)


def score_pair(sr: np.ndarray, hr: np.ndarray, border: int,
               luma: Callable[[np.ndarray], np.ndarray] = y_channel) -> Scores:
    """Every metric for RGB images in 0-255 (uint8 or float), ``border`` pixels cropped first; ``luma`` gives
    the Y channel (BT.601 by default, :func:`authors_y` for the authors' protocol)."""
    x, y = _pair(sr, hr)
    if x.ndim != 3 or x.shape[2] != 3:
        raise UserError(f"expected HxWx3 RGB images; got shape {x.shape}")
    x, y = crop_border(x, border), crop_border(y, border)
    sr_y, hr_y = luma(x), luma(y)
    return Scores(
        psnr_y=psnr(sr_y, hr_y),
        ssim_y=ssim(sr_y, hr_y),
        psnr_rgb=psnr(x, y),
        wpsnr_y=weighted_psnr(hr_y, sr_y),
        msssim_y=ms_ssim(sr_y, hr_y),
    )
