"""runtime.web's server without a browser: what it serves and refuses, its headers, its port handling, and the
vendoring of ONNX Runtime Web against the lock (a tarball built here: no registry needed)."""
from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.errors import UserError
from runtime.manifest import read_manifest
from runtime.packaged import packaged_models
from runtime.web.plan import page_plan
from runtime.web.server import HOST, Site, make_server, plan_bytes, serve_in_thread
from runtime.web.vendor import VendorLock, extract, vendored_files

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped x2, copied, with a file beside it that its manifest does not list."""
    folder = tmp_path_factory.mktemp("web") / "dyconvsr_x2"
    shutil.copytree(packaged_models()["dyconvsr_x2"], folder)
    (folder / "secret.txt").write_text("not listed in the manifest\n")
    (folder.parent / "outside.txt").write_text("outside the artifact\n")
    return folder


@pytest.fixture(scope="module")
def port(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    fake = tmp_path_factory.mktemp("vendor") / "ort.wasm.min.mjs"
    fake.write_text("export const fake = 1;\n")
    manifest = read_manifest(artifact)
    site = Site(artifact, manifest, {fake.name: fake}, plan_bytes(page_plan(manifest, "dyconvsr_x2", "1.30.0")))
    server = make_server(site, 0)
    serve_in_thread(server)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def get(port: int, path: str, method: str = "GET") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    connection.request(method, path)
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


@pytest.mark.parametrize("path", ["/", "/check.html", "/bench.html", "/app.mjs", "/web.json", "/artifact/manifest.json",
                                  "/artifact/model.onnx", "/artifact/tiling/main.onnx", "/vendor/ort.wasm.min.mjs"])
def test_serves_pages_manifest_files_and_vendor_with_isolation_headers(port: int, path: str) -> None:
    response = get(port, path)
    assert response.status == 200, path
    assert response.getheader("Cross-Origin-Opener-Policy") == "same-origin"
    assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert int(response.getheader("Content-Length")) == len(response.body) > 0
    if path.endswith(".mjs"):
        assert response.getheader("Content-Type").startswith("text/javascript")


@pytest.mark.parametrize("path", [
    "/artifact/secret.txt", "/artifact/../outside.txt", "/artifact/%2e%2e/outside.txt", "/artifact/tiling/",
    "/artifact/", "/artifact", "/vendor/", "/vendor/../vendor.py", "/static/index.html", "/../plan.py", "/server.py",
    "/artifact/reference%2finput_0.npy%00", "/artifact/reference\\input_0.npy", "/etc/passwd", "/%2fetc%2fpasswd",
    "/artifact/%ff", "/artifact/model.onnx/", "/artifact/MODEL.ONNX",
])
def test_refuses_everything_else(port: int, path: str) -> None:
    assert get(port, path).status == 404, path


def test_only_get_and_head(port: int) -> None:
    assert get(port, "/", "POST").status == 501
    head = get(port, "/artifact/model.onnx", "HEAD")
    assert head.status == 200 and head.body == b"" and int(head.getheader("Content-Length")) > 0


def test_plan_carries_the_manifest_numbers(port: int) -> None:
    plan = json.loads(get(port, "/web.json").body)
    assert plan["engine"]["file"] == "model.onnx" and plan["tiling"]["halo"] == 14 and plan["tiling"]["align"] == 2
    assert plan["max_input_pixels"] == 16 << 20 and plan["bench_shape"] == [360, 640]
    by_file = {v["file"]: v for v in plan["variants"]}
    assert by_file["model.onnx"]["tolerance"] == {"max_abs_diff": 1e-4} and by_file["model.onnx"]["skip"] is None
    assert by_file["model.int8.onnx"]["tolerance"] == {"min_psnr_db": 40.0}
    assert by_file["model.mobile.360x640.tflite"]["skip"].startswith("litert file")


def test_binds_loopback_and_refuses_a_taken_port(artifact: Path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        site = Site(artifact, read_manifest(artifact), {}, b"{}")
        with pytest.raises(UserError, match=f"port {busy} on 127.0.0.1 is in use"):
            make_server(site, busy)
        cli = subprocess.run([sys.executable, "-m", "runtime.web", str(artifact), "--port", str(busy)],
                             capture_output=True, text=True, timeout=60, cwd=REPO)
    assert cli.returncode == 2
    # Either line is the one: without vendored files the CLI says so before it binds.
    assert cli.stderr.startswith("error: ") and ("is in use" in cli.stderr or "make web-vendor" in cli.stderr)
    assert len(cli.stderr.strip().splitlines()) == 1


def test_port_0_prints_the_url(artifact: Path) -> None:
    try:
        vendored_files()
    except UserError as exc:
        pytest.skip(str(exc))
    process = subprocess.Popen([sys.executable, "-m", "runtime.web", str(artifact), "--port", "0", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("serving on http://127.0.0.1:"), line + process.stderr.read()
        port = int(line.rsplit(":", 1)[1].strip("/"))
        assert get(port, "/web.json").status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_bare_engine_file_is_refused(artifact: Path) -> None:
    cli = subprocess.run([sys.executable, "-m", "runtime.web", str(artifact / "model.onnx")],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert cli.returncode == 2 and "need an artifact folder" in cli.stderr


def _tarball(folder: Path, files: dict[str, bytes]) -> Path:
    path = folder / "package.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _lock(tarball: Path, files: dict[str, bytes]) -> VendorLock:
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    return VendorLock("onnxruntime-web", "0.0.0", integrity,
                      {name: hashlib.sha256(data).hexdigest() for name, data in files.items()})


def test_vendoring_checks_the_tarball_and_every_file(tmp_path: Path) -> None:
    files = {"dist/ort.wasm.min.mjs": b"export {};\n", "dist/ort-wasm-simd-threaded.wasm": b"\0asm\1\0\0\0"}
    tarball = _tarball(tmp_path, {**files, "dist/../../escape.txt": b"never written"})
    lock = _lock(tarball, files)
    written = extract(tarball, lock, tmp_path / "vendor")
    assert sorted(p.name for p in written) == ["ort-wasm-simd-threaded.wasm", "ort.wasm.min.mjs"]
    assert set(vendored_files(tmp_path / "vendor", lock)) == {"ort-wasm-simd-threaded.wasm", "ort.wasm.min.mjs"}
    assert not (tmp_path.parent / "escape.txt").exists()
    (tmp_path / "vendor" / "ort.wasm.min.mjs").write_bytes(b"tampered")
    with pytest.raises(UserError, match="sha256 differs from runtime/web/vendor.lock.json"):
        vendored_files(tmp_path / "vendor", lock)
    tampered = _tarball(tmp_path, {**files, "dist/ort.wasm.min.mjs": b"evil"})
    with pytest.raises(UserError, match="integrity differs"):
        extract(tampered, lock, tmp_path / "other")
    with pytest.raises(UserError, match="make web-vendor"):
        vendored_files(tmp_path / "missing", lock)


def test_the_lock_pins_one_version_and_what_the_pages_import() -> None:
    lock = json.loads((REPO / "runtime" / "web" / "vendor.lock.json").read_text())
    assert lock["package"] == "onnxruntime-web" and lock["version"].count(".") == 2
    names = {Path(p).name for p in lock["files"]}
    pages = (REPO / "runtime" / "web" / "static" / "ort.mjs").read_text()
    assert {"ort.wasm.min.mjs", "ort.webgpu.min.mjs"} <= names and all(n in pages for n in ("ort.wasm.min.mjs",
                                                                                           "ort.webgpu.min.mjs"))
