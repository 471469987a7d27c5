"""``python -m benchmarks.front``: the README's opening picture, a before/after crop made by the packaged engine.

The bundled sample (assets/astronaut_crop.png) upscaled x2 by the wheel's ``dyconvsr_x2`` (model.onnx on ONNX Runtime,
what ``dyconvsr-upscale dyconvsr_x2 photo.jpg`` runs) beside the MATLAB-compatible bicubic of the same pixels, both
cropped at the window with the most detail and shown at 4x (nearest, so the pixels are the outputs' own). Under the
panels: the command, the engine file's sha256, the CPU and the date. The PNG's text chunk ``engine_sha256`` records
which engine made it; tests/test_packaging.py fails when it is not the packaged one (rerun ``make engines``).
"""
from __future__ import annotations

import datetime
from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

from runtime.cli_options import NamedPath
from runtime.cpu import cpu_info
from runtime.errors import UserError, cli_errors, writing
from runtime.manifest import read_manifest
from runtime.packaged import packaged_models
from runtime.resize import imresize
from runtime.runners import RunnerConfig
from runtime.upscaler import Upscaler

from .visual import textured_crop

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "assets" / "astronaut_crop.png"
MODEL = "dyconvsr_x2"
CROP = 96  # output pixels a side
ZOOM = 4
CAPTION_HEIGHT = 58
COMMAND = f"dyconvsr-upscale {MODEL} photo.jpg"


def front_picture(sample: Path = SAMPLE, model: str = MODEL) -> tuple[Image.Image, str]:
    """The picture and the sha256 of the engine file that made it."""
    artifact = packaged_models().get(model)
    if artifact is None:
        raise UserError(f"no packaged {model} (make engines writes engines/{model}.artifact)")
    manifest = read_manifest(artifact)
    engine_sha = manifest.files[manifest.default_variant]
    image = np.asarray(Image.open(sample).convert("RGB"))
    with Upscaler(artifact, variant=manifest.default_variant, config=RunnerConfig(backend="onnxruntime")) as up:
        after = up.upscale_array(image)
        engine = up.choice.engine.name
    before = np.clip(np.rint(imresize(image.astype(np.float64), scale=manifest.scale)), 0, 255).astype(np.uint8)
    top, left = textured_crop(after, CROP)
    window = (slice(top, top + CROP), slice(left, left + CROP))
    side = CROP * ZOOM
    canvas = Image.new("RGB", (2 * side + 8, side + 20 + CAPTION_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    for column, (title, pixels) in enumerate(((f"bicubic x{manifest.scale}", before),
                                              (f"DyConvSR x{manifest.scale} ({engine})", after))):
        crop = Image.fromarray(np.ascontiguousarray(pixels[window])).resize((side, side), Image.Resampling.NEAREST)
        x = column * (side + 8)
        canvas.paste(crop, (x, 20))
        draw.text((x + 2, 4), f"{title}, {CROP}x{CROP} px at {ZOOM}x", fill="black")
    cpu = cpu_info()[0]
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    lines = [f"$ {COMMAND}", f"{sample.name} ({image.shape[1]}x{image.shape[0]}) -> x{manifest.scale}; "
             f"engine sha256 {engine_sha[:12]}; ONNX Runtime CPU", f"{cpu}; generated {date} by python -m "
             "benchmarks.front"]
    for i, line in enumerate(lines):
        draw.text((2, side + 24 + 16 * i), line, fill="black" if i == 0 else "dimgrey")
    return canvas, engine_sha


def engine_of_picture(path: Path) -> str | None:
    """The ``engine_sha256`` a front picture records, or None."""
    with Image.open(path) as image:
        return image.info.get("engine_sha256")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-o", "--output", type=NamedPath(dir_okay=False, path_type=Path), default=Path("reports/front.png"),
              show_default=True, help="PNG to write.")
@cli_errors
def main(output: Path) -> None:
    """Write the README's before/after picture from the packaged dyconvsr_x2 engine."""
    picture, engine_sha = front_picture()
    info = PngImagePlugin.PngInfo()
    info.add_text("engine_sha256", engine_sha)
    with writing(output, "picture"):
        output.parent.mkdir(parents=True, exist_ok=True)
        temporary = output.with_name(f".{output.name}.tmp")
        picture.save(temporary, format="PNG", pnginfo=info)
        temporary.replace(output)
    print(f"wrote {output} ({picture.width}x{picture.height})")


if __name__ == "__main__":
    main(prog_name="python -m benchmarks.front")
