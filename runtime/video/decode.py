"""Reading a video with PyAV: its streams, then its frames as float32 RGB planes, in demux order.

:class:`VideoReader` opens the file and decodes the first frame at once, so a file that is not a
video, or whose video cannot be decoded, is refused before anything is written. Frames come out
as :class:`DecodedFrame` (float32 3xHxW RGB in [0, 1]: FFmpeg's swscale converts the stream's own
YUV with its colour matrix and range to planar integer RGB, 8 or 16 bits as the stream has, which
numpy scales; swscale's float output is both slower and less exact on fine chroma, measured in
runtime/README.md "Video"), interleaved with the packets of the
streams that are copied unchanged (audio, subtitles) as :class:`CopiedPacket`. A video that ends
before its container says (a truncated file) or whose packets fail to decode raises
:class:`~runtime.errors.UserError` with one line.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, UserError, display, first_line
from ..images import max_image_pixels

# Names a folder or glob picks as videos; a file named explicitly is probed whatever its name.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                  ".flv", ".3gp", ".ogv", ".wmv")
PLANAR_8, PLANAR_16 = "gbrp", "gbrp16le"  # FFmpeg's planar integer RGB: planes G, B, R
RGB_OF_PLANE = (1, 2, 0)  # plane k of a gbrp frame holds RGB channel RGB_OF_PLANE[k]
# FFmpeg's colour-matrix and range names; unspecified streams are read as BT.601 limited range, as swscale does.
COLORSPACES = {1: "ITU709", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020"}
DEFAULT_COLORSPACE = "ITU601"


def ffmpeg_file_url(path: str | os.PathLike[str]) -> str:
    """``path`` as FFmpeg must take a local file: through its ``file:`` protocol with an absolute path, so that a
    name such as ``concat:a.mp4``, ``subfile,,start,...`` or ``a:b.mp4`` is that file, never a protocol or URL."""
    return "file:" + os.path.abspath(os.fspath(path))


def planar_format(bits: int) -> tuple[str, type[np.unsignedinteger], float]:
    """(planar RGB pixel format, its numpy dtype, its peak) holding ``bits`` per component without loss."""
    return (PLANAR_8, np.uint8, 255.0) if bits <= 8 else (PLANAR_16, np.uint16, 65535.0)


def colour_matrix(colorspace: int) -> str:
    """swscale's name of a stream's colour matrix (its AVColorSpace number; unknown: BT.601)."""
    return COLORSPACES.get(colorspace, DEFAULT_COLORSPACE)


def import_av() -> Any:
    """The PyAV module, or one line naming the extra that installs it."""
    try:
        import av
    except ImportError:
        raise BackendUnavailable("video needs the optional extra: pip install 'dyconvsr-toolchain[video]'") from None
    return av


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoInfo:
    """What the input's video stream declares."""

    width: int
    height: int
    rate: Fraction | None  # average frame rate
    time_base: Fraction
    frames: int | None  # as the container declares (None: unknown)
    duration: float | None  # seconds (None: unknown)
    codec: str
    rotation: int  # display rotation in degrees, as FFmpeg reports it (0: none)
    colorspace: int
    color_range: int
    copied: tuple[str, ...]  # "audio aac", "subtitle mov_text", ... streams offered for copying

    @property
    def matrix(self) -> str:
        return colour_matrix(self.colorspace)


@dataclass
class DecodedFrame:
    index: int
    pts: int | None  # in VideoInfo.time_base
    planes: np.ndarray  # float32 3xHxW RGB in [0, 1]


@dataclass
class CopiedPacket:
    stream_index: int  # index of the input stream it belongs to
    packet: Any  # av.Packet


