"""The engine files a batch run ships to its workers once (through Ray's object store), and how a worker
writes them into a folder of its own and proves them by their sha256s before it opens anything."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..engine_choice import resolve_engine
from ..errors import UserError
from ..files import writer_gone
from ..manifest import MANIFEST_NAME
from ..manifest_rules import MAX_FILE_BYTES
from ..safefiles import read_regular

# Worker folders are named <prefix><pid>-<random>; a worker that was killed leaves its folder for the next one
# on that node to remove.
FOLDER_PREFIX = "dyconvsr-batch-pid"


@dataclass(frozen=True)
class EngineBundle:
    """An artifact's manifest and the files its chosen variant reads, or one bare engine file (with the weights
    an OpenVINO ``.xml`` names beside it): relative path -> bytes, and the sha256 of each as the driver read it."""

    name: str
    variant: str | None  # the variant file inside the artifact; None for a bare engine
    files: dict[str, bytes]
    digests: dict[str, str]

    @property
    def is_artifact(self) -> bool:
        return self.variant is not None

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())


def bundle_engine(engine: Path, variant: str | None) -> EngineBundle:
    """What a worker needs to run ``engine`` (an artifact folder or engine file) with ``variant``."""
    choice = resolve_engine(engine, variant)
    if choice.folder is not None and choice.variant is not None:
        folder, names = choice.folder, [MANIFEST_NAME, *dict.fromkeys(choice.used_files())]
        chosen: str | None = choice.variant.file
    else:
        folder, names, chosen = choice.engine.parent, [choice.engine.name], None
        if choice.engine.suffix == ".xml" and choice.engine.with_suffix(".bin").is_file():
            names.append(choice.engine.with_suffix(".bin").name)
    files = {rel: read_regular(folder / rel, f"engine file {rel}", MAX_FILE_BYTES, "an engine file")
             for rel in names}
    digests = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    return EngineBundle(Path(engine).name, chosen, files, digests)


def unpack(bundle: EngineBundle) -> tuple[Path, Path]:
    """Write ``bundle`` into a new folder of this worker's and check every file's sha256 against what the driver
    read; returns (the folder, what to open: the artifact folder or the engine file). Folders of workers on this
    node that were killed are removed first."""
    remove_stale_folders()
    root = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
    try:
        for rel, data in bundle.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != bundle.digests[rel]:
                raise UserError(f"{rel}: sha256 {digest} on this worker, {bundle.digests[rel]} where the run started")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    opened = root if bundle.is_artifact else root / next(iter(bundle.files))
    return root, opened


def remove_stale_folders() -> list[Path]:
    """Remove the engine folders that killed workers left in this node's temp folder."""
    removed = []
    base = Path(tempfile.gettempdir())
    for entry in base.glob(f"{FOLDER_PREFIX}*-*"):
        pid = entry.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
        try:
            if pid.isdigit() and entry.is_dir() and not entry.is_symlink() and writer_gone(
                    int(pid), entry.stat().st_mtime):
                shutil.rmtree(entry)
                removed.append(entry)
        except OSError:
            continue
    return removed
