"""Errors a user can cause, and the one place CLIs turn them into a line on stderr."""
from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class UserError(ValueError):
    """A problem with what the user asked for (bad name, bad file, bad option).

    The message names what was received and what is allowed; CLIs print it on one line.
    """


class BackendUnavailable(UserError):
    """What an engine needs is not on this machine: the backend library (tensorrt, openvino), an
    NVIDIA GPU and its CUDA libraries, or the execution provider or device asked for.

    Not a verdict on the engine: a check may skip it, where any other error is a failure.
    """


class Terminated(BaseException):
    """SIGTERM or SIGHUP (the terminal closed) inside :func:`cli_errors`, raised like KeyboardInterrupt so that
    clean-ups (``finally``, ``except BaseException``: temp files) run before the process exits."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum


# The signals a command turns into Terminated, with the line it ends on.
TERMINATING = {signal.SIGTERM: "terminated", signal.SIGHUP: "hangup"}


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped as ``repr`` does (``\\n``, ``\\x1b``,
    ``\\u202e``); undecodable file-name bytes (surrogate escapes) show as ``\\xNN``.

    Printable text, backslashes included, is left alone, so escaping twice changes nothing and
    a message can be escaped whole after the names in it were.
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif "\udc80" <= char <= "\udcff":
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            out.append(repr(char)[1:-1])
    return "".join(out)


def display(path: str | os.PathLike[str]) -> str:
    """A file name as CLIs print it: one line, no terminal control sequences."""
    return printable(os.fsdecode(path))


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Keep library chatter out of a CLI's one-line messages: Python warnings are ignored, and
    what libraries ``print`` (ONNX Runtime's multi-line "EP Error ... Falling back" banner) is
    dropped. For CLIs whose stdout carries nothing else."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _sigterm_handler(owner: int) -> Callable[[int, object], None]:
    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked child (e.g. a data-loader worker) dies as it would have
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        for terminating in TERMINATING:  # a second signal must not cut the clean-up short
            signal.signal(terminating, signal.SIG_IGN)
        raise Terminated(signum)

    return handler


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # signal handlers live there only
        yield
        return
    handler = _sigterm_handler(os.getpid())
    previous = {signum: signal.signal(signum, handler) for signum in TERMINATING}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


def cli_errors(func: F) -> F:
    """Decorate a click command so user errors end as one stderr line and exit code 2.

    Ctrl-C (SIGINT) exits 130, SIGTERM 143 and SIGHUP 129, each with one line, after the clean-ups ran.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _sigterm_as_exception():
                return func(*args, **kwargs)
        except (UserError, FileNotFoundError) as exc:
            print(f"error: {printable(str(exc))}", file=sys.stderr)
            raise SystemExit(2) from None
        except OSError as exc:
            if exc.errno not in STORAGE_ERRNOS:  # a bug or a library fault: its traceback is the report
                raise
            # A writer not wrapped in writing(): still one line (the temp files are removed by atomic_path).
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"error: {printable(where)}cannot write: {exc.strerror}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        except Terminated as stop:
            print(TERMINATING.get(stop.signum, "terminated"), file=sys.stderr)
            raise SystemExit(128 + stop.signum) from None

    return wrapper  # type: ignore[return-value]


# OpenVINO's C++ messages open with where they were raised ("Exception from src/inference/src/cpp/core.cpp:84:",
# "Check 'res.status == pugi::status_ok' failed at src/frontends/ir/src/input_model.cpp:219:"), the reason after.
_SOURCE_LOCATION = re.compile(r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:)\s*")


# What the storage, not the program, refuses: a full disk or quota, a read-only file system, a file-size limit.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


def output_exists(target: str | os.PathLike[str], meanwhile: bool = False) -> UserError:
    """The refusal of an output that exists (``meanwhile``: another process published it while this one
    wrote), for every writer of named outputs alike."""
    if meanwhile:
        return UserError(f"{display(target)} exists: another process wrote it meanwhile, and it is kept; "
                         "pass --overwrite to replace it")
    return UserError(f"{display(target)} exists; pass --overwrite to replace it")


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn an OSError inside the block (a full disk, a read-only folder, no permission) into the
    one line ``cannot write the WHAT PATH: REASON``, for every command that writes a named output."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, IsADirectoryError | PermissionError | NotADirectoryError) or exc.errno in STORAGE_ERRNOS:
            raise UserError(f"cannot write the {what} {path}: {exc.strerror or exc}") from None
        raise


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message that says something, for one-line errors (libraries'
    messages often run over many lines and open with a C++ source location); the exception's type name
    when its message says nothing."""
    for line in str(exc).splitlines():
        while (bare := _SOURCE_LOCATION.sub("", line.strip(), count=1)) != line.strip():
            line = bare
        if line.strip():
            return line.strip()
    return type(exc).__name__
