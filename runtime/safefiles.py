"""Files a user (or an attacker) controls, read and written so that nothing hangs, nothing is
read unbounded, and a failed write (a full disk) is one line that leaves nothing behind.

- :func:`open_regular` opens without blocking (``O_NONBLOCK``: a FIFO opens at once instead of
  waiting for a writer) and decides on what it opened (``fstat``), so a name swapped between a
  check and the open cannot slip a FIFO, folder or device through; ``follow=False`` refuses a
  symbolic link too (``O_NOFOLLOW``).
- :func:`read_regular` reads a whole regular file through that descriptor, refused before a
  byte is read when it is larger than its limit.
- :func:`missing_folders` lists the folders a write would create; :func:`remove_empty` removes them again when
  it fails.
- :func:`writing_output` is :func:`runtime.errors.writing` ("cannot write the checkpoint X: No
  space left on device") that also removes the folders it created when the write fails.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError, writing

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"))


def kind_of(mode: int) -> str:
    """What a non-regular file is, for messages ("a FIFO", "a folder", ...)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def not_regular(label: str, kind: str) -> UserError:
    return UserError(f"{label} is {kind}, not a regular file; remove or rename it")


def open_regular(path: str | os.PathLike[str], label: str, flags: int = os.O_RDONLY, follow: bool = True) -> int:
    """A descriptor of regular file ``path`` opened with ``flags`` (plus ``O_NONBLOCK``, ``O_CLOEXEC``
    and, with ``follow=False``, ``O_NOFOLLOW``); anything else is a :class:`UserError` naming
    ``label`` (e.g. "run file /r/metrics.jsonl") and what it is. A missing file raises
    FileNotFoundError as ``os.open`` does."""
    extra = os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags | extra, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise not_regular(label, "a symbolic link") from None
        if exc.errno in (errno.EISDIR, errno.ENXIO, errno.ENODEV, errno.EOPNOTSUPP):  # write-opened folder, FIFO
            try:
                kind = kind_of(os.lstat(path).st_mode)
            except OSError:
                kind = "not a regular file"
            raise not_regular(label, kind) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise not_regular(label, kind_of(mode))
    return fd


def check_regular(path: str | os.PathLike[str], label: str, follow: bool = True) -> bool:
    """True if ``path`` is a regular file, False if nothing has that name; anything else
    (a FIFO, a folder, a device, a symbolic link with ``follow=False``) is a :class:`UserError`."""
    try:
        os.close(open_regular(path, label, follow=follow))
    except FileNotFoundError:
        return False
    except PermissionError as exc:
        raise UserError(f"{label} cannot be read: {exc.strerror}") from None
    return True


def read_regular(path: str | os.PathLike[str], label: str, limit: int, fits: str) -> bytes:
    """All bytes of regular file ``path``, refused unread when it holds more than ``limit`` bytes
    ("{label} is N bytes; {fits} fits in {limit} bytes"), or grows past it while being read."""
    fd = open_regular(path, label)
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UserError(f"{label} is {size:,} bytes; {fits} fits in {limit:,} bytes")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UserError(f"{label} grew past {limit:,} bytes while being read")
    return data


def missing_folders(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, deepest first."""
    missing = []
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


@contextlib.contextmanager
def writing_output(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """:func:`runtime.errors.writing` (a full disk, a read-only folder: "cannot write the WHAT PATH:
    REASON"), and the folders created above ``path`` removed again (when empty) if the block fails.
    The writes inside must be atomic themselves (runtime.files.atomic_path, file_group), so the
    previous files stay intact and nothing partial is left."""
    created = missing_folders(Path(path))
    try:
        with writing(path, what):
            yield
    except BaseException:
        remove_empty(created)
        raise


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first, as :func:`missing_folders` lists them) while they are empty; the first
    that is not (another writer's files) or is gone stops it, and it and those above are left as they are."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break
