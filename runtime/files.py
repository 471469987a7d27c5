"""File helpers every layer uses: sha256, atomic writes (temp file in the same folder + rename or
no-replace link), clean-up of killed writers' temp files, and folder walks that always end."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import UserError, display


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Temp files of atomic_path: ".<name>.pid<writer pid>.<8 hex>.tmp" beside the target. The PID
# lets a later run tell a dead writer's leftovers (SIGKILL, power loss) from a live one's.
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..*\.pid(\d+)\.[0-9a-f]{8}\.tmp$", re.DOTALL)
# The temp folders runtime.video.encode.atomic_folder fills before renaming them onto a frames folder.
_TEMP_FOLDER_NAME = re.compile(r"^\..*\.pid(\d+)\.[0-9a-f]{8}\.tmpdir$", re.DOTALL)
_DEFAULT_NAME_MAX = 255


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        return _DEFAULT_NAME_MAX


def _temp_prefix(target: Path, name_max: int) -> str:
    """``.<name>.pid<PID>.``, the name shortened (and a hash of it kept) so the temp name fits."""
    tail = f".pid{os.getpid()}."
    room = name_max - len(tail) - 1 - 8 - len(TEMP_SUFFIX)
    name = os.fsencode(target.name)
    if len(name) > room:
        digest = hashlib.sha256(name).hexdigest()[:8].encode()
        name = name[: max(0, room - len(digest) - 1)] + b"~" + digest
    return "." + os.fsdecode(name) + tail


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _create_temp(target: Path, created: list[Path]) -> Path:
    """Create an empty temp file beside ``target``, listed in ``created`` from the instant it exists
    (a SIGTERM raised right after the file appears still finds it to remove)."""
    name_max = _name_max(target.parent)
    if len(os.fsencode(target.name)) > name_max:
        raise UserError(f"file name {display(target.name)} is {len(os.fsencode(target.name))} bytes; "
                        f"{display(target.parent)} allows at most {name_max}")
    prefix = _temp_prefix(target, name_max)
    for _ in range(100):
        candidate = target.parent / f"{prefix}{secrets.token_hex(4)}{TEMP_SUFFIX}"
        created[:] = [candidate]
        try:
            # 0o666: the umask applies as for a plain open(), without reading it (os.umask is
            # process-wide and racy to toggle).
            fd = os.open(candidate, _TEMP_FLAGS, 0o666)
        except FileExistsError:
            created.clear()
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"no free temp file name beside {target}")


def _fsync(path: Path, folder: bool = False) -> None:
    flags = os.O_RDONLY if os.name != "nt" else os.O_RDWR
    try:
        fd = os.open(path, flags | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        if folder:  # folders cannot be opened everywhere (Windows): best effort
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if not folder and exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


_NO_HARD_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS)


def _publish_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` unless anything (even a dangling symlink) has that name,
    decided by the file system at this instant, so concurrent writers cannot replace each other."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        # No hard links here (FAT, some network file systems): reserve the name with O_EXCL,
        # then rename onto the reservation. A crash in between leaves an empty file, never a lost one.
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
        os.replace(tmp, target)
    else:
        tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], replace: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is published as ``path``, on error removed.

    Readers never see a half-written file, and an interrupted write leaves nothing that looks
    valid: the temp file is fsynced, then renamed onto ``path`` (``replace=True``) or, with
    ``replace=False``, linked to it only if nothing has that name at that instant (else
    FileExistsError, the existing entry untouched, even if another process created it while
    this one was writing). The folder is fsynced after, where the platform allows.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    created: list[Path] = []
    try:
        tmp_path = _create_temp(target, created)
        mode = tmp_path.stat().st_mode & 0o777  # 0o666 less the umask, as open() would give
        yield tmp_path
        if tmp_path.stat().st_mode & 0o777 != mode:  # a writer that recreated it (safetensors: 0600)
            tmp_path.chmod(mode)
        if _is_special(target):
            # A device or pipe (/dev/stdout, a FIFO): written through, never renamed over.
            with open(tmp_path, "rb") as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            tmp_path.unlink()
            return
        _fsync(tmp_path)
        if replace:
            os.replace(tmp_path, target)
        else:
            _publish_new(tmp_path, target)
    except BaseException:
        for tmp in created:
            tmp.unlink(missing_ok=True)
        raise
    _fsync(target.parent, folder=True)


def _is_special(path: Path) -> bool:
    """True for an existing entry that is neither a regular file nor a folder (a device, a FIFO)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), on Linux; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22, after "pid (comm)"
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def writer_gone(pid: int, written: float) -> bool:
    """True when the process that wrote a file at ``written`` (epoch seconds) as ``pid`` is no longer running."""
    if pid <= 0 or os.name == "nt":  # os.kill(pid, 0) would signal on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # alive, another user's
    started = _process_start(pid)
    # Alive, but started after the file was last written: the PID was reused (containers restart
    # at the same PIDs). The 2 s cover the one-second resolution of the boot time.
    return started is not None and written < started - 2.0


