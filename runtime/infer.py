"""``python -m runtime.infer ARTIFACT_OR_ENGINE INPUT... -o OUT_DIR``: upscale image files.

Bad inputs never stop the batch: each gets one ``error: <file>: <reason>`` line on stderr (file
names escaped), the other files are still written, nothing partial is left on disk, and the exit
code is 1. Problems with the command itself (engine, options) exit 2 before any file is touched.
No existing file is replaced without --overwrite, not even one another process writes meanwhile,
and no input is ever written over; SIGTERM/Ctrl-C remove the file being written (exit 143/130),
and temp files of killed runs are removed from a folder before it is written into.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .cli_options import ArtifactPath, F, NamedPath, Verbosity, runner_options, verbosity_options
from .errors import BackendUnavailable, UserError, cli_errors, display, quiet_libraries
from .inputs import expand_inputs
from .manifest import read_manifest
from .naming import Naming
from .outputs import OutputPlan, OwnInputs, failure_reason, write_output
from .progress import progress_bar, status
from .run_summary import RunSummary
from .runners import RunnerConfig
from .tuning import tuned_variant
from .upscaler import DEFAULT_TILE, VIDEO_TILE, Upscaler, tile_for
from .video.cli import VideoSettings, video_options
from .video.formats import is_video_path

# Where and how outputs are written, and how the engine runs over an image: runtime.batch takes these as they are.
OUTPUT_OPTIONS = [
    click.option("-o", "--output", "out_dir", type=NamedPath(file_okay=False, path_type=Path), default=Path("upscaled"),
                 show_default=True, help="Folder for the results (created if missing)."),
    click.option("--format", "--ext", "fmt", default="png", show_default=True,
                 help="Output format: png, jpg, webp, tiff, bmp, or auto (the input's own format where it is one of "
                      "these, else png)."),
    click.option("--suffix", default=None,
                 help="Output name: <name>_<suffix>.<ext> (default x<scale>, or x<outscale> with -s; "
                      "'' = <name>.<ext>)."),
    click.option("-s", "--outscale", type=float, default=None,
                 help="Output size factor, any number up to 16 (default: the network's scale): the network runs, then "
                      "a MATLAB-compatible bicubic resize gives round(factor x input) pixels a side. Images only."),
    click.option("--overwrite", is_flag=True, help="Replace existing output files (refused by default)."),
    click.option("--variant", default=None,
                 help="Engine file inside the artifact folder (default: the fastest one `dyconvsr-check ARTIFACT "
                      "--tune` proved on this machine, else the manifest's default; -v says which and why)."),
    click.option("--tile", type=click.IntRange(min=0), default=None,
                 help=f"Largest input tile side in pixels; bigger images are tiled seamlessly (0 = never tile). "
                      f"Default {DEFAULT_TILE}, for video frames {VIDEO_TILE}."),
    click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Tiles per engine call."),
    click.option("--min-size", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Refuse images with a side smaller than this."),
    click.option("--max-pixels", type=click.IntRange(min=1), default=None,
                 help="Decompression-bomb limit in pixels (default: Pillow's, about 89 million)."),
]


def output_options(func: F) -> F:
    """Decorate a command with :data:`OUTPUT_OPTIONS` (in their order in --help)."""
    for option in reversed(OUTPUT_OPTIONS):
        func = option(func)
    return func


def run_options(func: F) -> F:
    """One-line errors, then the engine, video and verbosity options (runner, video, verbosity arguments)."""
    return cli_errors(runner_options(video_options(verbosity_options(func))))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("engine", metavar="ARTIFACT_OR_ENGINE", type=ArtifactPath())
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@output_options
@click.option("--json", "json_path", type=NamedPath(dir_okay=False, path_type=Path), default=None,
              help="Also write a JSON summary (engine, and per input: output, status, seconds, error) to this file; "
                   "'-' = stdout.")
@click.option("--verify", is_flag=True,
              help="First check the sha256 of every file the run uses against the manifest (exit 2 on a mismatch).")
@run_options
def main(engine: Path, inputs: tuple[str, ...], out_dir: Path, fmt: str, suffix: str | None, outscale: float | None,
         json_path: Path | None, overwrite: bool, variant: str | None, tile: int | None, batch: int, min_size: int,
         max_pixels: int | None, verify: bool, runner: RunnerConfig, video: VideoSettings,
         verbosity: Verbosity) -> None:
    """Upscale every INPUT (image files, folders searched recursively, or glob patterns) with the
    engine in ARTIFACT_OR_ENGINE (an artifact folder written by `python -m export`, or one engine
    file) and write OUT_DIR/<name>_x<scale>.<format>.

    Any size works: the output is exactly scale x the input. Images larger than --tile are
    processed in overlapping tiles whose dynamic-convolution attention is computed over the whole
    image first, so the result equals an untiled run and memory stays bounded by the tile size.
    Grayscale and 16-bit grayscale stay so, alpha is upscaled and kept, palette and CMYK images
    become RGB(A), EXIF orientation is applied.

    A video file (mp4, mkv, mov, webm, ...; the optional `video` extra) gives one video,
    OUT_DIR/<name>_x<scale>.<video-format>: every frame upscaled, timestamps, audio and subtitles
    kept, or with --video-format frames a folder of images.

    Example: python -m runtime.infer artifacts/dyconvsr photos/ clip.mp4 -o upscaled/ -s 3.5 --ext auto
    """
    naming = Naming(fmt, suffix, outscale)
    files, problems = expand_inputs(list(inputs))
    summary = RunSummary(str(engine))
    for argument, reason in problems:
        status(f"error: {argument}: {reason}")
        summary.add(argument, None, "failed", 0.0, reason)
    failures = len(problems)
    if any(is_video_path(item.path) for item in files):
        video.check()  # a bad --preset/--crf/--codec: once, before the engine loads
    written = 0
    image_tile = tile_for(tile, video=False)
    variant = choose_variant(engine, variant, runner, verbosity)
    with quiet_libraries(), open_upscaler(engine, variant, runner, tile=image_tile, batch=batch, min_size=min_size,
                                          progress=not verbosity.quiet, verify=verify) as upscaler:
        plan = OutputPlan(out_dir, naming, OwnInputs(files), video)
        summary.engine = upscaler.description
        for item in progress_bar(files, quiet=verbosity.quiet or len(files) < 2, unit="image", desc="images"):
            start, target, error = time.perf_counter(), None, None
            try:
                target = plan.target(item, upscaler.scale)
                plan.check_replaceable(item, target, overwrite)
                plan.sweep(target)
                write_output(upscaler, item, target, naming, video, overwrite, max_pixels, not verbosity.quiet)
                written += 1
                verbosity.detail(f"{display(item.path)} -> {display(target)}")
            except Exception as exc:  # one bad file must not stop the batch
                target, error = None, failure_reason(exc)
            if error is not None:
                failures += 1
                status(f"error: {display(item.path)}: {error}")
            summary.add(str(item.path), None if target is None else str(target), "failed" if error else "ok",
                        time.perf_counter() - start, error)
        videos = sum(is_video_path(item.path) for item in files)
        kind = "image(s)" if not videos else "video(s)" if videos == len(files) else "file(s)"
        factor = f"{outscale:g}" if outscale is not None else upscaler.scale
        verbosity.say(f"upscaled {written} of {written + failures} {kind} x{factor} into "
                      f"{display(out_dir)}/ ({upscaler.description})")
    if json_path is not None:
        summary.write(json_path)
    if failures:
        sys.exit(1)


def choose_variant(engine: Path, variant: str | None, runner: RunnerConfig, verbosity: Verbosity) -> str | None:
    """``--variant`` when given; else, for an artifact folder, the variant ``dyconvsr-check --tune`` measured
    fastest on this machine (runtime/tuning.py), or the manifest's default when it has not been tuned here."""
    if variant is not None or not engine.is_dir():
        return variant
    chosen, why = tuned_variant(engine, runner.threads)
    if chosen is not None and all(v.file != chosen for v in read_manifest(engine).variants):
        chosen, why = None, f"the tuned {chosen!r} is not in this artifact; run dyconvsr-check ARTIFACT --tune"
    verbosity.detail(f"engine: {chosen or 'the manifest default'} ({why})")
    return chosen


def open_upscaler(engine: Path, variant: str | None, runner: RunnerConfig, **options) -> Upscaler:
    """The Upscaler, loaded; a ``--variant`` this machine cannot run says why and what would run instead."""
    upscaler = Upscaler(engine, variant=variant, config=runner, **options)
    try:
        return upscaler.__enter__()
    except BackendUnavailable as exc:
        upscaler.close()
        if variant is None or not engine.is_dir() or runner.gpu is not None:
            raise  # with --gpu, what runs instead is no CPU file: the reason alone
        fallback, _ = tuned_variant(engine, runner.threads)
        instead = fallback if fallback and fallback != variant else read_manifest(engine).default_variant
        raise UserError(f"--variant {variant} cannot run here: {exc}; without --variant this machine runs "
                        f"{instead}") from None


if __name__ == "__main__":
    main()
