"""The video options of ``python -m runtime.infer`` and what it does with a video input.

A video input (by its suffix, :data:`~runtime.video.decode.VIDEO_SUFFIXES`) gives one output,
``OUT/<name>_x<scale>.<video-format>``, or with ``--video-format frames`` a folder
``OUT/<name>_x<scale>/`` of ``frame_000001.<--format>`` images; the overwrite and
nothing-partial rules are the images' (see runtime/infer.py).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..errors import display, output_exists
from ..progress import status
from ..upscaler import Upscaler, tile_for
from .formats import CONTAINERS, DEFAULT_PRESET, PRESETS
from .smoothing import SmoothingConfig

if TYPE_CHECKING:  # the encoder and the pipeline load when a video is upscaled, not for an image run
    from .pipeline import VideoOptions, VideoResult

F = TypeVar("F", bound=Callable[..., Any])
FRAMES = "frames"


@dataclass(frozen=True)
class VideoSettings:
    container: str = "mp4"  # a key of CONTAINERS, or "frames"
    codec: str | None = None
    crf: int | None = 18
    preset: str | None = DEFAULT_PRESET
    smooth: float = 0.0
    scene_cut: float = SmoothingConfig().scene_cut
    tile: int | None = None  # None: VIDEO_TILE
    verbose: bool = False  # -v: say what became of each track and of the pixels

    def check(self) -> None:
        """Refuse a bad --preset, --crf (the encoder's own range) or --codec once, before the engine loads."""
        if self.container == FRAMES:
            return
        config = self.options("png", "PNG", False).encode
        if self.codec is not None:
            config.check_encoder()

    def options(self, image_suffix: str, pil_format: str, progress: bool, max_pixels: int | None = None
                ) -> VideoOptions:
        from .encode import EncodeConfig
        from .pipeline import VideoOptions

        frames = (image_suffix, pil_format) if self.container == FRAMES else None
        encode = EncodeConfig(container="mp4" if frames else self.container, codec=self.codec, crf=self.crf,
                              preset=self.preset)
        return VideoOptions(encode=encode, smoothing=SmoothingConfig(self.smooth, self.scene_cut), frames=frames,
                            progress=progress, max_pixels=max_pixels)

    @property
    def suffix(self) -> str:
        """Output name suffix: the container's, or "" for a frames folder."""
        return "" if self.container == FRAMES else CONTAINERS[self.container][1]

    def write(self, upscaler: Upscaler, source: Path, target: Path, overwrite: bool, image_suffix: str,
              pil_format: str, progress: bool, max_pixels: int | None = None) -> VideoResult:
        from .pipeline import upscale_video

        saved = upscaler.tile
        upscaler.tile = tile_for(self.tile, video=True)
        try:
            result = upscale_video(upscaler, source, target,
                                   self.options(image_suffix, pil_format, progress, max_pixels),
                                   overwrite=overwrite)
        except FileExistsError:
            raise output_exists(target, meanwhile=True) from None
        finally:
            upscaler.tile = saved
        if self.verbose:
            for note in result.notes:
                status(f"{display(source)}: {note}")
        return result


VIDEO_OPTIONS = (
    click.option("--video-format", type=click.Choice([*CONTAINERS, FRAMES]), default="mp4", show_default=True,
                 help="Container of a video input's output, or 'frames': a folder of images in --format."),
    click.option("--codec", default=None,
                 help="Video encoder (FFmpeg name: libx264, libx265, libvpx-vp9, ...); "
                      "default H.264 (VP9 in webm)."),
    click.option("--crf", type=int, default=18, show_default=True,
                 help="Constant-quality factor of the video encoder (lower = better, 0 = lossless for x264): "
                      "0..51 for x264/x265, 0..63 for VP9/AV1."),
    click.option("--preset", default=DEFAULT_PRESET, show_default=True,
                 help=f"x264/x265 speed preset ({', '.join(PRESETS)}): ultrafast leaves the engine the most CPU "
                      "(same quality at a given --crf, about twice the bitrate of veryfast)."),
    click.option("--smooth", type=float, default=0.0, show_default=True,
                 help="Temporal smoothing of the attention statistics in [0, 1): the weight of the past frames "
                      "(exponential moving average, reset at scene cuts); 0 = per-frame, exactly."),
    click.option("--scene-cut", type=float, default=SmoothingConfig().scene_cut, show_default=True,
                 help="Change of a frame's grey-level histogram (0..1, half the L1 distance) that resets "
                      "the smoothing."),
)


def video_options(func: F) -> F:
    """The options above; ``func`` receives ``video: VideoSettings`` (its ``tile`` from --tile) and calls its
    ``check()`` once it knows a video is among the inputs (an image run needs no encoder)."""

    @functools.wraps(func)
    def wrapper(*args: Any, video_format: str, codec: str | None, crf: int, preset: str, smooth: float,
                scene_cut: float, **kwargs: Any) -> Any:
        settings = VideoSettings(video_format, codec, crf, preset or None, smooth, scene_cut, kwargs.get("tile"),
                                 verbose=bool(kwargs.get("verbose")))
        SmoothingConfig(smooth, scene_cut)  # refuse bad values before the engine loads
        return func(*args, video=settings, **kwargs)

    for option in reversed(VIDEO_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]
