"""What the output video's pixels are: the encoder's pixel format and colour tags, chosen to lose nothing.

The input's bit depth, chroma resolution and colour tags (primaries, transfer, matrix, range) are
kept: the encoder gets the pixel format of its own list with at least the input's bits and chroma
(the closest one: 10-bit 4:2:0 stays 10-bit 4:2:0, 4:4:4 and RGB sources become 4:4:4), and the
input's tags. An odd output side takes 4:4:4 on that axis (4:2:0 and 4:2:2 need even sides).
Where nothing in the encoder's list keeps it all, or the input has an alpha channel (the engine
upscales RGB only), :func:`output_pixels` refuses with one line saying what would be lost and what
to do instead, as images refuse a format that drops bits or alpha (runtime/images.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError

# AVColorPrimaries / AVColorTransferCharacteristic numbers that mean HDR or a wide gamut.
WIDE_PRIMARIES = {9: "BT.2020", 11: "DCI-P3", 12: "Display P3"}
HDR_TRANSFERS = {16: "PQ (SMPTE 2084)", 18: "HLG"}
UNSPECIFIED = 2
RGB_TAGS = (6, 2)  # an RGB source's YUV output: BT.601 matrix (SMPTE 170M), full range


@dataclass(frozen=True)
class SourcePixels:
    """What the input stream's pixel format holds."""

    name: str
    bits: int
    chroma: tuple[int, int]  # subsampling (x, y): 4:2:0 (2, 2), 4:2:2 (2, 1), 4:4:4 and RGB (1, 1); gray (0, 0)
    alpha: bool
    rgb: bool

    @property
    def description(self) -> str:
        chroma = {(2, 2): "4:2:0", (2, 1): "4:2:2", (1, 1): "4:4:4", (0, 0): "grey", (1, 2): "4:4:0"}.get(
            self.chroma, f"{self.chroma[0]}x{self.chroma[1]}-subsampled")
        kind = "RGB" if self.rgb else chroma
        return f"{self.bits}-bit {kind}{' with alpha' if self.alpha else ''} ({self.name})"


def source_pixels(av: Any, name: str) -> SourcePixels:
    """The bits, chroma subsampling and alpha of the pixel format ``name`` (FFmpeg's name)."""
    fmt = av.VideoFormat(name, 4, 4)
    colour = [c for c in fmt.components if not c.is_alpha]
    alpha = len(colour) < len(fmt.components)
    bits = max(c.bits for c in colour)
    if fmt.is_rgb:
        chroma = (1, 1)
    elif len(colour) == 1:
        chroma = (0, 0)
    else:  # the second component is a chroma one (PyAV's is_chroma is false for unsubsampled chroma)
        chroma = (4 // colour[1].width, 4 // colour[1].height)
    return SourcePixels(name, bits, chroma, alpha, bool(fmt.is_rgb))


@dataclass(frozen=True)
class OutputPixels:
    pix_fmt: str
    note: str | None  # what -v says about the choice (None: the input's own format)


def output_pixels(av: Any, source: SourcePixels, codec: str, size: tuple[int, int]) -> OutputPixels:
    """The pixel format ``codec`` encodes ``source`` with at ``size`` (w, h) without loss; else UserError."""
    if source.alpha:
        raise UserError(f"the video is {source.description}: its alpha channel would be lost (video is upscaled "
                        "as RGB); nothing is written. Flatten it first if the loss is wanted, e.g. "
                        "ffmpeg -i IN -pix_fmt yuv420p OUT")
    need_x = 1 if size[0] % 2 else (source.chroma[0] or 2)
    need_y = 1 if size[1] % 2 else (source.chroma[1] or 2)
    offered = [source_pixels(av, f.name) for f in av.Codec(codec, "w").video_formats or []]
    fits = [p for p in offered if not p.alpha and p.bits >= source.bits and p.chroma != (0, 0)
            and p.name.startswith(("yuv", "gbrp")) and not p.name.startswith("yuvj")
            and p.chroma[0] <= need_x and p.chroma[1] <= need_y and (p.rgb == source.rgb or not p.rgb)]
    if not fits:
        best = max(offered, key=lambda p: (p.bits, -p.chroma[0] * p.chroma[1]), default=None)
        what = f"{source.bits}-bit" if best is None or best.bits < source.bits else (
            f"{'4:4:4' if (need_x, need_y) == (1, 1) else 'its'} chroma")
        odd = " at the odd size {}x{}".format(*size) if size[0] % 2 or size[1] % 2 else ""
        raise UserError(f"the video is {source.description}; {codec} cannot keep {what}{odd} (its pixel formats: "
                        f"{', '.join(p.name for p in offered) or 'none'}); nothing is written. Choose an encoder that "
                        "can, e.g. --codec libx265 (mp4, mkv) or ffv1 (mkv)")
    # Fewest bits, then the closest chroma (most subsampled that still holds it), then RGB for RGB sources.
    chosen = min(fits, key=lambda p: (p.bits, -(p.chroma[0] * p.chroma[1]), p.rgb != source.rgb))
    note = None
    if chosen.name != source.name:
        why = " (an odd output side needs full chroma)" if (size[0] % 2 or size[1] % 2) else ""
        note = f"pixels: {source.description} encoded as {chosen.description}{why}"
    return OutputPixels(chosen.name, note)


def frames_refusal(source: SourcePixels, primaries: int, transfer: int) -> str | None:
    """Why an 8-bit RGB image sequence (--video-format frames) would lose what the video holds; None if it would not."""
    if source.alpha:
        return f"its alpha channel would be lost (video is upscaled as RGB; the video is {source.description})"
    if source.bits > 8:
        return f"the video is {source.description}, and the frames are 8-bit"
    if transfer in HDR_TRANSFERS or primaries in WIDE_PRIMARIES:
        gamut = HDR_TRANSFERS.get(transfer) or WIDE_PRIMARIES.get(primaries)
        return f"its colours are {gamut}, which 8-bit sRGB frames cannot carry"
    return None
