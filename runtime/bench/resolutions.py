"""Benchmark sizes named by what users care about, resolved per scale.

``lr256`` is defined on the input (256x256 LR); the video sizes are defined on the output, so
the LR input is the output divided by the scale, rounded up (x3 720p: 427x240 -> 1281x720).
A custom size ``WxH`` is an LR input size.
"""
from __future__ import annotations

import math
import re
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


# The largest LR input side a benchmark may ask for: 8192x8192 float32 is 805 MB in and, at x4,
# 12.9 GB out; anything larger is a typo, not a benchmark.
MAX_SIDE = 8192


def parse_resolution(text: str) -> Resolution:
    """A name from :data:`NAMED` or ``WxH`` (an LR input size, each side 1..:data:`MAX_SIDE`)."""
    key = text.strip().lower()
    if key in NAMED:
        return NAMED[key]
    match = re.fullmatch(r"([0-9]{1,9})x([0-9]{1,9})", key)
    if match is None:
        raise UserError(f"unknown resolution {text!r}; use one of {', '.join(NAMED)} "
                        "or WxH (LR input size, e.g. 64x48)")
    width, height = int(match[1]), int(match[2])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise UserError(f"resolution {text!r}: each side must be 1 to {MAX_SIDE} pixels (LR input); "
                        f"got {width}x{height}")
    return Resolution(key, width, height, on_output=False)