def planes_of(frame: Any, matrix: str, color_range: int) -> np.ndarray:
    """A decoded av.VideoFrame -> float32 3xHxW RGB (swscale converts to integer planes, numpy scales them)."""
    name, dtype, peak = planar_format(max(c.bits for c in frame.format.components))
    rgb = frame.reformat(format=name, src_colorspace=matrix, src_color_range=color_range or None)
    out = np.empty((3, rgb.height, rgb.width), dtype=np.float32)
    size = np.dtype(dtype).itemsize
    for plane, channel in zip(rgb.planes, RGB_OF_PLANE, strict=True):
        rows = np.frombuffer(memoryview(plane), dtype).reshape(plane.height, plane.line_size // size)
        np.multiply(rows[:, : plane.width], np.float32(1.0 / peak), out=out[channel], dtype=np.float32)
    return out


class VideoReader:
    """``with VideoReader(path) as reader: reader.info; for item in reader.items(): ...``"""

    def __init__(self, path: str | Path, max_pixels: int | None = None) -> None:
        self.path = Path(path)
        # Pillow's image limit unless given: a 283 KB file may declare one 16000x16000 frame (4 GB decoded).
        self.max_pixels = max_image_pixels() if max_pixels is None else max_pixels
        self.av = import_av()
        self.container: Any = None
        self.streams: list[Any] = []  # input streams offered for copying
        self.decoded = 0
        try:
            self.container = self.av.open(ffmpeg_file_url(self.path), mode="r", metadata_errors="ignore")
        except self.av.FFmpegError as exc:
            raise UserError(f"not a readable video: corrupt, truncated or no video at all ({_reason(exc)})") from None
        except OSError as exc:
            raise UserError(f"cannot be read: {exc.strerror or exc}") from None
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        if not self.container.streams.video:
            raise UserError("holds no video stream")
        self.video = self.container.streams.video[0]
        ctx = self.video.codec_context
        self._check_size(int(ctx.width or 0), int(ctx.height or 0), "its header declares")
        self.video.thread_type = "AUTO"
        self.streams = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        self._pending = self._demux()
        first = next(self._pending, None)
        head: list[DecodedFrame | CopiedPacket] = []
        while first is not None and not isinstance(first, DecodedFrame):
            head.append(first)
            first = next(self._pending, None)
        if first is None:
            raise UserError("holds no decodable video frame (corrupt or truncated)")
        self._head = [*head, first]
        ctx = self.video.codec_context
        duration = (float(self.container.duration) / 1e6) if self.container.duration else None
        self.info = VideoInfo(
            width=first.planes.shape[2], height=first.planes.shape[1],
            rate=Fraction(self.video.average_rate) if self.video.average_rate else None,
            time_base=Fraction(self.video.time_base), frames=self.video.frames or None, duration=duration,
            codec=ctx.name, rotation=int(self._rotation or 0), colorspace=int(ctx.colorspace or 2),
            color_range=int(ctx.color_range or 0),
            copied=tuple(f"{s.type} {s.codec_context.name}" for s in self.streams))

    def _demux(self) -> Iterator[DecodedFrame | CopiedPacket]:
        copied = {s.index for s in self.streams}
        matrix, color_range = None, None
        self._rotation: int | None = None
        try:
            for packet in self.container.demux([self.video, *self.streams]):
                if packet.stream.index != self.video.index:
                    if packet.dts is not None and packet.stream.index in copied:
                        yield CopiedPacket(packet.stream.index, packet)
                    continue
                for frame in packet.decode():
                    if frame.is_corrupt:
                        raise UserError(f"video frame {self.decoded} is corrupt")
                    self._check_size(frame.width, frame.height, f"frame {self.decoded} is")
                    if self.decoded and (frame.width, frame.height) != self._first_size:
                        raise UserError(f"the frame size changes mid-stream ({self._first_size[0]}x"
                                        f"{self._first_size[1]} at frame 0, {frame.width}x{frame.height} at frame "
                                        f"{self.decoded}): one output size per video, so nothing is written")
                    self._first_size = (frame.width, frame.height) if not self.decoded else self._first_size
                    if matrix is None:
                        ctx = self.video.codec_context
                        matrix = colour_matrix(int(ctx.colorspace or 2))
                        color_range = int(ctx.color_range or 0)
                        self._rotation = frame.rotation
                    yield DecodedFrame(self.decoded, frame.pts, planes_of(frame, matrix, color_range))
                    self.decoded += 1
        except self.av.FFmpegError as exc:
            raise UserError(f"corrupt video: decoding stopped after {self.decoded} frame(s) ({_reason(exc)})"
                            ) from None

    def _check_size(self, width: int, height: int, what: str) -> None:
        if width * height > self.max_pixels:
            raise UserError(f"{what} {width}x{height} = {width * height:,} pixels, above the limit "
                            f"{self.max_pixels:,} (--max-pixels); refused before decoding")

    def items(self) -> Iterator[DecodedFrame | CopiedPacket]:
        """Every video frame and copied packet in file order; the end checked against the declared length."""
        yield from itertools.chain(self._head, self._pending)
        self._check_complete()

    def _check_complete(self) -> None:
        declared = self.info.frames
        if declared and self.decoded < declared:
            raise UserError(f"truncated video: {self.decoded} of the {declared} frames it declares could be decoded")
        if not declared and self.info.duration and self.info.rate:
            expected = self.info.duration * float(self.info.rate)
            if self.decoded < expected - max(2.0, 0.02 * expected):
                raise UserError(f"truncated video: {self.decoded} frames decoded, its duration "
                                f"{self.info.duration:.2f} s at {float(self.info.rate):g} fps needs about "
                                f"{expected:.0f}")

    def describe(self) -> str:
        info = self.info
        rate = f"{float(info.rate):g} fps" if info.rate else "variable rate"
        return f"{display(self.path.name)}: {info.width}x{info.height} {info.codec} {rate}"

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words for an av error, without the errno and file name PyAV adds."""
    return getattr(exc, "strerror", None) or first_line(exc)
