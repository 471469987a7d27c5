"""``python -m runtime.infer ARTIFACT_OR_ENGINE INPUT... -o OUT_DIR``: upscale image files.

Bad inputs never stop the batch: each gets one ``error: <file>: <reason>`` line on stderr (file
names escaped), the other files are still written, nothing partial is left on disk, and the exit
code is 1. Problems with the command itself (engine, options) exit 2 before any file is touched.
No existing file is replaced without --overwrite, not even one another process writes meanwhile,
and no input is ever written over; SIGTERM/Ctrl-C remove the file being written (exit 143/130),
and temp files of killed runs are removed from a folder before it is written into.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from .cli_options import ArtifactPath, NamedPath, Verbosity, runner_options, verbosity_options
from .errors import BackendUnavailable, UserError, cli_errors, display, output_exists, quiet_libraries, writing
from .files import remove_stale_temps
from .images import check_savable, read_picture, save_picture
from .inputs import InputFile, expand_inputs
from .manifest import read_manifest
from .naming import Naming, output_size, rescale
from .progress import progress_bar, status
from .run_summary import RunSummary
from .runners import RunnerConfig
from .tuning import tuned_variant
from .upscaler import DEFAULT_TILE, VIDEO_TILE, Upscaler, tile_for
from .video.cli import VideoSettings, video_options
from .video.formats import is_video_path


class _OwnInputs:
    """This run's input files, to refuse writing an output onto one of them (which would also
    make a later input read the clobbered file)."""

    def __init__(self, files: list[InputFile]) -> None:
        self.paths = {os.path.realpath(f.path) for f in files} | {os.path.abspath(f.path) for f in files}
        self.ids: set[tuple[int, int]] = set()
        for f in files:
            try:
                stat = os.stat(f.path)
            except OSError:
                continue
            self.ids.add((stat.st_dev, stat.st_ino))

    def __contains__(self, target: Path) -> bool:
        if os.path.realpath(target) in self.paths or os.path.abspath(target) in self.paths:
            return True
        try:
            stat = os.stat(target)
        except OSError:
            return False
        return (stat.st_dev, stat.st_ino) in self.ids


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("engine", metavar="ARTIFACT_OR_ENGINE", type=ArtifactPath())
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", type=NamedPath(file_okay=False, path_type=Path), default=Path("upscaled"),
              show_default=True, help="Folder for the results (created if missing).")
@click.option("--format", "--ext", "fmt", default="png", show_default=True,
              help="Output format: png, jpg, webp, tiff, bmp, or auto (the input's own format where it is one of "
                   "these, else png).")
@click.option("--suffix", default=None,
              help="Output name: <name>_<suffix>.<ext> (default x<scale>, or x<outscale> with -s; '' = <name>.<ext>).")
@click.option("-s", "--outscale", type=float, default=None,
              help="Output size factor, any number up to 16 (default: the network's scale): the network runs, then "
                   "a MATLAB-compatible bicubic resize gives round(factor x input) pixels a side. Images only.")
@click.option("--json", "json_path", type=NamedPath(dir_okay=False, path_type=Path), default=None,
              help="Also write a JSON summary (engine, and per input: output, status, seconds, error) to this file; "
                   "'-' = stdout.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (refused by default).")
@click.option("--variant", default=None,
              help="Engine file inside the artifact folder (default: the fastest one `dyconvsr-check ARTIFACT "
                   "--tune` proved on this machine, else the manifest's default; -v says which and why).")
@click.option("--tile", type=click.IntRange(min=0), default=None,
              help=f"Largest input tile side in pixels; bigger images are tiled seamlessly (0 = never tile). "
                   f"Default {DEFAULT_TILE}, for video frames {VIDEO_TILE}.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Tiles per engine call.")
@click.option("--min-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Refuse images with a side smaller than this.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Decompression-bomb limit in pixels (default: Pillow's, about 89 million).")
@click.option("--verify", is_flag=True,
              help="First check the sha256 of every file the run uses against the manifest (exit 2 on a mismatch).")
@cli_errors
@runner_options
@video_options
@verbosity_options
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
        batch_job = _Batch(upscaler, out_dir, naming, overwrite, max_pixels, _OwnInputs(files), video,
                           progress=not verbosity.quiet)
        summary.engine = upscaler.description
        for item in progress_bar(files, quiet=verbosity.quiet or len(files) < 2, unit="image", desc="images"):
            start, target, error = time.perf_counter(), None, None
            try:
                target = batch_job.write(item)
                written += 1
                verbosity.detail(f"{display(item.path)} -> {display(target)}")
            except UserError as exc:
                error = str(exc)
            except MemoryError:
                error = "out of memory; try a smaller --tile"
            except Exception as exc:  # one bad file must not stop the batch
                error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
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


@dataclass
class _Batch:
    """Writes one output per input; raises UserError (naming the reason) for a file it refuses."""

    upscaler: Upscaler
    out_dir: Path
    naming: Naming
    overwrite: bool
    max_pixels: int | None
    own_inputs: _OwnInputs
    video: VideoSettings = field(default_factory=VideoSettings)
    progress: bool = False
    claimed: dict[Path, Path] = field(default_factory=dict)
    swept: set[Path] = field(default_factory=set)

    def write(self, item: InputFile) -> Path:
        is_video = is_video_path(item.path)
        if is_video and self.naming.outscale is not None:
            raise UserError("-s/--outscale applies to images; a video is written at the network's scale "
                            f"x{self.upscaler.scale}")
        image_suffix, pil_format = self.naming.format_for(item.path)
        suffix = (self.video.suffix or "frames") if is_video else image_suffix
        target = self.naming.output_path(self.out_dir, item, self.upscaler.scale, suffix)
        target = target.with_suffix("") if is_video and not self.video.suffix else target  # a frames folder
        if target in self.claimed:
            raise UserError(f"output {display(target)} would also be written from "
                            f"{display(self.claimed[target])}; rename one input")
        self.claimed[target] = item.path
        if target in self.own_inputs:
            raise UserError(f"output {display(target)} is one of this run's inputs, and inputs are never "
                            "written over; choose another -o folder")
        if os.path.lexists(target) and not self.overwrite:
            raise output_exists(target)
        if is_video and not self.video.suffix and os.path.lexists(target):
            from .video.encode import foreign_entries

            foreign = foreign_entries(target)
            foreign += [n for n in os.listdir(target) if target / n in self.own_inputs] if not foreign else []
            if foreign:  # --overwrite replaces a frames folder this tool wrote, never one holding anything else
                raise UserError(f"{display(target)} holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} "
                                f"that are not frames this tool wrote, or are inputs (e.g. {display(foreign[0])}); "
                                "it is not replaced: move them away or choose another -o folder")
        if target.parent not in self.swept:  # temp files of runs that were killed mid-write
            remove_stale_temps(target.parent)
            self.swept.add(target.parent)
        if is_video:
            self.video.write(self.upscaler, item.path, target, self.overwrite, image_suffix, pil_format,
                             self.progress, self.max_pixels)
            return target
        picture = read_picture(item.path, self.max_pixels)
        check_savable(picture, pil_format)
        upscaled = self.upscaler.upscale_picture(picture)
        if self.naming.outscale is not None:
            upscaled = rescale(upscaled, *output_size(*picture.rgb.shape[:2], self.naming.outscale))
        try:
            with writing(display(target), "output"):
                save_picture(upscaled, target, pil_format, replace=self.overwrite)
        except FileExistsError:
            raise output_exists(target, meanwhile=True) from None
        return target


if __name__ == "__main__":
    main()
