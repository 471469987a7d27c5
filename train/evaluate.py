"""Evaluation: score models (and the bicubic baseline) on folders of HR images, as SR papers do.

Protocol, per HR image and scale s:
1. ``hr`` = the uint8 image cropped to a multiple of s ("modcrop");
2. ``lr`` = MATLAB-compatible bicubic ``imresize(hr, 1/s)`` (runtime/resize.py), uint8;
3. ``sr`` = the model on the [0, 1] float LR, CPU, eval mode, no grad; clipped and rounded to
   uint8 as a saved image would be. The bicubic baseline is ``imresize(lr, s)``;
4. metrics (runtime/metrics.py) with a border crop of s: Y-PSNR, Y-SSIM, RGB PSNR, Y-WPSNR and
   Y-MS-SSIM; a set's row is the mean over its images.

SRCNN and the DCNN are Y-channel networks behind a bicubic pre-upscale, so they can be tested at
any scale (the cross-scale table); DyConvSR's scale is built into its layers. The colour-space
experiment runs a Y-trained network on Y of YCbCr, on V of HSV, or on each RGB channel.
"""
from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.color import hsv2rgb, rgb2hsv
from torch import nn
from tqdm import tqdm

from runtime.color import rgb_to_ycbcr, ycbcr_to_rgb
from runtime.errors import UserError
from runtime.metrics import METRIC_NAMES, Scores, score_pair
from runtime.resize import imresize

from .checkpoint import checkpoint_label, load_checkpoint
from .data import as_rgb_uint8, embedded_images, folder_images
from .models.common import SUPPORTED_SCALES, bicubic_upscale

BICUBIC = "Bicubic"
PRE_UPSCALE = "Bicubic (network input)"
COLOUR_SPACES = ("ycbcr", "hsv", "rgb")
EMBEDDED_NAME = "embedded-val"


# ---- benchmarks ---------------------------------------------------------------------------------
@dataclass
class Benchmark:
    """A named set of HR images, uint8 HxWx3."""

    name: str
    images: list[tuple[str, np.ndarray]]


def load_benchmark(folder: str | os.PathLike[str], name: str | None = None) -> Benchmark:
    """Every image under ``folder`` (recursively); grayscale images become 3 equal channels."""
    images = [(item.name, item.hr) for item in folder_images(folder)]
    return Benchmark(name or Path(folder).resolve().name, images)


def embedded_benchmark(split: str = "val") -> Benchmark:
    """The held-out scikit-image photographs (train/data.py owns the split); no download."""
    images = [(item.name, as_rgb_uint8(item.hr)) for item in embedded_images(split)]
    return Benchmark(EMBEDDED_NAME if split == "val" else f"embedded-{split}", images)


# ---- models -------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """A model under evaluation, with the label its rows carry."""

    label: str
    model: nn.Module
    name: str = ""

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def native_scale(self) -> int:
        return int(self.model.scale)

    @property
    def y_network(self) -> bool:
        """True for networks that run on a bicubic-upscaled Y channel (SRCNN, DCNN)."""
        return callable(getattr(self.model, "forward_y", None))

    def supports(self, scale: int) -> bool:
        return self.y_network or scale == self.native_scale


def load_candidates(paths: Sequence[str | os.PathLike[str]]) -> list[Candidate]:
    """Load checkpoints (stem, .json or .safetensors); labels are the file stems, made unique."""
    candidates: list[Candidate] = []
    seen: dict[str, int] = {}
    for path in paths:
        checkpoint = load_checkpoint(path)
        stem = checkpoint_label(path)
        seen[stem] = seen.get(stem, 0) + 1
        label = stem if seen[stem] == 1 else f"{stem} ({seen[stem]})"
        candidates.append(Candidate(label, checkpoint.model.eval(), checkpoint.name))
    return candidates


@contextlib.contextmanager
def at_scale(model: nn.Module, scale: int) -> Iterator[nn.Module]:
    """Temporarily set the pre-upscale factor of a Y-channel network (restored afterwards)."""
    original = model.scale
    setter = getattr(model, "set_scale", None)
    try:
        if setter is not None:
            setter(scale)
        else:
            model.scale = scale
        yield model
    finally:
        if setter is not None:
            setter(original)
        else:
            model.scale = original


