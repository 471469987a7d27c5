"""How runtime.infer names and sizes what it writes, as upscaler users expect (Real-ESRGAN's conventions):
``--suffix`` (default ``x<scale>``: ``photo.jpg`` -> ``photo_x2.png``), ``--format auto`` (the input's own
format where it is one the runtime writes, else PNG) and ``-s/--outscale`` (any output factor: the network's
scale, then a MATLAB-compatible bicubic resize to exactly round(factor x input) pixels a side).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError
from .images import OUTPUT_FORMATS, Picture, output_format
from .inputs import InputFile
from .resize import imresize

AUTO = "auto"
MAX_OUTSCALE = 16.0


@dataclass(frozen=True)
class Naming:
    """``fmt``: an output format or "auto"; ``suffix``: None = ``x<scale>`` (or ``x<outscale>``); ``outscale``:
    None = the network's scale."""

    fmt: str = "png"
    suffix: str | None = None
    outscale: float | None = None

    def __post_init__(self) -> None:
        if self.fmt.lower() != AUTO:
            output_format(self.fmt)  # refuses an unknown format by name
        if self.suffix is not None and (any(c in self.suffix for c in "/\\\0") or self.suffix in (".", "..")
                                        or not self.suffix.isprintable()):
            raise UserError(f"--suffix must be a plain name part (no '/', '\\\\', control characters); "
                            f"got {self.suffix!r}")
        if self.outscale is not None and not (math.isfinite(self.outscale) and 0 < self.outscale <= MAX_OUTSCALE):
            raise UserError(f"-s/--outscale must be a number above 0 and at most {MAX_OUTSCALE:g}; "
                            f"got {self.outscale!r}")

    def format_for(self, source: Path) -> tuple[str, str]:
        """(file suffix, Pillow format) of the output of ``source``."""
        if self.fmt.lower() != AUTO:
            return output_format(self.fmt)
        own = source.suffix.lower().lstrip(".")
        return output_format(own if own in OUTPUT_FORMATS else "png")

    def name_part(self, scale: int) -> str:
        if self.suffix is not None:
            return self.suffix
        return f"x{self.outscale:g}" if self.outscale is not None else f"x{scale}"

    def output_path(self, out_dir: Path, item: InputFile, scale: int, ext: str) -> Path:
        """``photo.jpg`` -> ``OUT_DIR/photo_<suffix>.<ext>`` (sub-folders of a folder input kept; an empty
        suffix gives ``photo.<ext>``)."""
        part = self.name_part(scale)
        stem = f"{item.relative.stem}_{part}" if part else item.relative.stem
        return out_dir / item.relative.parent / f"{stem}.{ext}"


def output_size(height: int, width: int, outscale: float) -> tuple[int, int]:
    """round(outscale x each side), at least 1 pixel."""
    return max(1, round(height * outscale)), max(1, round(width * outscale))


def rescale(picture: Picture, height: int, width: int) -> Picture:
    """``picture`` resized to ``height`` x ``width`` by the MATLAB-compatible bicubic (runtime/resize.py),
    alpha alike; 16-bit samples are rounded and clipped back to 16 bits."""
    def resized(array: np.ndarray) -> np.ndarray:
        if array.shape[:2] == (height, width):
            return array
        out = imresize(array, output_shape=(height, width))
        if array.dtype == np.uint8:
            return out
        return np.clip(np.rint(out), 0, np.iinfo(array.dtype).max).astype(array.dtype)

    alpha = None if picture.alpha is None else resized(picture.alpha)
    return Picture(resized(picture.rgb), alpha, picture.gray, picture.source_mode, picture.icc_profile)
