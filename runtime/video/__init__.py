"""Video in, video out (optional ``video`` extra: PyAV, with FFmpeg inside its wheel; no torch).

``upscale_video(upscaler, "clip.mp4", "clip_x2.mp4")`` upscales every frame with a
:class:`runtime.Upscaler`, keeps the timestamps, audio and subtitles, and publishes the file only
when complete; :mod:`.pipeline` overlaps decoding, inference and encoding in threads. See
runtime/README.md ("Video"). The names below load their module on first use, so importing the
package (runtime.infer does, for its options) loads no decoder or encoder.
"""
from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "VIDEO_SUFFIXES": "formats", "is_video_path": "formats",
    "VideoInfo": "decode", "VideoReader": "decode",
    "EncodeConfig": "encode",
    "FlickerReport": "flicker", "StepMeter": "flicker", "TemporalMad": "flicker",
    "VideoOptions": "pipeline", "VideoResult": "pipeline", "upscale_video": "pipeline",
    "PooledSmoother": "smoothing", "SmoothingConfig": "smoothing",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'runtime.video' has no attribute {name!r}")
    return getattr(importlib.import_module(f"runtime.video.{_HOMES[name]}"), name)