def remove_stale_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temp files :func:`atomic_path` (and the temp frame folders of ``atomic_folder``) left in
    ``folder`` (not below) when their writer was killed: those whose writer is not running, or whose PID now names
    a newer process. A temp folder holding anything but regular files is left alone."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        folder_match = _TEMP_FOLDER_NAME.match(entry.name)
        try:
            if match and entry.is_file(follow_symlinks=False):
                if writer_gone(int(match[1]), entry.stat(follow_symlinks=False).st_mtime):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            elif folder_match and entry.is_dir(follow_symlinks=False) and writer_gone(
                    int(folder_match[1]), entry.stat(follow_symlinks=False).st_mtime):
                inside = list(os.scandir(entry.path))
                # Only what a writer of ours leaves: regular files, no folder or link (anything else stays).
                if all(item.is_file(follow_symlinks=False) for item in inside):
                    for item in inside:
                        os.unlink(item.path)
                    os.rmdir(entry.path)
                    removed.append(Path(entry.path))
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    return removed


def walk_tree(root: str | os.PathLike[str], hidden: bool = True
              ) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``os.walk`` that always ends: symlinked folders are listed (among the folder names) but
    never entered, each real folder is entered once (bind mounts can loop too), and with
    ``hidden=False`` names starting with "." are skipped as glob does."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root):
        try:
            here = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (here.st_dev, here.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((here.st_dev, here.st_ino))
        if not hidden:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            files = [f for f in files if not f.startswith(".")]
        yield Path(folder), dirs, files


def unique_files(paths: Iterable[Path]) -> list[Path]:
    """``paths`` in order, keeping the first of those naming the same file (by real path)."""
    unique: dict[str, Path] = {}
    for path in paths:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


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
        for src, dst in zip(pending, targets, strict=True):
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
    for src, dst in zip(pending, targets, strict=True):
        os.replace(src, dst)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# Our JSON documents (manifests, checkpoint configs, training states) are kilobytes; anything far
# larger was not written by this toolchain and is not parsed.
MAX_JSON_BYTES = 16 << 20


def json_bytes(data: Any, default: Any = None) -> bytes:
    """``data`` as indented JSON text, the one way every layer writes JSON: JSON has no infinity or
    NaN, so a non-finite float (an infinite PSNR of identical outputs) is written as null."""
    def finite(value: Any) -> Any:
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        return [finite(item) for item in value] if isinstance(value, list | tuple) else value

    return (json.dumps(finite(data), indent=2, allow_nan=False, default=default) + "\n").encode()


def read_json_document(
    path: str | os.PathLike[str], expected_format: str | tuple[str, ...], what: str
) -> dict[str, Any]:
    """A JSON object whose ``format`` field must equal ``expected_format`` (or one of them); ``what``
    names the file in errors ("checkpoint config", ...). Raises :class:`UserError` naming what was found."""
    allowed = (expected_format,) if isinstance(expected_format, str) else expected_format
    from .safefiles import open_regular  # (safefiles imports nothing from here)

    try:
        # Opened without blocking and judged on what was opened: a FIFO or folder (even one swapped in after a
        # check by name) is refused, never waited on.
        with os.fdopen(open_regular(path, f"{what} {path}"), "rb") as handle:
            raw = handle.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_JSON_BYTES:
        raise UserError(f"{what} {path} is larger than {MAX_JSON_BYTES} bytes: not one of ours")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except RecursionError:
        raise UserError(f"{what} {path} nests deeper than the JSON parser can follow") from None
    except ValueError as exc:  # JSONDecodeError, and integers longer than Python converts
        raise UserError(f"{what} {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") not in allowed:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise UserError(f"{what} {path} has format {got!r}; expected {' or '.join(map(repr, allowed))}")
    return data
