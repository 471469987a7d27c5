"""File helpers every layer uses: sha256 and atomic writes (temp file in the same folder + rename)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import UserError


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is renamed onto ``path``, on error removed.

    Readers never see a half-written file, and an interrupted write leaves nothing that looks valid.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600), and writers may recreate it; give the result
        # the permissions a plain open() would.
        tmp_path.chmod(0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


PENDING_SUFFIX = ".pending"


def _pending(paths: Sequence[Path]) -> list[Path]:
    return [p.with_name(p.name + PENDING_SUFFIX) for p in paths]


def recover_group(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Finish or drop an interrupted :func:`file_group` write of ``paths``.

    If the group's last pending file exists, every file was fully written: the renames are
    completed. Otherwise the group never committed: its pending files are removed, and the
    previous generation of ``paths`` is intact.
    """
    targets = [Path(p) for p in paths]
    pending = _pending(targets)
    if pending[-1].exists():
        for src, dst in zip(pending, targets):
            if src.exists():
                os.replace(src, dst)
    else:
        for src in pending:
            src.unlink(missing_ok=True)


@contextlib.contextmanager
def file_group(paths: Sequence[str | os.PathLike[str]]) -> Iterator[list[Path]]:
    """Write several files as one unit (e.g. weights + the JSON naming their sha256).

    Yields one pending path per target; write them in order, each completely (the last one is the
    commit mark, so write it with :func:`atomic_path` or :func:`atomic_write_bytes`). On success
    they are renamed onto ``paths``, the last one last; a crash at any point leaves either the old
    or the new generation once :func:`recover_group` has run (readers call it first).
    """
    targets = [Path(p) for p in paths]
    recover_group(targets)
    pending = _pending(targets)
    try:
        yield pending
        missing = [p for p in pending if not p.is_file()]
        if missing:
            raise RuntimeError(f"file group incomplete: {', '.join(map(str, missing))} not written")
    except BaseException:
        for src in pending:
            src.unlink(missing_ok=True)
        raise
    for src, dst in zip(pending, targets):
        os.replace(src, dst)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_json_document(
    path: str | os.PathLike[str], expected_format: str | tuple[str, ...], what: str
) -> dict[str, Any]:
    """A JSON object whose ``format`` field must equal ``expected_format`` (or one of them); ``what``
    names the file in errors ("checkpoint config", ...). Raises :class:`UserError` naming what was found."""
    allowed = (expected_format,) if isinstance(expected_format, str) else expected_format
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") not in allowed:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise UserError(f"{what} {path} has format {got!r}; expected {' or '.join(map(repr, allowed))}")
    return data
