"""``python -m runtime.infer ARTIFACT_OR_ENGINE INPUT... -o OUT_DIR``: upscale image files.

Bad inputs never stop the batch: each gets one ``error: <file>: <reason>`` line on stderr, the
other files are still written, nothing partial is left on disk, and the exit code is 1.
Problems with the command itself (engine, options) exit 2 before any file is touched.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .errors import UserError, cli_errors
from .images import check_savable, output_format, read_picture, save_picture
from .inputs import expand_inputs, output_path
from .runners import BACKENDS, RunnerConfig
from .upscaler import DEFAULT_TILE, Upscaler


def _say(message: str, quiet: bool = False) -> None:
    if not quiet:
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("engine", metavar="ARTIFACT_OR_ENGINE", type=click.Path(exists=True, path_type=Path))
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("upscaled"),
              show_default=True, help="Folder for the results (created if missing).")
@click.option("--format", "fmt", default="png", show_default=True, help="Output format: png, jpg, webp, tiff or bmp.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (refused by default).")
@click.option("--variant", default=None, help="Engine file inside the artifact folder (default: the manifest's default).")
@click.option("--tile", type=click.IntRange(min=0), default=DEFAULT_TILE, show_default=True,
              help="Largest input tile side in pixels; bigger images are tiled seamlessly (0 = never tile).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Tiles per engine call.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True, help="Intra-op threads (0 = library default).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="auto: .plan -> TensorRT, .onnx/.ort -> ONNX Runtime, .xml (OpenVINO IR) -> OpenVINO; openvino needs the optional extra.")
@click.option("--provider", default="auto", show_default=True,
              help="ONNX Runtime providers in priority order, e.g. 'tensorrt,cuda,cpu', or an OpenVINO device (CPU, GPU, NPU).")
@click.option("--strict/--no-strict", default=None,
              help="Fail if the named provider is not the one running (default: on whenever --provider is given).")
@click.option("--precision", default=None, help="OpenVINO inference precision hint: f32, bf16 or f16.")
@click.option("--min-size", type=click.IntRange(min=1), default=1, show_default=True, help="Refuse images with a side smaller than this.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Decompression-bomb limit in pixels (default: Pillow's, about 89 million).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summary; errors are still printed.")
@cli_errors
def main(engine: Path, inputs: tuple[str, ...], out_dir: Path, fmt: str, overwrite: bool, variant: str | None,
         tile: int, batch: int, threads: int, backend: str, provider: str, strict: bool | None,
         precision: str | None, min_size: int, max_pixels: int | None, quiet: bool) -> None:
    """Upscale every INPUT (image files, folders searched recursively, or glob patterns) with the
    engine in ARTIFACT_OR_ENGINE (an artifact folder written by `python -m export`, or one engine
    file) and write OUT_DIR/<name>_x<scale>.<format>.

    Any size works: the output is exactly scale x the input. Images larger than --tile are
    processed in overlapping tiles whose dynamic-convolution attention is computed over the whole
    image first, so the result equals an untiled run and memory stays bounded by the tile size.
    Grayscale and 16-bit grayscale stay so, alpha is upscaled and kept, palette and CMYK images
    become RGB(A), EXIF orientation is applied.

    Example: python -m runtime.infer artifacts/dyconvsr photos/ -o upscaled/
    """
    suffix, pil_format = output_format(fmt)
    config = RunnerConfig(backend=backend, provider=provider, threads=threads, strict=strict, precision=precision)
    files, problems = expand_inputs(list(inputs))
    for problem in problems:
        _say(f"error: {problem}")
    failures = len(problems)
    written = 0
    with Upscaler(engine, variant=variant, config=config, tile=tile, batch=batch, min_size=min_size,
                  progress=not quiet) as upscaler:
        scale = upscaler.scale
        claimed: dict[Path, Path] = {}
        from tqdm import tqdm

        for item in tqdm(files, unit="image", disable=quiet or len(files) < 2, desc="images"):
            target = output_path(out_dir, item, scale, suffix)
            try:
                if target in claimed:
                    raise UserError(f"output {target} would also be written from {claimed[target]}; rename one input")
                claimed[target] = item.path
                if target.exists() and not overwrite:
                    raise UserError(f"{target} exists; pass --overwrite to replace it")
                picture = read_picture(item.path, max_pixels)
                check_savable(picture, pil_format)
                save_picture(upscaler.upscale_picture(picture), target, pil_format)
                written += 1
            except UserError as exc:
                failures += 1
                _say(f"error: {item.path}: {exc}")
            except MemoryError:
                failures += 1
                _say(f"error: {item.path}: out of memory; try a smaller --tile")
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
                failures += 1
                _say(f"error: {item.path}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        _say(f"upscaled {written} of {written + failures} image(s) x{scale} into {out_dir}/ "
             f"({upscaler.description})", quiet)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
