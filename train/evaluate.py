"""Evaluation: score models (and the bicubic baseline) on folders of HR images, as SR papers do.

The protocol (modcrop, MATLAB bicubic LR, one uint8 rounding of the output, Y-channel metrics with
a border of s) is numpy code in runtime/quality.py, shared with ``python -m runtime.bench --quality``
on devices; here torch only runs the models (CPU, eval mode, no grad, whole images).

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

from runtime.color import rgb_to_ycbcr, ycbcr_to_rgb
from runtime.errors import UserError
from runtime.images import to_uint8
from runtime.metrics import Scores
from runtime.progress import progress_bar
from runtime.quality import (
    STANDARD,
    Protocol,
    bicubic_sr,
    make_lr,
    mean_scores,
    network_input,
    read_hr_folder,
    score,
)

from .checkpoint import checkpoint_label, load_checkpoint
from .data import as_rgb_uint8, embedded_images
from .models import ModelConfig, model_traits
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
    return Benchmark(name or Path(folder).resolve().name, read_hr_folder(folder))


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
        """True for networks that run on a bicubic-upscaled Y channel (SRCNN, DCNN), as the registry
        says; a module not built by ``create_model`` is taken for an RGB network at its own scale."""
        config = getattr(self.model, "config", None)
        return isinstance(config, ModelConfig) and model_traits(config.name).y_channel

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


# ---- running the models on the protocol's images ----------------------------------------------------
def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(network_input(image)).permute(2, 0, 1)[None]


def _to_image(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).numpy()


@torch.no_grad()
def super_resolve(candidate: Candidate, lr: np.ndarray, scale: int) -> np.ndarray:
    """SR of a uint8 LR image by the model at ``scale``, quantised to uint8 (whole image, CPU)."""
    if not candidate.supports(scale):
        raise UserError(f"{candidate.label} is an x{candidate.native_scale} model; it cannot run at x{scale}")
    model = candidate.model.eval()
    with at_scale(model, scale) if candidate.y_network else contextlib.nullcontext():
        return to_uint8(_to_image(model(_to_tensor(lr))))


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
    return to_uint8(_FROM_SPACE[space](_to_image(up).astype(np.float64)))


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
        return mean_scores([r.scores for r in self.images])

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


def _check_scales(scales: Sequence[int]) -> list[int]:
    bad = [s for s in scales if s not in SUPPORTED_SCALES]
    if bad or not scales:
        raise UserError(f"scales must be among {', '.join(map(str, SUPPORTED_SCALES))}; got {list(scales)}")
    return sorted(set(int(s) for s in scales))


def default_scales(candidates: Sequence[Candidate]) -> list[int]:
    return sorted({c.native_scale for c in candidates}) or [2]


def _pairs(
    benchmarks: Sequence[Benchmark], scales: Sequence[int], progress: bool, desc: str, protocol: Protocol = STANDARD
) -> Iterator[tuple[str, int, str, np.ndarray, np.ndarray]]:
    """(benchmark, scale, image name, HR, LR) for every image at every scale, with a progress bar."""
    total = sum(len(b.images) for b in benchmarks) * len(scales)
    with progress_bar(total=total, quiet=not progress, unit="img", desc=desc, leave=False) as bar:
        for bench in benchmarks:
            for scale in scales:
                for name, image in bench.images:
                    bar.set_postfix_str(f"{bench.name} x{scale} {name}")
                    hr = protocol.hr(as_rgb_uint8(image), scale)
                    yield bench.name, scale, name, hr, make_lr(hr, scale)
                    bar.update(1)


def evaluate(
    candidates: Sequence[Candidate],
    benchmarks: Sequence[Benchmark],
    scales: Sequence[int] | None = None,
    bicubic: bool = True,
    progress: bool = True,
    protocol: Protocol = STANDARD,
) -> list[SetResult]:
    """Score every candidate that can run at each scale, plus the bicubic row, on every benchmark, by ``protocol``
    (runtime.quality: standard, or the authors').

    ``scales`` defaults to the candidates' own scales. A fixed-scale model (DyConvSR) is skipped
    at other scales; Y-channel networks run at every scale asked for.
    """
    scales = _check_scales(scales if scales is not None else default_scales(candidates))
    rows: dict[tuple[str, str, int], SetResult] = {}

    def row(method: str, params: int | None, bench: str, scale: int) -> SetResult:
        return rows.setdefault((method, bench, scale), SetResult(method, bench, scale, params))

    for bench, scale, name, hr, lr in _pairs(benchmarks, scales, progress, "evaluate", protocol):
        if bicubic:
            result = ImageResult(name, score(bicubic_sr(lr, scale), hr, scale, name, protocol))
            row(BICUBIC, None, bench, scale).images.append(result)
        for cand in candidates:
            if cand.supports(scale):
                result = ImageResult(name, score(super_resolve(cand, lr, scale), hr, scale, name, protocol))
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
                result.images.append(ImageResult(name, score(sr, hr, scale, name)))
    return list(rows.values())
