"""Training data: image sources, the two papers' sample recipes, and deterministic batches.

Sources
- ``embedded_images(split)``: the natural photographs shipped inside scikit-image (no download),
  split into a fixed training part and a held-out validation part.
- ``folder_images(folder)``: any folder of HR images (PNG/JPEG/WebP/..., nested folders).
- ``paired_folder_images(hr, lr, scale)``: an HR folder plus a matching LR folder (DIV2K's
  ``X2/``, ``X3/``, ``X4/`` layout, where ``0001.png`` pairs with ``0001x2.png``).
- ``precrop(...)``: the DyConvSR recipe's sliding-window crops (300x300, step 150) cached on disk.

LR synthesis for training is bicubic downsampling with antialiasing (``torch.nn.functional
.interpolate(mode="bicubic", antialias=True)``: Keys cubic with a = -0.5, support widened by the
factor, the same kernel as MATLAB's ``imresize``), rounded to 8-bit levels as a saved LR image
is. It differs from MATLAB only near the image edge: torch renormalises the taps that fall
inside the image, MATLAB mirrors the image (symmetric padding); both agree away from the border.
Evaluation uses the MATLAB-compatible numpy ``imresize`` in ``runtime/resize.py``.

Batches are a pure function of (seed, step, rank): resuming at step k draws exactly the batches
an uninterrupted run would have drawn, with no sampler state to save.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from runtime.errors import UserError
from runtime.images import find_images, to_uint8

from .models.common import SUPPORTED_SCALES, rgb_to_ycbcr

# Natural photographs in skimage.data that load without network access. Synthetic images
# (checkerboard, logo, colorwheel, phantoms, blobs) are left out: they teach nothing about photos.
EMBEDDED_TRAIN = (
    "astronaut", "rocket", "motorcycle_left", "motorcycle_right", "retina", "hubble_deep_field",
    "immunohistochemistry", "moon", "page", "text", "coins", "brick", "grass", "gravel", "clock", "cell",
)  # fmt: skip
EMBEDDED_VAL = ("chelsea", "coffee", "camera")
EMBEDDED_SPLITS = ("train", "val")


@dataclass
class NamedImage:
    """An HR image held as uint8 HxWx3, with the LR partner when the data set supplies one."""

    name: str
    hr: np.ndarray
    lr: np.ndarray | None = None


def as_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Any image array (bool, uint8, float in [0, 1]; gray or RGB(A)) -> uint8 HxWx3."""
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = to_uint8(array)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


def _load_embedded(name: str) -> np.ndarray:
    import skimage.data

    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name == "motorcycle_left" else right
    return getattr(skimage.data, name)()


def embedded_images(split: str) -> list[NamedImage]:
    """The embedded default data set: ``split`` is "train" or "val" (held out, never trained on)."""
    if split not in EMBEDDED_SPLITS:
        raise UserError(f"embedded split must be one of {', '.join(EMBEDDED_SPLITS)}; got {split!r}")
    names = EMBEDDED_TRAIN if split == "train" else EMBEDDED_VAL
    return [NamedImage(name, as_rgb_uint8(_load_embedded(name))) for name in names]


