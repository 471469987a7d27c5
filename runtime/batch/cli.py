"""``python -m runtime.batch ARTIFACT_OR_ENGINE INPUT... -o OUT``: ``runtime.infer`` on a Ray cluster."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli_options import ArtifactPath, Verbosity
from ..errors import display
from ..infer import output_options, run_options
from ..naming import Naming
from ..runners import RunnerConfig
from ..video.cli import VideoSettings
from .report import REPORT
from .run import BatchSettings, run_batch


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("engine", metavar="ARTIFACT_OR_ENGINE", type=ArtifactPath())
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@output_options
@click.option("--address", default=None,
              help="Join the Ray cluster at this address (`ray start --head` prints it; 'auto' = the one running on "
                   "this machine). Default: start a local Ray runtime with this machine's CPUs, ended with the run.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Engines to run at once, one per Ray actor (default: the cluster's CPUs / --threads).")
@run_options
def main(engine: Path, inputs: tuple[str, ...], out_dir: Path, fmt: str, suffix: str | None, outscale: float | None,
         overwrite: bool, variant: str | None, tile: int | None, batch: int, min_size: int, max_pixels: int | None,
         address: str | None, workers: int | None, runner: RunnerConfig, video: VideoSettings,
         verbosity: Verbosity) -> None:
    """Upscale every INPUT (image files, folders searched recursively, glob patterns, videos) on a Ray cluster,
    with the engine in ARTIFACT_OR_ENGINE, exactly as `python -m runtime.infer` would: the same outputs at the
    same paths in OUT_DIR, the same options.

    Each worker (a Ray actor on --threads CPUs, 1 by default) receives the engine files once, checks their
    sha256s, opens one engine and upscales whole images (tiled as usual) or whole videos. Every output is
    published atomically. A rerun skips the outputs that are complete and correct (the size and sha256 recorded
    in OUT_DIR/.batch-journal.jsonl, for the same input and settings), so a killed run resumes where it was; a
    worker that dies is started again by Ray and its input run again; a bad input is a failed row, never a
    failed run. The end prints one summary line and writes OUT_DIR/batch-report.json (per input: status,
    seconds, worker, error). Exit 1 when any input failed.

    On a cluster every node needs this package with the same extras (pip install '<wheel>[cpu,ray]'), and the
    inputs and OUT_DIR on a file system every node mounts at the same path.

    Example: python -m runtime.batch artifacts/dyconvsr_x2 archive/ -o upscaled/ --ext auto
    """
    settings = BatchSettings(engine, inputs, out_dir, Naming(fmt, suffix, outscale), overwrite, variant, tile, batch,
                             min_size, max_pixels, runner, video, address, workers)
    report = run_batch(settings, verbosity)
    done, skipped, failed = report.count("ok"), report.count("skipped"), report.count("failed")
    rate = f"{done / report.seconds:.2f}" if report.seconds > 0 else "-"
    verbosity.say(f"upscaled {done} of {len(report.rows)} input(s) into {display(out_dir)}/ with "
                  f"{len(report.workers)} worker(s) on {report.nodes} node(s) in {report.seconds:.1f} s "
                  f"({rate} inputs/s); {skipped} skipped (complete from an earlier run), {failed} failed; "
                  f"report: {display(out_dir / REPORT)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
