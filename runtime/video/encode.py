"""Writing the upscaled video: an encoded stream plus the input's audio/subtitles copied, or frames.

:class:`VideoWriter` encodes float32 RGB planes (the engine's output layout) with FFmpeg: the planes
are rounded into one reused planar integer RGB frame (8 bits, 16 for a deeper ``pix_fmt``; in row
blocks that stay in cache) and swscale converts it to the encoder's pixel format with the input's
colour matrix and range, which it also tags. Frames keep their input
timestamps in the input's time base, so the frame rate (constant or variable) is kept; the
display rotation is written again. Audio and subtitle packets are muxed unchanged where the
output container accepts their codec, else left out with a note (``skipped``).

:class:`FrameSequenceWriter` writes frame_000001.<format>... into a folder instead. Either way the
result appears only when complete: the video is written to a temp file published by
:func:`runtime.files.atomic_path`, the frames to a temp folder renamed by :func:`atomic_folder`.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..bench.machine import usable_cpus
from ..errors import UserError, first_line
from ..images import Picture, save_picture
from .decode import RGB_OF_PLANE, VideoInfo, ffmpeg_file_url, import_av, planar_format

# --video-format -> (FFmpeg muxer, file suffix)
CONTAINERS = {"mp4": ("mp4", "mp4"), "mov": ("mov", "mov"), "mkv": ("matroska", "mkv"), "webm": ("webm", "webm")}
DEFAULT_CODEC = {"mp4": "libx264", "mov": "libx264", "mkv": "libx264", "webm": "libvpx-vp9"}
DEFAULT_PRESET = "ultrafast"


@dataclass(frozen=True)
class EncodeConfig:
    """``codec`` None: H.264 (libx264), VP9 in WebM. ``crf``: constant quality (x264/x265: 0 lossless,
    18 visually lossless, 23 FFmpeg's default). ``preset``: x264/x265 speed (ultrafast ... veryslow);
    the default ``ultrafast`` takes about 10 ms less CPU per 1080p frame than ``veryfast`` at the same
    Y-PSNR and about twice the bitrate (runtime/README.md, "Video"): on a small CPU the engine needs
    those cycles. ``threads``: encoder threads; None: one where the process may use at most 2 CPUs
    (x264's own choice costs a third more CPU there), else FFmpeg's choice; 0: FFmpeg's choice."""

    container: str = "mp4"
    codec: str | None = None
    crf: int | None = 18
    preset: str | None = DEFAULT_PRESET
    pix_fmt: str = "yuv420p"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS:
            raise UserError(f"video format must be one of {', '.join(CONTAINERS)}; got {self.container!r}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise UserError(f"--crf must be 0..63; got {self.crf}")

    @property
    def suffix(self) -> str:
        return CONTAINERS[self.container][1]

    @property
    def codec_name(self) -> str:
        return self.codec or DEFAULT_CODEC[self.container]

    @property
    def thread_count(self) -> int:
        """Encoder threads to ask for (0: FFmpeg's choice)."""
        if self.threads is not None:
            return self.threads
        return 1 if usable_cpus() <= 2 else 0


ROWS = 64  # rows rounded at a time: a block of 1080p floats stays in the L2 cache


def fill_planar(frame: Any, planes: np.ndarray, peak: float = 255.0) -> None:
    """Round float32 3xHxW RGB in [0, 1] (clipped; half up) into a gbrp/gbrp16le av.VideoFrame of that size."""
    dtype = np.dtype(np.uint8 if peak == 255.0 else np.uint16)
    block = np.empty((ROWS, planes.shape[2]), dtype=np.float32)
    for plane, channel in zip(frame.planes, RGB_OF_PLANE, strict=True):
        rows = np.frombuffer(memoryview(plane), dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        for top in range(0, plane.height, ROWS):
            part = block[: min(ROWS, plane.height - top)]
            np.multiply(planes[channel, top : top + ROWS], np.float32(peak), out=part)
            part += np.float32(0.5)
            np.clip(part, 0.0, peak, out=part)
            np.copyto(rows[top : top + ROWS, : plane.width], part, casting="unsafe")


class VideoWriter:
    """Encode into ``path`` (a temp file: the muxer is named, not guessed from the suffix)."""

    def __init__(self, path: Path, config: EncodeConfig, info: VideoInfo, scale: int, copy_from: list[Any]) -> None:
        av = import_av()
        self.config, self.info = config, info
        self.width, self.height = info.width * scale, info.height * scale
        self.container = av.open(ffmpeg_file_url(path), mode="w", format=CONTAINERS[config.container][0])
        try:
            self.stream = self._video_stream(av)
            self.copies: dict[int, Any] = {}
            self.skipped: list[str] = []
            supported = self.container.supported_codecs
            for source in copy_from:
                name = source.codec_context.name
                if name not in supported:
                    self.skipped.append(f"{source.type} stream {source.index} "
                                        f"({name}: {config.container} cannot hold it)")
                    continue
                self.copies[source.index] = self.container.add_stream_from_template(source)
        except BaseException:
            self.container.close()
            raise
        name, _, self._peak = planar_format(max(c.bits for c in av.VideoFormat(config.pix_fmt).components))
        self._planar = av.VideoFrame(self.width, self.height, name)
        self.frames = 0

    def _video_stream(self, av: Any) -> Any:
        config, info = self.config, self.info
        try:
            stream = self.container.add_stream(config.codec_name, rate=info.rate or None)
        except (av.FFmpegError, ValueError) as exc:
            raise UserError(f"--codec {config.codec_name!r} is not an encoder this FFmpeg has ({first_line(exc)})"
                            ) from None
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = config.pix_fmt
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_range = info.colorspace, info.color_range
        if config.thread_count:
            ctx.thread_count = config.thread_count
        options = {}
        if config.crf is not None:
            options["crf"] = str(config.crf)
        if config.preset and config.codec_name in ("libx264", "libx265"):
            options["preset"] = config.preset
        if config.codec_name == "libvpx-vp9":
            options.update({"b": "0", "deadline": "realtime", "cpu-used": "8"})
        stream.options = options
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        return stream

    def write(self, planes: np.ndarray, pts: int | None) -> None:
        fill_planar(self._planar, planes, self._peak)
        frame = self._planar.reformat(format=self.config.pix_fmt, dst_colorspace=self.info.matrix,
                                      dst_color_range=self.info.color_range or None)
        frame.pts = pts if pts is not None else self.frames
        frame.time_base = self.info.time_base
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def copy(self, stream_index: int, packet: Any) -> None:
        target = self.copies.get(stream_index)
        if target is not None:
            packet.stream = target
            self.container.mux(packet)

    def finish(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


class FrameSequenceWriter:
    """frame_000001.<suffix> ... in ``folder``, 8-bit RGB, the planes rounded as images are."""

    def __init__(self, folder: Path, suffix: str, pil_format: str) -> None:
        self.folder, self.suffix, self.pil_format = folder, suffix, pil_format
        self.frames = 0
        self.copies: dict[int, Any] = {}  # an image sequence holds no audio
        self.skipped: list[str] = []

    def write(self, planes: np.ndarray, pts: int | None) -> None:
        rgb = (np.clip(planes.transpose(1, 2, 0), 0.0, 1.0) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
        self.frames += 1
        save_picture(Picture(rgb, None, False, "RGB", None), self.folder / f"frame_{self.frames:06d}.{self.suffix}",
                     self.pil_format)

    def copy(self, stream_index: int, packet: Any) -> None:
        pass

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


FRAME_NAME = re.compile(r"frame_\d{6,}\.[A-Za-z0-9]+")  # what FrameSequenceWriter writes, and all it may replace


def foreign_entries(folder: Path) -> list[str]:
    """What in an existing frames folder ``folder`` this tool did not write: anything but regular files named
    like its frames (sub-folders, links, other files). A folder with any of it is never replaced."""
    if os.path.islink(folder) or not folder.is_dir():
        return [folder.name]
    return sorted(entry.name for entry in os.scandir(folder)
                  if not (FRAME_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)))


@contextlib.contextmanager
def atomic_folder(target: Path, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temp folder beside ``target``; on success it is renamed onto ``target`` (an existing
    ``target`` only with ``replace``, the old one removed after the rename), on error removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.pid{os.getpid()}.{secrets.token_hex(4)}.tmpdir"
    temp.mkdir()
    try:
        yield temp
        old = None
        if os.path.lexists(target):
            if not replace:
                raise FileExistsError(target)
            old = target.parent / f".{target.name}.pid{os.getpid()}.{secrets.token_hex(4)}.old"
            os.rename(target, old)
        os.rename(temp, target)
        if old is not None:
            # Only our frames go: a file that appeared since the caller's check keeps the old folder (hidden).
            for entry in os.scandir(old):
                if FRAME_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
            with contextlib.suppress(OSError):
                old.rmdir()
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
