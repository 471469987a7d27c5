"""`python -m train evaluate`: score checkpoints and bicubic on image folders, write the tables."""
from __future__ import annotations

from pathlib import Path

import click

from runtime.cli_options import NamedPath, Verbosity, verbosity_options
from runtime.errors import UserError, cli_errors
from runtime.quality import PROTOCOLS

from .evaluate import embedded_benchmark, evaluate, evaluate_colour_spaces, load_benchmark, load_candidates
from .models.common import SUPPORTED_SCALES
from .tables import TABLES, build_report


@click.command("evaluate")
@click.argument("checkpoints", nargs=-1, type=NamedPath(dir_okay=False))
@click.option("--data", "folders", multiple=True, type=NamedPath(),
              help="Folder of HR images (searched recursively; repeatable). The folder name is the set's "
                   "name (set5 lines up with the paper's Set5). Default: the held-out scikit-image photos.")
@click.option("--scale", "scales", multiple=True, type=click.Choice(["2", "3", "4"]),
              help="Scale to test (repeatable). Default: each checkpoint's own scale; 2, 3 and 4 for "
                   "--table cross-scale. Fixed-scale models (DyConvSR) only run at their own scale.")
@click.option("--table", "table", type=click.Choice(TABLES), default="dyconvsr", show_default=True,
              help="dyconvsr: the DyConvSR paper's Table 1 with its published rows; cross-scale: the "
                   "dynamic-CNN paper's train-scale x test-scale table; colour: its YCbCr/HSV/RGB table "
                   "(Y-channel networks only).")
@click.option("--embedded/--no-embedded", default=None,
              help="Also score the held-out scikit-image photos (default: only when no --data is given).")
@click.option("--bicubic/--no-bicubic", default=True, show_default=True, help="Include the bicubic baseline row.")
@click.option("--protocol", type=click.Choice(sorted(PROTOCOLS)), default="standard", show_default=True,
              help="standard: Y (BT.601) with a border crop of the scale, HR cropped to a multiple of the scale; "
                   "authors: what the DyConvSR authors' eval.py measures (HR to a multiple of 12, no border crop, "
                   "their Y with R and B weights swapped), the protocol of their published figures.")
@click.option("-o", "--out", "out_dir", type=NamedPath(file_okay=False), default="reports/eval", show_default=True,
              help="Folder for <table>.md and <table>.json.")
@cli_errors
@verbosity_options
def evaluate_command(
    checkpoints: tuple[str, ...], folders: tuple[str, ...], scales: tuple[str, ...], table: str,
    embedded: bool | None, bicubic: bool, protocol: str, out_dir: str, verbosity: Verbosity,
) -> None:
    """Score CHECKPOINT... (stems, .json or .safetensors) on folders of HR images.

    Each HR image is cropped to a multiple of the scale, downscaled with a MATLAB-compatible
    bicubic imresize, upscaled by every model on the CPU (whole image, output rounded to 8 bits)
    and scored against the original: PSNR and SSIM on the Y channel (BT.601) with a border crop
    equal to the scale, RGB PSNR, weighted PSNR and MS-SSIM. With no CHECKPOINT only the bicubic
    baseline is scored. The markdown table is printed and written with a JSON copy (per-image
    numbers included) to --out.

    \b
    Examples:
      python -m train evaluate weights/dyconvsr_x2 --data ../shared/data/set5 --data ../shared/data/set14
      python -m train evaluate weights/srcnn_x2 weights/srcnn_x3 weights/srcnn_x4 weights/dcnn \\
          --data ../shared/data/set5 --table cross-scale
      python -m train evaluate weights/srcnn_x3 --data ../shared/data/set5 --table colour --scale 3
    """
    for folder in folders:
        if not Path(folder).is_dir():
            raise UserError(f"--data {folder}: not a folder of images")
    candidates = load_candidates(checkpoints)
    benchmarks = [load_benchmark(f) for f in folders]
    if embedded or (embedded is None and not folders):
        benchmarks.append(embedded_benchmark("val"))
    if not benchmarks:
        raise UserError("nothing to evaluate on: give --data FOLDER or drop --no-embedded")
    chosen = [int(s) for s in scales] or (list(SUPPORTED_SCALES) if table == "cross-scale" else None)
    if table == "colour":
        if protocol != "standard":
            raise UserError("--table colour is measured by the standard protocol only; got --protocol " + protocol)
        results = evaluate_colour_spaces(candidates, benchmarks, chosen, progress=not verbosity.quiet)
    else:
        if not candidates and not bicubic:
            raise UserError("nothing to evaluate: give at least one CHECKPOINT or drop --no-bicubic")
        results = evaluate(candidates, benchmarks, chosen, bicubic=bicubic, progress=not verbosity.quiet,
                           protocol=PROTOCOLS[protocol])
    report = build_report(table, results, protocol)
    md_path, json_path = report.write(out_dir)
    verbosity.echo(report.markdown)
    verbosity.say(f"wrote {md_path} and {json_path}")