def load_uint8(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UserError(f"{path}: cannot read image ({exc})") from None


def folder_images(folder: str | os.PathLike[str]) -> list[NamedImage]:
    paths = find_images(folder)
    if not paths:
        raise UserError(f"no images (png, jpg, webp, ...) found under {folder}")
    return [NamedImage(p.relative_to(folder).as_posix(), load_uint8(p)) for p in paths]


def paired_folder_images(
    hr_folder: str | os.PathLike[str], lr_folder: str | os.PathLike[str], scale: int
) -> list[NamedImage]:
    """HR images with their LR partners: ``name.ext`` pairs with ``name.ext`` or ``namex<scale>.ext``."""
    lr_by_stem = {}
    for p in find_images(lr_folder):
        stem = p.stem[: -len(f"x{scale}")] if p.stem.endswith(f"x{scale}") else p.stem
        lr_by_stem[stem] = p
    pairs = []
    for p in find_images(hr_folder):
        if p.stem not in lr_by_stem:
            raise UserError(f"no LR image for {p.name} in {lr_folder} (looked for {p.stem}.* and {p.stem}x{scale}.*)")
        hr, lr = load_uint8(p), load_uint8(lr_by_stem[p.stem])
        if lr.shape[0] * scale > hr.shape[0] or lr.shape[1] * scale > hr.shape[1]:
            raise UserError(f"LR {lr_by_stem[p.stem].name} {lr.shape[:2]} x{scale} exceeds HR {p.name} {hr.shape[:2]}")
        pairs.append(NamedImage(p.name, hr[: lr.shape[0] * scale, : lr.shape[1] * scale], lr))
    if not pairs:
        raise UserError(f"no images found under {hr_folder}")
    return pairs


def precrop(
    images: Sequence[NamedImage], cache_dir: str | os.PathLike[str], size: int = 300, step: int = 150
) -> list[NamedImage]:
    """Sliding-window crops (the DyConvSR recipe), cached as PNG files keyed by sources and params."""
    key = hashlib.sha256(
        json.dumps([size, step, [(im.name, im.hr.shape) for im in images]]).encode()
    ).hexdigest()[:16]
    folder = Path(cache_dir) / f"crops_{size}_{step}_{key}"
    done = folder / "complete.json"
    if not done.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        count = 0
        for im in images:
            h, w = im.hr.shape[:2]
            for top in range(0, max(h - size, 0) + 1, step):
                for left in range(0, max(w - size, 0) + 1, step):
                    crop = im.hr[top : top + size, left : left + size]
                    Image.fromarray(crop).save(folder / f"{count:07d}.png")
                    count += 1
        done.write_text(json.dumps({"crops": count}))
    return [NamedImage(p.name, load_uint8(p)) for p in sorted(folder.glob("*.png"))]


# ---- degradations -------------------------------------------------------------------------------
def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] values to 8-bit levels, as writing and reading an 8-bit image does."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def bicubic_downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C, sH, sW) -> (B, C, H, W) antialiased bicubic, quantised to 8 bits."""
    lr = F.interpolate(hr, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False)
    return quantize(lr)


