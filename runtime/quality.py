"""The SR evaluation protocol, numpy only: what ``train evaluate``, ``benchmarks`` and ``runtime.bench
--quality`` score with, so a device reports the same numbers as the training host.

Per HR image and scale s:

1. ``hr`` = the uint8 RGB image cropped at the bottom/right to a multiple of s (:func:`modcrop`);
2. ``lr`` = MATLAB-compatible bicubic ``imresize(hr, 1/s)`` (:mod:`runtime.resize`), uint8;
3. the network runs on ``lr / 255`` in float32 (:func:`network_input`); its float output is rounded
   once to uint8 (:func:`runtime.images.to_uint8`), as a saved image would be. The bicubic
   baseline is ``imresize(lr, s)`` (:func:`bicubic_sr`);
4. metrics (:func:`runtime.metrics.score_pair`) with a border of s: PSNR and SSIM on the Y
   channel of BT.601 (what the papers report), RGB PSNR, Y-WPSNR and Y-MS-SSIM; a set's figure
   is the mean over its images.

That is the ``standard`` :class:`Protocol`. ``authors`` is what the DyConvSR authors' eval.py measures: HR cropped
to a multiple of 12 whatever the scale (their GTmod12 sets, the same MATLAB bicubic LR), no border crop, and Y by
:func:`runtime.metrics.authors_y` (SwinIR's bgr2ycbcr fed RGB: R and B weights swapped), kept because their
published figures were measured that way.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .images import find_images, read_picture, to_uint8
from .metrics import METRIC_NAMES, Scores, authors_y, score_pair, y_channel
from .resize import imresize

# The label of the protocol's bicubic row, wherever quality rows are written.
MATLAB_BICUBIC = "bicubic (MATLAB imresize)"
SIXTEEN_BIT_PEAK = 65535.0


@dataclass(frozen=True)
class Protocol:
    """How an SR figure is measured: HR cropped to a multiple of ``hr_multiple`` (None: the scale), ``border``
    pixels left out of the metrics (None: the scale), Y by ``luma``."""

    name: str
    hr_multiple: int | None
    border: int | None
    luma: Callable[[np.ndarray], np.ndarray]

    def hr(self, image: np.ndarray, scale: int) -> np.ndarray:
        return modcrop(image, self.hr_multiple or scale)

    def border_for(self, scale: int) -> int:
        return scale if self.border is None else self.border


PROTOCOLS = {"standard": Protocol("standard", None, None, y_channel), "authors": Protocol("authors", 12, 0, authors_y)}
STANDARD = PROTOCOLS["standard"]


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``scale``."""
    h, w = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    if h == 0 or w == 0:
        raise UserError(f"image of shape {image.shape} is smaller than the scale {scale}")
    return image[:h, :w]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The protocol's LR image: MATLAB bicubic downscale of the (modcropped) uint8 HR."""
    return imresize(hr, 1.0 / scale)


def bicubic_sr(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: MATLAB bicubic upscale of the uint8 LR."""
    return imresize(lr, scale)


def network_input(lr: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 LR -> float32 in [0, 1] (k / 255 correctly rounded, as torch's ``.float() / 255``)."""
    return np.asarray(lr).astype(np.float32) / np.float32(255.0)


def score(sr: np.ndarray, hr: np.ndarray, scale: int, image: str = "", protocol: Protocol = STANDARD) -> Scores:
    """Every metric of a uint8 SR image against its HR by ``protocol`` (border = ``scale`` in the standard one);
    errors name ``image``."""
    try:
        return score_pair(sr, hr, border=protocol.border_for(scale), luma=protocol.luma)
    except UserError as exc:
        raise UserError(f"{image} at x{scale}: {exc}" if image else f"x{scale}: {exc}") from None


def mean_scores(scores: Sequence[Scores]) -> Scores:
    if not scores:
        raise UserError("no images to average scores over")
    return Scores(**{m: float(np.mean([getattr(s, m) for s in scores])) for m in METRIC_NAMES})


@dataclass(frozen=True)
class ProtocolImage:
    """One HR image prepared for a scale: the modcropped HR and its protocol LR, both uint8 HxWx3."""

    name: str
    hr: np.ndarray
    lr: np.ndarray


def protocol_image(name: str, image: np.ndarray, scale: int, protocol: Protocol = STANDARD) -> ProtocolImage:
    try:
        hr = protocol.hr(image, scale)
    except UserError as exc:
        raise UserError(f"{name}: {exc}") from None
    return ProtocolImage(name, hr, make_lr(hr, scale))


def protocol_images(images: Iterable[tuple[str, np.ndarray]], scale: int,
                    protocol: Protocol = STANDARD) -> list[ProtocolImage]:
    return [protocol_image(name, image, scale, protocol) for name, image in images]


def read_hr_folder(folder: str | os.PathLike[str]) -> list[tuple[str, np.ndarray]]:
    """Every image under ``folder`` (recursively) as (path relative to it, uint8 HxWx3 RGB).

    Grayscale becomes three equal channels, alpha is dropped, 16-bit grayscale is rounded to 8 bits.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{folder}: not a folder of HR images")
    paths = find_images(root)
    if not paths:
        raise UserError(f"no images (png, jpg, webp, ...) found under {folder}")
    images = []
    for path in paths:
        name = path.relative_to(root).as_posix()
        try:
            picture = read_picture(path)
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        rgb = picture.rgb if picture.bits == 8 else to_uint8(picture.rgb, peak=SIXTEEN_BIT_PEAK)
        images.append((name, np.ascontiguousarray(rgb)))
    return images


@dataclass
class SetQuality:
    """One method's scores on a set of images at one scale."""

    dataset: str
    scale: int
    per_image: dict[str, Scores] = field(default_factory=dict)
    protocol: str = "standard"  # the Protocol's name the scores were measured by

    @property
    def mean(self) -> Scores:
        return mean_scores(list(self.per_image.values()))


def score_set(
    dataset: str,
    images: Sequence[ProtocolImage],
    scale: int,
    upscale: Callable[[ProtocolImage], np.ndarray],
    step: Callable[[int], object] | None = None,
    protocol: Protocol = STANDARD,
) -> SetQuality:
    """Score ``upscale(image)`` (uint8, ``scale`` x the LR) on every image by ``protocol``; ``step(1)`` after each."""
    result = SetQuality(dataset, scale, protocol=protocol.name)
    for image in images:
        result.per_image[image.name] = score(upscale(image), image.hr, scale, image.name, protocol)
        if step is not None:
            step(1)
    return result


def bicubic_quality(dataset: str, images: Sequence[ProtocolImage], scale: int,
                    protocol: Protocol = STANDARD) -> SetQuality:
    return score_set(dataset, images, scale, lambda image: bicubic_sr(image.lr, scale), protocol=protocol)
