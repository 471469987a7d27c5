"""The ONNX Runtime Web files the pages load, copied out of the pinned npm package (``vendor.lock.json``: version,
the tarball's integrity, every file's sha256) into ``runtime/web/vendor/``. They are 41 MB of WebAssembly, so they
are not in git: ``make web-vendor`` (``python -m runtime.web.vendor``) fetches the tarball with ``npm pack`` (the
only step that needs npm, and only once), checks it, and copies the listed files. The server checks them again
before it serves one (:func:`vendored_files`).
"""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import click

from ..cli_options import NamedPath
from ..errors import UserError, cli_errors, display
from ..files import atomic_write_bytes, sha256_file

HERE = Path(__file__).resolve().parent
LOCK = HERE / "vendor.lock.json"
VENDOR_DIR = HERE / "vendor"
FETCH_HINT = "make web-vendor (or python -m runtime.web.vendor; needs npm once)"


@dataclass(frozen=True)
class VendorLock:
    package: str
    version: str
    tarball_integrity: str  # npm's "sha512-<base64>" of the package tarball
    files: dict[str, str]  # path inside the package -> sha256

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    def served_names(self) -> dict[str, str]:
        """Served file name (the basename) -> sha256."""
        return {PurePosixPath(path).name: digest for path, digest in self.files.items()}


def read_lock(path: Path = LOCK) -> VendorLock:
    data = json.loads(path.read_text(encoding="utf-8"))
    return VendorLock(data["package"], data["version"], data["tarball_integrity"], dict(data["files"]))


def vendored_files(folder: Path = VENDOR_DIR, lock: VendorLock | None = None) -> dict[str, Path]:
    """Served name -> path of every locked file in ``folder``, each with its sha256 checked; else UserError."""
    lock = lock or read_lock()
    found = {}
    for name, digest in lock.served_names().items():
        path = folder / name
        if not path.is_file():
            raise UserError(f"{lock.spec} is not vendored ({display(path)} missing): run {FETCH_HINT}")
        if sha256_file(path) != digest:
            raise UserError(f"{display(path)}: sha256 differs from runtime/web/vendor.lock.json ({lock.spec}); "
                            f"run {FETCH_HINT} again")
        found[name] = path
    return found


def _integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def npm_pack(spec: str, folder: Path) -> Path:
    """The package tarball of ``spec`` fetched by npm into ``folder``."""
    npm = shutil.which("npm")
    if npm is None:
        raise UserError("npm not found: install it (apt-get install -y npm) to vendor onnxruntime-web once")
    result = subprocess.run([npm, "pack", spec, "--pack-destination", str(folder), "--json", "--silent"],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"npm pack {spec} failed: {tail}")
    return folder / json.loads(result.stdout)[0]["filename"]


def extract(tarball: Path, lock: VendorLock, folder: Path) -> list[Path]:
    """The locked files of a checked package tarball, each sha256-checked, written into ``folder``."""
    if _integrity(tarball) != lock.tarball_integrity:
        raise UserError(f"{tarball.name}: integrity differs from the lock's {lock.tarball_integrity[:20]}...: "
                        "refusing to vendor it")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(tarball, "r:gz") as archive:
        for path, digest in lock.files.items():
            member = archive.getmember(f"package/{path}")  # named by the lock, never by the archive
            handle = archive.extractfile(member) if member.isfile() else None
            if handle is None:
                raise UserError(f"{tarball.name}: package/{path} is not a regular file")
            data = handle.read()
            if hashlib.sha256(data).hexdigest() != digest:
                raise UserError(f"{tarball.name}: package/{path} sha256 differs from the lock")
            target = folder / PurePosixPath(path).name
            atomic_write_bytes(target, data)
            written.append(target)
    return written


def vendor(folder: Path = VENDOR_DIR, lock: VendorLock | None = None) -> list[Path]:
    """Fetch, check and copy the locked ORT Web files into ``folder`` (nothing to do when they are there)."""
    lock = lock or read_lock()
    try:
        return list(vendored_files(folder, lock).values())
    except UserError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        return extract(npm_pack(lock.spec, Path(tmp)), lock, folder)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-o", "--dest", type=NamedPath(file_okay=False, path_type=Path), default=VENDOR_DIR,
              show_default="runtime/web/vendor", help="Folder to copy the ORT Web files into.")
@cli_errors
def main(dest: Path) -> None:
    """Vendor ONNX Runtime Web for the browser pages: npm pack of the version pinned in
    runtime/web/vendor.lock.json, its integrity and every file's sha256 checked, the WASM (and WebGPU) builds
    copied into DEST. Run once; python -m runtime.web refuses to serve files that do not match the lock."""
    lock = read_lock()
    files = vendor(dest, lock)
    total = sum(path.stat().st_size for path in files)
    click.echo(f"{lock.spec}: {len(files)} files, {total / 1e6:.1f} MB in {display(dest)}, sha256 as locked")


if __name__ == "__main__":
    main()