def gaussian_blur_downup(hr: torch.Tensor, scale: int, sigma: float | None = None) -> torch.Tensor:
    """The dynamic-CNN recipe's LR: Gaussian blur, subsample by ``scale``, bicubic upscale back.

    Each LR pixel is the blurred HR image sampled at the centre of its ``scale`` x ``scale`` block
    (HR coordinate ``scale * i + (scale - 1) / 2``), the same grid as MATLAB's ``imresize`` and as
    the bicubic upscale back (``align_corners=False``). Sampling at the block's first pixel instead
    shifts the input by (scale - 1) / 2 pixels against the target, and a network trained on that
    learns a shift that is wrong on every real test image (it scored below bicubic).
    sigma defaults to 0.35 * scale: the paper gives no value, and this one is the least-squares
    fit of MATLAB's antialiased bicubic downscale on Set14 (0.70, 1.05, 1.40 for x2, x3, x4), so
    training inputs look like the bicubic-downscaled test inputs.
    Returns a tensor the size of ``hr`` (cropped to a multiple of ``scale``).
    """
    sigma = 0.35 * scale if sigma is None else sigma
    radius = max(1, math.ceil(3 * sigma))
    h, w = (hr.shape[-2] // scale) * scale, (hr.shape[-1] // scale) * scale
    hr = hr[..., :h, :w]
    taps = torch.arange(2 * radius + scale, dtype=torch.float64) - radius - (scale - 1) / 2
    g = torch.exp(-(taps**2) / (2 * sigma**2))
    g = (g / g.sum()).to(hr.dtype)
    channels = hr.shape[1]
    padded = F.pad(hr, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, g.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels, stride=(1, scale))
    small = F.conv2d(rows, g.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels, stride=(scale, 1))
    small = quantize(small)
    return F.interpolate(small, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


# ---- deterministic patch sampling ---------------------------------------------------------------
def augment(patch: np.ndarray, rotation: int, hflip: bool, vflip: bool) -> np.ndarray:
    """Rotation by 90 * ``rotation`` degrees and flips, on HxWxC arrays."""
    patch = np.rot90(patch, rotation)
    if hflip:
        patch = patch[:, ::-1]
    if vflip:
        patch = patch[::-1]
    return np.ascontiguousarray(patch)


def area_weighted(images: list[NamedImage], min_side: int) -> tuple[list[NamedImage], np.ndarray]:
    """The images whose shorter side is at least ``min_side``, and their sampling probabilities:
    larger images are drawn proportionally more often, so every pixel is equally likely."""
    usable = [im for im in images if min(im.hr.shape[:2]) >= min_side]
    if not usable:
        raise UserError(f"no training image is at least {min_side}x{min_side} pixels")
    areas = np.array([im.hr.shape[0] * im.hr.shape[1] for im in usable], dtype=np.float64)
    return usable, areas / areas.sum()


def _to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass
class PatchSampler:
    """The DyConvSR recipe: random HR crops, rotations 0/90/180/270 and flips, LR made online.

    ``batch(step)`` is a pure function of (seed, step, rank).
    """

    images: Sequence[NamedImage]
    scale: int
    hr_patch: int
    batch_size: int
    seed: int = 0
    rank: int = 0

    def __post_init__(self) -> None:
        if self.scale not in SUPPORTED_SCALES:
            raise UserError(f"scale must be one of {SUPPORTED_SCALES}; got {self.scale}")
        if self.hr_patch % self.scale:
            raise UserError(f"HR patch size {self.hr_patch} must be a multiple of the scale {self.scale}")
        self.images, self._weights = area_weighted(self.images, self.hr_patch)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(lr, hr) float tensors in [0, 1], shapes (B, 3, p/s, p/s) and (B, 3, p, p)."""
        rng = np.random.default_rng([self.seed, step, self.rank])
        hrs, lrs = [], []
        p, s = self.hr_patch, self.scale
        for index in rng.choice(len(self.images), size=self.batch_size, p=self._weights):
            im = self.images[index]
            rotation, hflip, vflip = int(rng.integers(4)), bool(rng.integers(2)), bool(rng.integers(2))
            if im.lr is not None:
                lh, lw = im.lr.shape[:2]
                top, left = int(rng.integers(lh - p // s + 1)), int(rng.integers(lw - p // s + 1))
                lrs.append(augment(im.lr[top : top + p // s, left : left + p // s], rotation, hflip, vflip))
                hr = im.hr[top * s : top * s + p, left * s : left * s + p]
            else:
                h, w = im.hr.shape[:2]
                top, left = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
                hr = im.hr[top : top + p, left : left + p]
            hrs.append(augment(hr, rotation, hflip, vflip))
        hr_t = _to_tensor(hrs)
        lr_t = _to_tensor(lrs) if lrs else bicubic_downscale(hr_t, s)
        return lr_t, hr_t


@dataclass
class SubImageSampler:
    """The dynamic-CNN recipe: 33x33 Y sub-images of blurred-subsampled-bicubic-upscaled inputs.

    Each sample draws its scale from ``scales``, so x2/x3/x4 mix in one stream (one scale for the
    static per-scale baseline). ``batch(step)`` returns (y_in, y_hr), both (B, 1, 33, 33).
    """

    images: Sequence[NamedImage]
    scales: Sequence[int]
    batch_size: int
    size: int = 33
    seed: int = 0
    rank: int = 0

    def __post_init__(self) -> None:
        bad = [s for s in self.scales if s not in SUPPORTED_SCALES]
        if bad or not self.scales:
            raise UserError(f"scales must be a non-empty subset of {SUPPORTED_SCALES}; got {list(self.scales)}")
        # Work on a crop that is a multiple of every scale and leaves room for the blur.
        self._window = self.size + 12 * 4
        self.images, self._weights = area_weighted(self.images, self._window)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step, self.rank])
        window = self._window - self._window % 12
        margin = (window - self.size) // 2
        crops, scales = [], []
        for index in rng.choice(len(self.images), size=self.batch_size, p=self._weights):
            im = self.images[index]
            scales.append(int(self.scales[int(rng.integers(len(self.scales)))]))
            h, w = im.hr.shape[:2]
            top, left = int(rng.integers(h - window + 1)), int(rng.integers(w - window + 1))
            rotation, hflip, vflip = int(rng.integers(4)), bool(rng.integers(2)), bool(rng.integers(2))
            crops.append(augment(im.hr[top : top + window, left : left + window], rotation, hflip, vflip))
        hr = _to_tensor(crops)
        degraded = torch.empty_like(hr)
        # One degradation call per scale present (not per sample): the blur is a batched conv.
        scale_of = torch.tensor(scales)
        for scale in sorted(set(scales)):
            chosen = scale_of == scale
            degraded[chosen] = gaussian_blur_downup(hr[chosen], scale)
        cut = (slice(None), slice(0, 1), slice(margin, margin + self.size), slice(margin, margin + self.size))
        return rgb_to_ycbcr(degraded)[cut].contiguous(), rgb_to_ycbcr(hr)[cut].contiguous()
