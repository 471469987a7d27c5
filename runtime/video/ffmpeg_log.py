"""FFmpeg's own log lines kept off the terminal, and its words put into the product's one-line errors.

By default FFmpeg prints its errors to stderr itself (``[libx264 @ 0x...] width not divisible by 2``),
beside the product's own line and through ``-q``. Inside :func:`ffmpeg_messages` every FFmpeg log
line of every thread is captured instead (PyAV's ``Capture``); the last error of a failed call is
on the exception (``exc.log``), and :func:`ffmpeg_reason` says it in one line. x265 prints its
banner and errors with its own ``fprintf``: the encoder is opened with ``log-level=none``
(runtime/video/encode.py).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..errors import first_line


@contextlib.contextmanager
def ffmpeg_messages(av: Any) -> Iterator[list[Any]]:
    """FFmpeg's log lines (level, source, message) of the block, from any thread, captured instead of printed."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=False) as logs:
            yield logs
    finally:
        av.logging.set_level(previous)


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words for an av error in one line: the library's last error message where the call logged
    one ("libx264: width not divisible by 2 (33x31)"), else the error's text, without the errno and call PyAV add."""
    log = getattr(exc, "log", None)
    if isinstance(log, tuple) and len(log) == 3 and str(log[2]).strip():
        return f"{log[1]}: {str(log[2]).strip()}" if log[1] else str(log[2]).strip()
    return getattr(exc, "strerror", None) or first_line(exc)
