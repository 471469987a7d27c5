"""Reading a video with PyAV: its streams, then its frames as float32 RGB planes, in demux order.

:class:`VideoReader` opens the file and decodes the first frame at once, so a file that is not a
video, or whose video cannot be decoded, is refused before anything is written. Frames come out
as :class:`DecodedFrame` (float32 3xHxW RGB in [0, 1]: FFmpeg's swscale converts the stream's own
YUV with its colour matrix and range to planar integer RGB, 8 or 16 bits as the stream has, which
numpy scales; swscale's float output is both slower and less exact on fine chroma, measured in
runtime/README.md "Video"), interleaved with the packets of the
streams that are carried over (audio, subtitles, cover art) as :class:`CopiedPacket`. The video
stream is the real one: cover art (an attached picture) is never taken for it, whatever its place.
Frames are counted by decoding them: a video whose last decoded frame ends well before the end its
container declares for it (a truncated file), or whose packets fail to decode, raises
:class:`~runtime.errors.UserError` with one line; variable frame rates, gaps and edit lists are not
truncation.
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

from ..errors import BackendUnavailable, UserError, display
from ..host import install_command
from ..images import max_image_pixels
from .ffmpeg_log import ffmpeg_reason

# Names a folder or glob picks as videos; a file named explicitly is probed whatever its name.
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
        raise BackendUnavailable(f"video needs the optional extra: {install_command('video')}") from None
    return av


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
    pix_fmt: str = "yuv420p"
    color_primaries: int = 2  # AVColorPrimaries (2: unspecified)
    color_trc: int = 2  # AVColorTransferCharacteristic (2: unspecified)

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
            raise UserError(f"not a readable video: corrupt, truncated or no video at all ({ffmpeg_reason(exc)})"
                            ) from None
        except OSError as exc:
            raise UserError(f"cannot be read: {exc.strerror or exc}") from None
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        self.video = main_video_stream(self.av, self.container)
        ctx = self.video.codec_context
        self._check_size(int(ctx.width or 0), int(ctx.height or 0), "its header declares")
        self.video.thread_type = "AUTO"
        self.streams = [s for s in self.container.streams if s.type in ("audio", "subtitle")
                        or (s.type == "video" and s.index != self.video.index and is_cover_art(self.av, s))]
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
            copied=tuple(f"{s.type} {s.codec_context.name}" for s in self.streams),
            pix_fmt=self._pix_fmt or "yuv420p", color_primaries=int(ctx.color_primaries or 2),
            color_trc=int(ctx.color_trc or 2))

    def _demux(self) -> Iterator[DecodedFrame | CopiedPacket]:
        copied = {s.index for s in self.streams}
        covers = {s.index for s in self.streams if s.type == "video"}
        matrix, color_range = None, None
        self._rotation: int | None = None
        self._pix_fmt: str | None = None
        self.end = 0.0  # seconds: where the last decoded frame ends
        try:
            for packet in self.container.demux([self.video, *self.streams]):
                if packet.stream.index != self.video.index:
                    if packet.stream.index in covers and packet.size and packet.dts is None:
                        packet.pts = packet.dts = 0  # cover art's one picture carries no timestamp
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
                        self._pix_fmt = frame.format.name
                    self._note_end(frame)
                    yield DecodedFrame(self.decoded, frame.pts, planes_of(frame, matrix, color_range))
                    self.decoded += 1
        except self.av.FFmpegError as exc:
            raise UserError(f"corrupt video: decoding stopped after {self.decoded} frame(s) ({ffmpeg_reason(exc)})"
                            ) from None

    def _note_end(self, frame: Any) -> None:
        if frame.pts is None or frame.time_base is None:
            return
        last = float(frame.pts * frame.time_base)
        step = float(frame.duration * frame.time_base) if frame.duration else 0.0
        if not step and self.video.average_rate:
            step = 1.0 / float(self.video.average_rate)
        self.end = max(self.end, last + step)

    def _check_size(self, width: int, height: int, what: str) -> None:
        if width * height > self.max_pixels:
            raise UserError(f"{what} {width}x{height} = {width * height:,} pixels, above the limit "
                            f"{self.max_pixels:,} (--max-pixels); refused before decoding")

    def items(self) -> Iterator[DecodedFrame | CopiedPacket]:
        """Every video frame and copied packet in file order; the end checked against the declared length."""
        yield from itertools.chain(self._head, self._pending)
        self._check_complete()

    def _check_complete(self) -> None:
        """The frames decoded reach the end the container declares for the video stream (its own duration, else
        the file's), within a few frames: a file cut short stops well before it. Timestamps, not a frame count, so
        a variable rate, a gap, or an mp4 edit list (declared samples that are not shown) is no truncation."""
        declared = declared_end(self.video, self.container)
        if declared is None or not self.decoded:
            return
        interval = 1.0 / float(self.info.rate) if self.info.rate else 0.04
        slack = max(3 * interval, 0.1, 0.02 * declared)
        if self.end < declared - slack:
            raise UserError(f"truncated video: its {self.decoded} decodable frame(s) end at {self.end:.2f} s, "
                            f"and it declares {declared:.2f} s")

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


def is_cover_art(av: Any, stream: Any) -> bool:
    """An attached picture (cover art, a thumbnail): one still image stored as a video stream."""
    return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


def main_video_stream(av: Any, container: Any) -> Any:
    """The video stream to upscale: FFmpeg's best video stream that is not cover art (a still picture that
    comes first is not the video); UserError when there is none."""
    moving = [s for s in container.streams.video if not is_cover_art(av, s)]
    if not moving:
        raise UserError("holds no video stream" + (" (only cover art)" if container.streams.video else ""))
    try:
        best = container.streams.best("video")
    except (av.FFmpegError, ValueError):
        best = None
    return best if best is not None and best in moving else moving[0]


def declared_end(stream: Any, container: Any) -> float | None:
    """Seconds from the file's start where the container says ``stream`` ends: its own duration (mp4's track
    header, Matroska's DURATION tag), else the file's; None when it declares neither."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
    if stream.duration and stream.time_base:
        return start + float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION") or (stream.metadata or {}).get("duration")
    if tag:
        try:
            hours, minutes, seconds = str(tag).split(":")
            return start + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            pass
    if container.duration:
        return (float(container.start_time or 0) + float(container.duration)) / 1e6
    return None
