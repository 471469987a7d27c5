"""Progress bars and status lines, the same in every command.

A bar is drawn only when stderr is a terminal: piped into a log it would leave one carriage-return
redraw per update. Status lines go to stderr through ``tqdm.write``, so a bar being drawn is not
torn by them, and are escaped to one printable line.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

from .errors import printable


def progress_bar(iterable: Iterable[Any] | None = None, *, quiet: bool = False, **options: Any) -> tqdm:
    """A tqdm bar on stderr: none with ``quiet``, and none when stderr is not a terminal."""
    # disable=None is tqdm's "disable on a non-TTY file".
    return tqdm(iterable, file=sys.stderr, disable=True if quiet else None, **options)


def status(message: str) -> None:
    """One line on stderr (above any bar being drawn)."""
    tqdm.write(printable(message), file=sys.stderr)
