"""What a video input and output can be, known without loading FFmpeg: the input suffixes, the output
containers, encoders' defaults, presets and --crf ranges. Light on purpose: runtime.infer reads it for every
run (an image run loads no video code), runtime/video/encode.py and decode.py build on it.
"""
from __future__ import annotations

from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
                  ".flv", ".3gp", ".ogv", ".wmv")

CONTAINERS = {"mp4": ("mp4", "mp4"), "mov": ("mov", "mov"), "mkv": ("matroska", "mkv"), "webm": ("webm", "webm")}
DEFAULT_CODEC = {"mp4": "libx264", "mov": "libx264", "mkv": "libx264", "webm": "libvpx-vp9"}
DEFAULT_PRESET = "ultrafast"
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
PRESET_CODECS = ("libx264", "libx265")
# --crf range of each encoder (FFmpeg would pass an out-of-range value on, and x264 clamps it silently).
CRF_RANGE = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63), "libvpx": (4, 63), "libaom-av1": (0, 63),
             "libsvtav1": (0, 63)}


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
