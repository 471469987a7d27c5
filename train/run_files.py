"""A training run's folder: the files ``fit`` reads and writes there, each a regular file or absent.

A FIFO named ``metrics.jsonl`` would block the run forever (opening it waits for a reader), a
folder would end it in a traceback, a symbolic link would send the writes elsewhere; so before
anything is read every run file is checked (:func:`check_run_files`), and the metrics log, the
one file appended to, is opened each time without blocking or following links.
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runtime.files import MAX_JSON_BYTES, atomic_write_bytes, json_bytes
from runtime.safefiles import check_regular, open_regular, read_regular, writing_output

from .checkpoint import checkpoint_paths, file_errors
from .state import state_files

SETTINGS = "config.json"
METRICS = "metrics.jsonl"


def run_files(out: Path) -> list[Path]:
    """Every file ``fit`` keeps in run folder ``out``."""
    return [out / SETTINGS, out / METRICS, *checkpoint_paths(out / "best"), *state_files(out / "last")]


def check_run_files(out: Path) -> None:
    """Refuse, before anything is read, a run file that is a FIFO, folder, device or symbolic link."""
    for path in run_files(out):
        check_regular(path, f"run file {path}", follow=False)


def write_settings(out: Path, settings: dict[str, Any]) -> None:
    """``config.json`` written atomically (a full disk leaves the previous one, or none, never an
    empty one); ``out`` is removed again if it was created for it and the write failed."""
    path = out / SETTINGS
    with writing_output(path, "run settings"):
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json_bytes(settings))


def read_settings(path: Path) -> Any:
    """The settings a run was started with (parsed JSON), or None when it has none."""
    label = f"run settings {path}"
    if not check_regular(path, label, follow=False):
        return None
    data = read_regular(path, label, MAX_JSON_BYTES, "a run's settings")
    with file_errors(path, "run settings"):
        return json.loads(data.decode("utf-8"))


def append_record(out: Path, record: dict[str, Any]) -> None:
    """Append one line to ``metrics.jsonl``; a write that fails (no space left) is undone, so the
    log never ends in half a line."""
    path = out / METRICS
    line = (json.dumps(record) + "\n").encode()
    with writing_output(path, "metrics log"):
        fd = open_regular(path, f"run file {path}", os.O_WRONLY | os.O_APPEND | os.O_CREAT, follow=False)
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
            except OSError:
                os.ftruncate(fd, size)
                raise
        finally:
            os.close(fd)


@contextlib.contextmanager
def uncommitted_undone(out: Path, resume: bool, active: bool = True) -> Iterator[Callable[[], None]]:
    """Take back what a run wrote past its last saved state when it fails (no space left, Ctrl-C,
    SIGTERM): the lines appended to ``metrics.jsonl`` since that state, so a resumed run does not
    log those steps twice; and for a new run that saved no state at all, the run files it created
    (``out`` too, if it made it). Call the yielded function after each saved state. A SIGKILL
    leaves them (nothing runs then); ``active=False`` (data-parallel ranks but 0) does nothing."""
    existed = out.exists()
    before = {path: path.stat().st_size for path in run_files(out) if path.exists()}
    metrics = out / METRICS
    committed = [before.get(metrics, 0)] if resume else []

    def saved() -> None:
        committed[:] = [metrics.stat().st_size if metrics.exists() else 0]

    try:
        yield saved
    except BaseException:
        if active:
            with contextlib.suppress(OSError):
                if committed:
                    if metrics.exists() and metrics.stat().st_size > committed[0]:
                        os.truncate(metrics, committed[0])
                else:
                    _undo_new_run(out, existed, before)
        raise


def _undo_new_run(out: Path, existed: bool, before: dict[Path, int]) -> None:
    for path in (out / SETTINGS, out / METRICS, *checkpoint_paths(out / "best")):
        with contextlib.suppress(OSError):
            if path not in before:
                path.unlink(missing_ok=True)
            elif path.name == METRICS:
                os.truncate(path, before[path])
    if not existed:
        with contextlib.suppress(OSError):
            out.rmdir()
