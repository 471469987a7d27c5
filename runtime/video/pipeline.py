"""Upscale a video file: decode, inference and encode overlap in three threads.

    decoder thread ──(queue of `queue` frames)──> inference (caller's thread) ──(queue)──> encoder thread

The queues are small and bounded, so memory holds a few frames whatever the length, and the wall
time approaches the slowest stage's (the engine's). Copied audio/subtitle packets travel through
the same queues in file order. The output is written to a temp file (or folder) and published
only when every frame is in (:func:`runtime.files.atomic_path`): a corrupt or truncated input, an
engine failure or Ctrl-C leaves nothing behind. Any stage's failure stops the others and is
raised as one :class:`~runtime.errors.UserError` line.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError, display
from ..files import atomic_path
from ..progress import progress_bar
from ..upscaler import Upscaler
from .decode import CopiedPacket, DecodedFrame, VideoReader, import_av
from .encode import EncodeConfig, FrameSequenceWriter, VideoWriter, atomic_folder
from .ffmpeg_log import ffmpeg_messages, ffmpeg_reason
from .flicker import StepMeter
from .smoothing import PooledSmoother, SmoothingConfig, statistics_vector

# (frame index, float32 3xsHxsW output planes) -> None: measurements watching the output.
FrameHook = Callable[[int, np.ndarray], None]
_END = object()


@dataclass(frozen=True)
class VideoOptions:
    """``frames``: (suffix, PIL format) to write an image sequence folder instead of a video."""

    encode: EncodeConfig = field(default_factory=EncodeConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    frames: tuple[str, str] | None = None
    queue: int = 2
    progress: bool = False
    max_pixels: int | None = None  # frames above it are refused before decoding (None: Pillow's image limit)

    def __post_init__(self) -> None:
        if self.queue < 1:
            raise UserError(f"queue must hold at least one frame; got {self.queue}")


@dataclass
class VideoResult:
    source: Path
    target: Path
    frames: int
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]
    rate: Fraction | None
    seconds: float  # wall time from the first decoded frame to the published file
    engine_seconds: float  # inference (upscale_planar) alone
    decode_seconds: float
    encode_seconds: float
    copied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what became of each track and the pixels, for -v
    scene_cuts: list[int] = field(default_factory=list)
    statistics_step: float | None = None  # mean relative step of the pooled statistics (smoothing on)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def engine_fps(self) -> float:
        return self.frames / self.engine_seconds if self.engine_seconds > 0 else 0.0


class _Stopped(Exception):
    """Another stage failed or the run was interrupted."""


@dataclass
class _Channel:
    stop: threading.Event
    size: int
    items: queue.Queue = field(init=False)

    def __post_init__(self) -> None:
        self.items = queue.Queue(maxsize=self.size)

    def put(self, item: object) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(queue.Full):
                self.items.put(item, timeout=0.05)
                return
        raise _Stopped

    def get(self) -> Any:
        while not self.stop.is_set():
            with contextlib.suppress(queue.Empty):
                return self.items.get(timeout=0.05)
        raise _Stopped


class _Stage(threading.Thread):
    def __init__(self, name: str, body: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.body, self.stop, self.error = body, stop, None
        self.seconds = 0.0

    def run(self) -> None:
        try:
            self.body()
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the caller's thread
            self.error = exc
            self.stop.set()


def upscale_video(upscaler: Upscaler, source: str | Path, target: str | Path, options: VideoOptions = VideoOptions(),
                  *, overwrite: bool = False, on_frame: FrameHook | None = None) -> VideoResult:
    """Upscale every frame of ``source`` into ``target`` (a video file, or a folder of frames with
    ``options.frames``); see the module docstring. Raises UserError (one line) and leaves nothing."""
    source, target = Path(source), Path(target)
    with ffmpeg_messages(import_av()), VideoReader(source, options.max_pixels) as reader:
        publish = (atomic_folder(target, replace=overwrite) if options.frames
                   else atomic_path(target, replace=overwrite))
        with publish as temp:
            return _run(upscaler, reader, temp, target, options, on_frame)


def _run(upscaler: Upscaler, reader: VideoReader, temp: Path, target: Path, options: VideoOptions,
         on_frame: FrameHook | None) -> VideoResult:
    info, scale = reader.info, upscaler.scale
    writer: VideoWriter | FrameSequenceWriter
    if options.frames:
        writer = FrameSequenceWriter(temp, *options.frames, info=info, others=reader.streams)
    else:
        writer = VideoWriter(temp, options.encode, info, scale, reader.streams)
    stop = threading.Event()
    decoded, upscaled = _Channel(stop, options.queue), _Channel(stop, options.queue)
    started = time.perf_counter()

    def decode() -> None:
        items = reader.items()
        while True:
            tick = time.perf_counter()
            item = next(items, _END)
            decoder.seconds += time.perf_counter() - tick
            decoded.put(item)
            if item is _END:
                return

    def encode() -> None:
        while (item := upscaled.get()) is not _END:
            tick = time.perf_counter()
            if isinstance(item, CopiedPacket):
                writer.copy(item.stream_index, item.packet)
            else:
                writer.write(*item)
            encoder.seconds += time.perf_counter() - tick
        tick = time.perf_counter()
        writer.finish()
        encoder.seconds += time.perf_counter() - tick

    decoder, encoder = _Stage("video-decode", decode, stop), _Stage("video-encode", encode, stop)
    smoother = PooledSmoother(options.smoothing) if options.smoothing.enabled else None
    motion = StepMeter()
    engine_seconds, frames = 0.0, 0
    bar = progress_bar(total=info.frames, quiet=not options.progress, unit="frame", desc=target.name, leave=False)
    decoder.start()
    encoder.start()
    done = False
    try:
        while (item := decoded.get()) is not _END:
            if isinstance(item, DecodedFrame):
                tick = time.perf_counter()
                planes = upscale_frame(upscaler, item.planes, smoother)
                engine_seconds += time.perf_counter() - tick
                if smoother is not None:
                    motion.add(statistics_vector(smoother.used))
                if on_frame is not None:
                    on_frame(item.index, planes)
                upscaled.put((planes, item.pts))
                frames += 1
                bar.update(1)
            else:
                upscaled.put(item)
        upscaled.put(_END)
        encoder.join()
        done = encoder.error is None
    except _Stopped:
        pass
    finally:
        bar.close()
        stop.set()  # every stage ends: at once on failure, and it has nothing left to do on success
        decoder.join()
        encoder.join()
        if not done:
            writer.close()
    for stage, what in ((decoder, "reading"), (encoder, "encoding")):
        if stage.error is not None:
            if isinstance(stage.error, UserError | KeyboardInterrupt):
                raise stage.error
            raise UserError(f"{what} failed: {ffmpeg_reason(stage.error)}") from None
    if frames == 0:
        raise UserError(f"{display(reader.path)}: no frame was decoded")
    return VideoResult(
        source=reader.path, target=target, frames=frames, input_size=(info.width, info.height),
        output_size=(info.width * scale, info.height * scale), rate=info.rate,
        seconds=time.perf_counter() - started, engine_seconds=engine_seconds, decode_seconds=decoder.seconds,
        encode_seconds=encoder.seconds,
        copied=[f"{s.type} {s.codec_context.name}" for s in reader.streams if s.index in writer.copies],
        notes=list(writer.notes), scene_cuts=list(smoother.cuts) if smoother else [],
        statistics_step=motion.mean)


def upscale_frame(upscaler: Upscaler, planes: np.ndarray, smoother: PooledSmoother | None) -> np.ndarray:
    """One LR frame through the engine: per frame, or with ``smoother``'s statistics."""
    if smoother is None:
        return upscaler.upscale_planar(planes)
    smoother.next_frame(planes)
    return upscaler.upscale_planar(planes, adjust_pooled=smoother.adjust)
