"""What a batch run has written into its output folder, so a rerun skips what is complete and correct.

``OUT/.batch-journal.jsonl`` is appended by the driver alone, one fsynced JSON line per event: ``planned`` (the
outputs a run is about to create, written before any worker starts) and ``done`` (an output published, with its
size and sha256, the input's size and mtime, and the settings that made it). A rerun skips an output whose file
still has the recorded size and sha256 for the same input and settings, and may replace an output a killed run
published without recording it (planned, nothing recorded), but nothing else that exists without --overwrite: not
an output changed since it was recorded, nor one made with other settings. A torn last line (a kill mid-write) is
ignored.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError, display, writing
from ..files import sha256_file
from ..manifest_rules import check_relative
from ..safefiles import check_regular, read_regular

JOURNAL = ".batch-journal.jsonl"
MAX_JOURNAL_BYTES = 1 << 30


@dataclass(frozen=True)
class Output:
    """An output's size in bytes and sha256 (a frames folder: of its sorted names and their digests)."""

    size: int
    sha256: str


def describe_output(path: Path) -> Output | None:
    """The size and digest of ``path`` as it is now; None when it is missing, a link or not a file or folder."""
    if path.is_symlink() or not path.exists():
        return None
    if path.is_file():
        return Output(path.stat().st_size, sha256_file(path))
    if not path.is_dir():
        return None
    digest, size = hashlib.sha256(), 0
    for name in sorted(os.listdir(path)):
        entry = path / name
        if entry.is_symlink() or not entry.is_file():
            return None
        size += entry.stat().st_size
        digest.update(f"{name}\0{sha256_file(entry)}\n".encode())
    return Output(size, digest.hexdigest())


def input_identity(path: Path) -> list[int]:
    """[size, mtime in ns] of an input: what says it is the file a recorded output was made from."""
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


def settings_digest(settings: dict[str, Any]) -> str:
    """One digest of everything that decides an output's bytes (engine digests, variant, naming, video, tile)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


class Journal:
    """The journal of one output folder."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / JOURNAL
        self.done: dict[str, dict[str, Any]] = {}
        self.planned: set[str] = set()
        if check_regular(self.path, f"batch journal {display(self.path)}", follow=False):
            self._load(read_regular(self.path, f"batch journal {display(self.path)}", MAX_JOURNAL_BYTES,
                                    "a batch journal"))

    def _load(self, data: bytes) -> None:
        for line in data.splitlines():
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    continue
                if isinstance(record.get("done"), str):
                    check_relative("done", record["done"])
                    self.done[record["done"]] = record
                elif isinstance(record.get("planned"), list):
                    for rel in record["planned"]:
                        if isinstance(rel, str):
                            check_relative("planned", rel)
                            self.planned.add(rel)
            except (ValueError, UserError):
                continue  # a torn last line, or a path that would leave the folder: not ours to trust

    def relative(self, target: Path) -> str:
        return target.relative_to(self.out_dir).as_posix()

    def is_complete(self, target: Path, source: Path, settings: str) -> bool:
        """True when ``target`` is what the journal says a run with ``settings`` made from ``source`` as it is now."""
        record = self.done.get(self.relative(target))
        if record is None or record.get("settings") != settings:
            return False
        try:
            if record.get("input") != input_identity(source):
                return False
        except OSError:
            return False
        if not os.path.lexists(target):
            return False
        size = os.stat(target).st_size if os.path.isfile(target) else None
        if size is not None and size != record.get("size"):
            return False  # the cheap check first: no digest of a file of another size
        now = describe_output(target)
        return now is not None and asdict(now) == {"size": record.get("size"), "sha256": record.get("sha256")}

    def was_planned(self, target: Path) -> bool:
        """True when an earlier run planned ``target`` and recorded nothing there: a file there is that run's own,
        published as it was killed."""
        return self.relative(target) in self.planned and self.relative(target) not in self.done

    def plan(self, targets: list[Path]) -> None:
        self._append({"planned": [self.relative(t) for t in targets]})
        self.planned.update(self.relative(t) for t in targets)

    def record(self, target: Path, source: Path, settings: str, output: Output, worker: str) -> None:
        record = {"done": self.relative(target), **asdict(output), "input": input_identity(source),
                  "settings": settings, "worker": worker}
        self._append(record)
        self.done[record["done"]] = record

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with writing(display(self.path), "batch journal"):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # after a torn line, so this one stays whole
                try:
                    if os.write(fd, line) != len(line):
                        raise OSError("short write")
                    os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, size)  # never leave half a line behind a full disk
                    raise
            finally:
                os.close(fd)
