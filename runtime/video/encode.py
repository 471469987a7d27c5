"""Writing the upscaled video: an encoded stream plus the input's audio/subtitles copied, or frames.

:class:`VideoWriter` encodes float32 RGB planes (the engine's output layout) with FFmpeg: the planes
are rounded into one reused planar integer RGB frame (8 bits, 16 for a deeper pixel format; in row
blocks that stay in cache) and swscale converts it to the encoder's pixel format with the input's
colour matrix and range. The pixel format keeps the input's bit depth and chroma, and the input's
colour tags (primaries, transfer, matrix, range) are written, or the file is refused
(:mod:`.pixels`). Frames keep their input timestamps in the input's time base, so the frame rate
(constant or variable, gaps included) is kept; the display rotation is written again. Audio,
subtitles and cover art are copied, or re-encoded where the container cannot hold them, or the
file is refused (:mod:`.tracks`); ``notes`` says which, for -v.

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

from ..errors import UserError
from ..host import usable_cpus
from ..images import Picture, save_picture
from .decode import RGB_OF_PLANE, VideoInfo, ffmpeg_file_url, import_av, planar_format
from .ffmpeg_log import ffmpeg_reason
from .formats import CONTAINERS, CRF_RANGE, DEFAULT_CODEC, DEFAULT_PRESET, PRESET_CODECS, PRESETS
from .pixels import RGB_TAGS, UNSPECIFIED, frames_refusal, output_pixels, source_pixels
from .tracks import TrackPlan, Transcoder, add_output_track, plan_tracks, track_name

# --video-format -> (FFmpeg muxer, file suffix)

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
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.container not in CONTAINERS:
            raise UserError(f"video format must be one of {', '.join(CONTAINERS)}; got {self.container!r}")
        low, high = CRF_RANGE.get(self.codec_name, (0, 63))
        if self.crf is not None and not low <= self.crf <= high:
            raise UserError(f"--crf must be {low}..{high} for {self.codec_name}; got {self.crf}")
        if self.preset is not None and self.preset not in PRESETS:
            raise UserError(f"--preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")

    def check_encoder(self) -> None:
        """UserError unless this FFmpeg has the encoder (one line, before any file is read)."""
        av = import_av()
        try:
            kind = av.Codec(self.codec_name, "w").type
        except (av.FFmpegError, ValueError):
            kind = None
        if kind != "video":
            raise UserError(f"--codec {self.codec_name!r} is not a video encoder this FFmpeg has (e.g. "
                            f"{', '.join(sorted(set(DEFAULT_CODEC.values()) | {'libx265', 'ffv1'}))})")

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
        self.av, self.config, self.info = av, config, info
        self.width, self.height = info.width * scale, info.height * scale
        config.check_encoder()
        source = source_pixels(av, info.pix_fmt)
        pixels = output_pixels(av, source, config.codec_name, (self.width, self.height))
        self.pix_fmt = pixels.pix_fmt
        self.matrix, self.tags = info.matrix, (info.color_primaries, info.color_trc, info.colorspace, info.color_range)
        if source.rgb and not source_pixels(av, self.pix_fmt).rgb:  # RGB in, YUV out: tag the matrix it is made with
            self.matrix, self.tags = "ITU601", (UNSPECIFIED, UNSPECIFIED, *RGB_TAGS)
        self.container = av.open(ffmpeg_file_url(path), mode="w", format=CONTAINERS[config.container][0])
        try:
            plans = plan_tracks(av, copy_from, config.container, set(self.container.supported_codecs))
            self.notes: list[str] = [pixels.note] if pixels.note else []
            self.stream = self._video_stream(av)
            self.copies: dict[int, Any] = {}
            self.transcoders: dict[int, Transcoder] = {}
            for plan in plans:
                self._add_track(av, plan)
        except BaseException:
            self.container.close()
            raise
        name, _, self._peak = planar_format(max(c.bits for c in av.VideoFormat(self.pix_fmt).components))
        self._planar = av.VideoFrame(self.width, self.height, name)
        self.frames = 0

    def _add_track(self, av: Any, plan: TrackPlan) -> None:
        try:
            stream = add_output_track(self.container, plan)
        except (av.FFmpegError, ValueError) as exc:
            raise UserError(f"{track_name(av, plan.source)} cannot be carried into {self.config.container} "
                            f"({ffmpeg_reason(exc)}); nothing is written. Use --video-format mkv") from None
        self.copies[plan.source.index] = stream
        if plan.encoder is not None:
            self.transcoders[plan.source.index] = Transcoder(av, plan.source, stream)
        self.notes.append(plan.note)

    def _video_stream(self, av: Any) -> Any:
        config, info = self.config, self.info
        stream = self.container.add_stream(config.codec_name, rate=info.rate or None)
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = self.pix_fmt
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = self.tags
        if config.thread_count:
            ctx.thread_count = config.thread_count
        options = {}
        if config.crf is not None:
            options["crf"] = str(config.crf)
        if config.preset and config.codec_name in PRESET_CODECS:
            options["preset"] = config.preset
        if config.codec_name == "libx265":  # x265 prints its banner and errors itself, past -q
            options["x265-params"] = "log-level=none"
        if config.codec_name == "libvpx-vp9":
            options.update({"b": "0", "deadline": "realtime", "cpu-used": "8"})
        stream.options = options
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        return stream

    def write(self, planes: np.ndarray, pts: int | None) -> None:
        fill_planar(self._planar, planes, self._peak)
        primaries, transfer, colorspace, color_range = self.tags
        frame = self._planar.reformat(format=self.pix_fmt, dst_colorspace=self.matrix,
                                      dst_color_range=color_range or None)
        frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range = self.tags
        frame.pts = pts if pts is not None else self.frames
        frame.time_base = self.info.time_base
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def copy(self, stream_index: int, packet: Any) -> None:
        transcoder = self.transcoders.get(stream_index)
        if transcoder is not None:
            self.container.mux(transcoder.packets(packet))
            return
        target = self.copies.get(stream_index)
        if target is not None:
            packet.stream = target
            self.container.mux(packet)

    def finish(self) -> None:
        self.container.mux(self.stream.encode(None))
        for transcoder in self.transcoders.values():
            self.container.mux(transcoder.packets(None))
        self.container.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


class FrameSequenceWriter:
    """frame_000001.<suffix> ... in ``folder``, 8-bit RGB, the planes rounded as images are. A video these
    would lose bits, alpha or its HDR/wide-gamut colours in is refused (UserError); its other tracks are not
    written (the user asked for images), which ``notes`` says."""

    def __init__(self, folder: Path, suffix: str, pil_format: str, info: VideoInfo | None = None,
                 others: list[Any] | None = None) -> None:
        self.folder, self.suffix, self.pil_format = folder, suffix, pil_format
        self.frames = 0
        self.copies: dict[int, Any] = {}  # an image sequence holds no audio
        self.notes: list[str] = []
        if info is not None:
            av = import_av()
            loss = frames_refusal(source_pixels(av, info.pix_fmt), info.color_primaries, info.color_trc)
            if loss:
                raise UserError(f"--video-format frames writes 8-bit RGB images: {loss}; nothing is written. "
                                "Write a video instead (--video-format mkv)")
            self.notes = [f"{track_name(av, s)}: not written (an image sequence holds only the frames)"
                          for s in others or []]

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
