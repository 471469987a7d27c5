"""Libraries that talk past Python: what C++ code (TensorFlow Lite, absl, MLIR) and loggers bound to
the original streams write straight to file descriptors 1 and 2.

``contextlib.redirect_stdout`` cannot catch those lines, so :func:`library_output_hidden` points
both descriptors at a scratch file while a block runs. The project's commands print only their own
lines; with ``-v`` (root logging at INFO or lower, runtime/cli_options.py) the captured text is
replayed on stderr after the block, and so it is when the block fails, for the bug report.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

_LOCK = threading.RLock()  # one capture at a time (descriptors are process-wide); a nested one is fine


def _verbose() -> bool:
    return logging.getLogger().getEffectiveLevel() <= logging.INFO


@contextlib.contextmanager
def library_output_hidden() -> Iterator[None]:
    """Hide everything written to stdout and stderr (Python and native) and Python warnings inside
    the block; replay it on stderr under ``-v`` or when the block raises."""
    with _LOCK, tempfile.TemporaryFile() as scratch:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = [os.dup(fd) for fd in (1, 2)]
        python_text = io.StringIO()  # Python-level writes, wherever sys.stdout/stderr pointed
        failed = False
        try:
            for fd in (1, 2):
                os.dup2(scratch.fileno(), fd)
            with warnings.catch_warnings(), contextlib.redirect_stdout(python_text), \
                    contextlib.redirect_stderr(python_text):
                warnings.simplefilter("ignore")
                yield
        except BaseException:
            failed = True
            raise
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(ValueError, OSError):
                    stream.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            if failed or _verbose():
                scratch.seek(0)
                text = python_text.getvalue() + scratch.read().decode(errors="replace")
                if text:
                    sys.stderr.write(text if text.endswith("\n") else text + "\n")
                    sys.stderr.flush()