# ---- the protocol -------------------------------------------------------------------------------
def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so height and width are multiples of ``scale``."""
    h, w = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    if h == 0 or w == 0:
        raise UserError(f"image of shape {image.shape} is smaller than the scale {scale}")
    return image[:h, :w]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    return imresize(hr, 1.0 / scale)


def bicubic_sr(lr: np.ndarray, scale: int) -> np.ndarray:
    return imresize(lr, scale)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


def _to_uint8(tensor: torch.Tensor) -> np.ndarray:
    array = tensor[0].permute(1, 2, 0).double().numpy() if tensor.ndim == 4 else tensor.double().numpy()
    return np.floor(np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@torch.no_grad()
def super_resolve(candidate: Candidate, lr: np.ndarray, scale: int) -> np.ndarray:
    """SR of a uint8 LR image by the model at ``scale``, quantised to uint8 (whole image, CPU)."""
    if not candidate.supports(scale):
        raise UserError(f"{candidate.label} is an x{candidate.native_scale} model; it cannot run at x{scale}")
    model = candidate.model.eval()
    with at_scale(model, scale) if candidate.y_network else contextlib.nullcontext():
        return _to_uint8(model(_to_tensor(lr)))


_TO_SPACE = {"ycbcr": rgb_to_ycbcr, "hsv": rgb2hsv, "rgb": lambda a: a}
_FROM_SPACE = {"ycbcr": ycbcr_to_rgb, "hsv": lambda a: hsv2rgb(np.clip(a, 0.0, 1.0)), "rgb": lambda a: a}
_NETWORK_CHANNELS = {"ycbcr": (0,), "hsv": (2,), "rgb": (0, 1, 2)}


@torch.no_grad()
def colour_space_sr(lr: np.ndarray, scale: int, space: str, candidate: Candidate | None = None) -> np.ndarray:
    """Upscale ``lr`` channel by channel in ``space`` with the models' own bicubic pre-upscale
    (so the YCbCr case is exactly ``model(lr)``) and, given a Y-channel network, run it on Y
    (ycbcr), on V (hsv) or on each channel (rgb). Returns uint8 RGB."""
    if space not in COLOUR_SPACES:
        raise UserError(f"colour space must be one of {', '.join(COLOUR_SPACES)}; got {space!r}")
    converted = _TO_SPACE[space](lr.astype(np.float64) / 255.0)
    up = bicubic_upscale(torch.from_numpy(converted).permute(2, 0, 1)[None].float(), scale)
    if candidate is not None:
        if not candidate.y_network:
            raise UserError("the colour-space table needs Y-channel networks (srcnn, dcnn); "
                            f"{candidate.label} is {candidate.name!r}")
        model = candidate.model.eval()
        for c in _NETWORK_CHANNELS[space]:
            up[:, c : c + 1] = model.forward_y(up[:, c : c + 1])
    rgb = _FROM_SPACE[space](up[0].permute(1, 2, 0).double().numpy())
    return _to_uint8(torch.from_numpy(np.asarray(rgb)).permute(2, 0, 1)[None])


# ---- results ------------------------------------------------------------------------------------
@dataclass
class ImageResult:
    image: str
    scores: Scores


@dataclass
class SetResult:
    """One row of a table: a method on one benchmark at one scale (and colour space)."""

    method: str
    benchmark: str
    scale: int
    params: int | None = None
    colour: str = "ycbcr"
    images: list[ImageResult] = field(default_factory=list)

    @property
    def mean(self) -> Scores:
        if not self.images:
            raise ValueError(f"{self.method} on {self.benchmark} x{self.scale} has no images")
        return Scores(**{m: float(np.mean([getattr(r.scores, m) for r in self.images])) for m in METRIC_NAMES})

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "benchmark": self.benchmark,
            "scale": self.scale,
            "colour": self.colour,
            "params": self.params,
            "mean": _finite(self.mean.to_dict()),
            "images": [{"image": r.image, **_finite(r.scores.to_dict())} for r in self.images],
        }


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    # JSON has no inf/nan: identical images (PSNR = inf) are written as null.
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}


def _score(sr: np.ndarray, hr: np.ndarray, scale: int, image: str) -> Scores:
    try:
        return score_pair(sr, hr, border=scale)
    except UserError as exc:
        raise UserError(f"{image} at x{scale}: {exc}") from None


def _check_scales(scales: Sequence[int]) -> list[int]:
    bad = [s for s in scales if s not in SUPPORTED_SCALES]
    if bad or not scales:
        raise UserError(f"scales must be among {', '.join(map(str, SUPPORTED_SCALES))}; got {list(scales)}")
    return sorted(set(int(s) for s in scales))


def default_scales(candidates: Sequence[Candidate]) -> list[int]:
    return sorted({c.native_scale for c in candidates}) or [2]


def _pairs(
    benchmarks: Sequence[Benchmark], scales: Sequence[int], progress: bool, desc: str
) -> Iterator[tuple[str, int, str, np.ndarray, np.ndarray]]:
    """(benchmark, scale, image name, HR, LR) for every image at every scale, with a progress bar."""
    total = sum(len(b.images) for b in benchmarks) * len(scales)
    with tqdm(total=total, unit="img", disable=not progress, desc=desc, leave=False) as bar:
        for bench in benchmarks:
            for scale in scales:
                for name, image in bench.images:
                    bar.set_postfix_str(f"{bench.name} x{scale} {name}")
                    hr = modcrop(as_rgb_uint8(image), scale)
                    yield bench.name, scale, name, hr, make_lr(hr, scale)
                    bar.update(1)


def evaluate(
    candidates: Sequence[Candidate],
    benchmarks: Sequence[Benchmark],
    scales: Sequence[int] | None = None,
    bicubic: bool = True,
    progress: bool = True,
) -> list[SetResult]:
    """Score every candidate that can run at each scale, plus the bicubic row, on every benchmark.

    ``scales`` defaults to the candidates' own scales. A fixed-scale model (DyConvSR) is skipped
    at other scales; Y-channel networks run at every scale asked for.
    """
    scales = _check_scales(scales if scales is not None else default_scales(candidates))
    rows: dict[tuple[str, str, int], SetResult] = {}

    def row(method: str, params: int | None, bench: str, scale: int) -> SetResult:
        return rows.setdefault((method, bench, scale), SetResult(method, bench, scale, params))

    for bench, scale, name, hr, lr in _pairs(benchmarks, scales, progress, "evaluate"):
        if bicubic:
            result = ImageResult(name, _score(bicubic_sr(lr, scale), hr, scale, name))
            row(BICUBIC, None, bench, scale).images.append(result)
        for cand in candidates:
            if cand.supports(scale):
                result = ImageResult(name, _score(super_resolve(cand, lr, scale), hr, scale, name))
                row(cand.label, cand.params, bench, scale).images.append(result)
    return list(rows.values())


def evaluate_colour_spaces(
    candidates: Sequence[Candidate],
    benchmarks: Sequence[Benchmark],
    scales: Sequence[int] | None = None,
    progress: bool = True,
) -> list[SetResult]:
    """The dynamic-CNN paper's colour-space comparison: per colour space and scale, the bicubic
    pre-upscale alone and each Y-channel network on it."""
    if not candidates:
        raise UserError("the colour-space table needs at least one checkpoint of a Y-channel network (srcnn, dcnn)")
    for cand in candidates:
        if not cand.y_network:
            raise UserError("the colour-space table needs Y-channel networks (srcnn, dcnn); "
                            f"{cand.label} is {cand.name!r}")
    scales = _check_scales(scales if scales is not None else default_scales(candidates))
    rows: dict[tuple[str, str, str, int], SetResult] = {}
    for bench, scale, name, hr, lr in _pairs(benchmarks, scales, progress, "colour"):
        for space in COLOUR_SPACES:
            for cand in (None, *candidates):
                method, params = (PRE_UPSCALE, None) if cand is None else (cand.label, cand.params)
                result = rows.setdefault((method, space, bench, scale), SetResult(method, bench, scale, params, space))
                sr = colour_space_sr(lr, scale, space, cand)
                result.images.append(ImageResult(name, _score(sr, hr, scale, name)))
    return list(rows.values())
