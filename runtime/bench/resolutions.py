"""Benchmark sizes named by what users care about, resolved per scale.

``lr256`` is defined on the input (256x256 LR); the video sizes are defined on the output, so
the LR input is the output divided by the scale, rounded up (x3 720p: 427x240 -> 1281x720).
A custom size ``WxH`` is an LR input size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UserError


@dataclass(frozen=True)
class Resolution:
    name: str
    width: int
    height: int
    on_output: bool  # True: width x height is the output size; False: the LR input size

    def lr_size(self, scale: int) -> tuple[int, int]:
        """(height, width) of the LR input at ``scale``."""
        if not self.on_output:
            return self.height, self.width
        return math.ceil(self.height / scale), math.ceil(self.width / scale)

    def label(self, scale: int) -> str:
        h, w = self.lr_size(scale)
        return f"{w}x{h} -> {w * scale}x{h * scale}"


NAMED = {
    "lr256": Resolution("lr256", 256, 256, on_output=False),
    "720p": Resolution("720p", 1280, 720, on_output=True),
    "1080p": Resolution("1080p", 1920, 1080, on_output=True),
    "4k": Resolution("4k", 3840, 2160, on_output=True),
}


def parse_resolution(text: str) -> Resolution:
    """A name from :data:`NAMED` or ``WxH`` (an LR input size)."""
    key = text.strip().lower()
    if key in NAMED:
        return NAMED[key]
    width, sep, height = key.partition("x")
    if sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0:
        return Resolution(key, int(width), int(height), on_output=False)
    raise UserError(f"unknown resolution {text!r}; use one of {', '.join(NAMED)} or WxH (LR input size, e.g. 64x48)")
