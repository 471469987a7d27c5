"""Test clips: a still photo panned, with a sine tone, and the HR frames it was made from.

A camera pan over a photo is the simplest real video whose ground truth is known: HR frame t is a
window of the photo at offset t * step (in HR pixels), and the LR clip is the same window of the
photo downscaled by the scale (MATLAB bicubic, :func:`runtime.resize.imresize`, once for the whole
photo: the window moves by whole LR pixels). The LR frames are encoded near-losslessly so the
measurement is of the upscaler, not of the LR codec. Used by the tests and the video benchmarks.

A clip whose attention really jitters: ``step=(0, 0)`` (a still camera) or a slow pan, with
``flicker`` (each frame's brightness scaled by 1 + U(-flicker, flicker): lighting, so in the HR
frames too) and ``noise`` (sensor noise on the LR frames only, Gaussian, std in 0-255 levels), both
drawn from ``seed``: the HR frames stay the clean truth the output is scored against.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..resize import imresize
from .decode import import_av


@dataclass(frozen=True)
class PannedClip:
    """``lr_size``/``hr_size``: (width, height). ``step``: LR pixels per frame (x, y)."""

    photo: np.ndarray  # HR photo, uint8 HxWx3
    scale: int
    lr_size: tuple[int, int]
    frames: int
    step: tuple[int, int] = (2, 1)
    flicker: float = 0.0  # relative brightness amplitude per frame (HR and LR)
    noise: float = 0.0  # std of the LR frames' Gaussian sensor noise, 0-255 levels
    seed: int = 0

    def __post_init__(self) -> None:
        width, height = self.lr_size
        need_w = (width + self.step[0] * (self.frames - 1)) * self.scale
        need_h = (height + self.step[1] * (self.frames - 1)) * self.scale
        if self.photo.shape[1] < need_w or self.photo.shape[0] < need_h:
            raise ValueError(f"photo {self.photo.shape[1]}x{self.photo.shape[0]} too small for the pan "
                             f"({need_w}x{need_h} needed)")

    @property
    def hr_size(self) -> tuple[int, int]:
        return self.lr_size[0] * self.scale, self.lr_size[1] * self.scale

    def _offset(self, index: int) -> tuple[int, int]:
        return index * self.step[0], index * self.step[1]

    def gains(self) -> np.ndarray:
        """Each frame's brightness factor (all 1 without ``flicker``)."""
        return 1.0 + self.flicker * np.random.default_rng(self.seed).uniform(-1.0, 1.0, self.frames)

    def hr_frames(self) -> Iterator[np.ndarray]:
        (width, height), s = self.hr_size, self.scale
        for index, gain in enumerate(self.gains()):
            x, y = self._offset(index)
            yield _scaled(self.photo[y * s : y * s + height, x * s : x * s + width], gain, 0.0, None)

    def lr_frames(self) -> Iterator[np.ndarray]:
        width, height = self.lr_size
        photo = self.photo[: self.photo.shape[0] // self.scale * self.scale,
                           : self.photo.shape[1] // self.scale * self.scale]
        small = imresize(photo, 1 / self.scale)
        noise = np.random.default_rng(self.seed + 1)
        for index, gain in enumerate(self.gains()):
            x, y = self._offset(index)
            yield _scaled(small[y : y + height, x : x + width], gain, self.noise, noise)


def _scaled(frame: np.ndarray, gain: float, noise: float, rng: np.random.Generator | None) -> np.ndarray:
    """uint8 ``frame`` times ``gain`` plus Gaussian noise of std ``noise`` (0-255), rounded; as is when neither."""
    if gain == 1.0 and not noise:
        return frame
    values = frame.astype(np.float32) * np.float32(gain)
    if noise and rng is not None:
        values += rng.normal(0.0, noise, frame.shape).astype(np.float32)
    return (np.clip(values, 0, 255) + 0.5).astype(np.uint8)


def photo_covering(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """``photo`` enlarged (bicubic, PIL) just enough to cover ``width`` x ``height``: a real picture's
    content for timing runs at sizes above the photo's own (not for quality figures)."""
    from PIL import Image

    factor = max(width / photo.shape[1], height / photo.shape[0], 1.0)
    if factor == 1.0:
        return photo
    size = (math.ceil(photo.shape[1] * factor), math.ceil(photo.shape[0] * factor))
    return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.BICUBIC))


def write_clip(path: str | Path, frames: Iterator[np.ndarray], rate: int = 25, *, tone_hz: float | None = 440.0,
               codec: str = "libx264", crf: int = 6, container: str | None = None, rotation: int = 0) -> Path:
    """Encode uint8 HxWx3 ``frames`` at ``rate`` fps (yuv420p), with a sine tone (AAC, 48 kHz mono)
    as long as the video unless ``tone_hz`` is None. ``crf`` 6: near lossless."""
    av = import_av()
    path = Path(path)
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), mode="w", format=container) as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        video.options = {"crf": str(crf), "preset": "veryfast"} if codec == "libx264" else {}
        if rotation:
            video.set_display_rotation(rotation)
        audio = out.add_stream("aac", rate=48000, layout="mono") if tone_hz else None
        count = 0
        for count, rgb in enumerate(itertools.chain([first], frames)):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = count
            frame.time_base = Fraction(1, rate)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            samples = round((count + 1) / rate * 48000)
            tone = (0.3 * np.sin(2 * np.pi * tone_hz * np.arange(samples) / 48000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 48000, start
                out.mux(audio.encode(chunk))
            out.mux(audio.encode(None))
    return path
