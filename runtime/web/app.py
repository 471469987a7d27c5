"""``python -m runtime.web ARTIFACT [--port P]``: serve the artifact's browser pages on 127.0.0.1."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from ..cli_options import ArtifactPath, Verbosity, verbosity_options
from ..errors import UserError, cli_errors, display
from ..manifest import read_manifest
from ..packaged import SUFFIX
from .plan import page_plan
from .server import Site, WebServer, make_server, plan_bytes, url
from .vendor import read_lock, vendored_files

DEFAULT_PORT = 8000


def make_site(artifact: Path) -> Site:
    """Everything the server answers for ``artifact``: its manifest read and validated, the vendored ORT Web files
    checked against the lock, the page plan built."""
    if not artifact.is_dir():
        raise UserError(f"{display(artifact)}: the browser pages need an artifact folder (manifest, tiling graphs, "
                        "references), not a bare engine file")
    manifest = read_manifest(artifact)
    lock = read_lock()
    vendor = vendored_files(lock=lock)
    label = artifact.name.removesuffix(SUFFIX)  # a packaged engine by its model name
    plan = page_plan(manifest, label, lock.version)
    return Site(artifact, manifest, vendor, plan_bytes(plan))


def open_server(artifact: Path, port: int = DEFAULT_PORT, log: Callable[[str], None] = lambda line: None) -> WebServer:
    """The server for ``artifact`` bound to 127.0.0.1:``port`` (not yet serving)."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be 0..65535; got {port}")
    return make_server(make_site(artifact), port, log)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("artifact", type=ArtifactPath())
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True,
              help="TCP port on 127.0.0.1 (0: a free one, printed).")
@verbosity_options
@cli_errors
def main(artifact: Path, port: int, verbosity: Verbosity) -> None:
    """Serve ARTIFACT (a folder written by `python -m export`, or a packaged model name such as dyconvsr_x2) to
    the browser on 127.0.0.1 only, run by ONNX Runtime Web (WASM SIMD + threads; ?ep=webgpu where the browser has
    WebGPU). Pages: / upscales a dropped or chosen image of any size with seamless tiling and offers the PNG;
    check.html runs the stored references with the manifest's tolerances and ends on verdict: PASS|FAIL;
    bench.html times the model at 640x360 (?threads=N, ?rounds=N). Needs the vendored ORT Web files once:
    make web-vendor. Ctrl-C stops."""
    server = open_server(artifact, port, verbosity.detail)
    with server:
        verbosity.say(f"{display(artifact)}: check {url(server, 'check.html')}, bench {url(server, 'bench.html')}; "
                      "Ctrl-C stops")
        # The one stdout line, even with -q: with --port 0 it is how a script learns the port.
        click.echo(f"serving on {url(server)}")
        server.serve_forever()
