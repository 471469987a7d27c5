"""Video in, video out (optional ``video`` extra: PyAV, with FFmpeg inside its wheel; no torch).

``upscale_video(upscaler, "clip.mp4", "clip_x2.mp4")`` upscales every frame with a
:class:`runtime.Upscaler`, keeps the timestamps, audio and subtitles, and publishes the file only
when complete; :mod:`.pipeline` overlaps decoding, inference and encoding in threads. See
runtime/README.md ("Video").
"""
from __future__ import annotations

from .decode import VIDEO_SUFFIXES, VideoInfo, VideoReader, is_video_path
from .encode import EncodeConfig
from .flicker import FlickerReport, StepMeter, TemporalMad
from .pipeline import VideoOptions, VideoResult, upscale_video
from .smoothing import PooledSmoother, SmoothingConfig

__all__ = [
    "VIDEO_SUFFIXES", "EncodeConfig", "FlickerReport", "PooledSmoother", "SmoothingConfig", "StepMeter",
    "TemporalMad", "VideoInfo", "VideoOptions", "VideoReader", "VideoResult", "is_video_path", "upscale_video",
]
