"""LiteRT files of the mobile lowering (export/litert_variants.py) and the LiteRT runner (runtime/runners/litert.py):
fp32 parity and the INT8 floor on references, seamless fixed-size tiling, refusals, and the runner without torch."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("litert_torch", reason="litert-torch not installed (the litert extra)")
pytest.importorskip("ai_edge_quantizer", reason="ai-edge-quantizer not installed (the litert extra)")
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed (the litert-runtime extra)")

from export.litert_convert import to_int8
from export.litert_variants import _calibration, litert_variants
from export.lowering import lower
from export.mobile import MobileDyConvSR
from export.references import center_crop, skimage_rgb
from export.tiling import geometry
from export.variants import ReferenceSet
from runtime import catalogue
from runtime.errors import UserError
from runtime.fixed_tiling import upscale_fixed_tiled
from runtime.manifest import Tiling
from runtime.runners import RunnerConfig, make_runner
from test_runtime_fixtures import BLOCK_TORCH
from train.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
SHAPE = (36, 48)  # more than twice the halo (14) a side; small, so conversion takes seconds
CONFIG = RunnerConfig(backend="litert", threads=2)


def tiling_and_references(model) -> tuple[Tiling, list[np.ndarray], list[np.ndarray]]:
    """The dynamic tiling split's geometry (what LiteRT's fixed tiles copy), and two reference crops with outputs."""
    geo = geometry(lower(model, "stacked"), 2)
    base = Tiling(["tiling/stats_0.onnx"], "tiling/main.onnx", ["pooled_0"], geo.pooled_channels,
                  geo.feature_scale, geo.halo, geo.align)
    inputs = [center_crop(skimage_rgb("astronaut"), *SHAPE)[None], center_crop(skimage_rgb("chelsea"), 35, 45)[None]]
    with torch.no_grad():
        outputs = [model(torch.from_numpy(x)).numpy() for x in inputs]
    return base, inputs, outputs


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    model = load_checkpoint(REPO / "weights" / "dyconvsr_x2.json").model.eval()
    base, inputs, outputs = tiling_and_references(model)
    folder = tmp_path_factory.mktemp("litert")
    variants, skipped = litert_variants(model, folder, [SHAPE, (35, 45)], ("fp32", "int8"),
                                        ReferenceSet(inputs, outputs), base)
    # The INT8 file whatever its PSNR (the builder deletes one below the floor), for the runner's tests.
    to_int8(folder / catalogue.litert_file(*SHAPE), folder / "any.int8.tflite",
            _calibration(MobileDyConvSR(model, SHAPE), "model"), ["calibration"])
    return model, folder, {v.precision: v for v in variants}, skipped, inputs, outputs


def test_fp32_parity_and_int8_floor_on_the_references(built) -> None:
    _, folder, variants, skipped, _, _ = built
    assert variants["fp32"].parity.max_abs_diff <= 1e-4 and variants["fp32"].tiling.parity.max_abs_diff <= 1e-4
    int8_file = catalogue.litert_file(*SHAPE, "int8")
    if "int8" in variants:  # kept only above the floor, on the reference and tiled
        int8 = variants["int8"]
        assert int8.parity.psnr_db >= catalogue.MIN_PSNR_DB["int8"] and int8.tiling.parity
        assert int8.source == catalogue.litert_file(*SHAPE) and (folder / int8.file).is_file()
    else:  # at this tiny tile INT8 measures about 37.5 dB: below the 40 dB floor, so it is removed, with the reason
        assert "outside {'min_psnr_db': 40.0} (files removed)" in skipped[int8_file]
        assert not (folder / int8_file).exists()
    assert "even" in skipped[catalogue.litert_file(35, 45)]  # odd shapes: one line, no file


def test_int8_runner_quantises_from_the_files_own_grid(built) -> None:
    _, folder, variants, _, inputs, outputs = built
    with make_runner(folder / "any.int8.tflite", CONFIG) as runner:
        assert runner.integer and runner.inputs[0].dtype == np.float32
        grid = runner.grids["input"]
        out = runner.infer(inputs[0])
    assert grid.dtype == np.int8 and grid.scale > 0
    assert np.array_equal(grid.quantise(np.array([0.0, 1.0, 9.0], np.float32)),
                          np.clip(np.rint(np.array([0.0, 1.0, 9.0]) / grid.scale) + grid.zero, -128, 127))
    psnr = 10 * np.log10(1.0 / np.mean((out - outputs[0]) ** 2))
    assert out.dtype == np.float32 and psnr >= 30.0  # dequantised floats near the reference, not the int8 grid


def test_int8_ranges_cover_every_calibration_feed(built) -> None:
    # min/max over all feeds, not ai-edge-quantizer's moving average (which clipped the input and the residual).
    model, folder, *_ = built
    feeds = [feed["input"] for feed in _calibration(MobileDyConvSR(model, SHAPE), "model")]
    with make_runner(folder / "any.int8.tflite", CONFIG) as runner:
        grid = runner.grids["input"]
    low, high = (-128 - grid.zero) * grid.scale, (127 - grid.zero) * grid.scale
    assert low <= min(f.min() for f in feeds) + grid.scale and high >= max(f.max() for f in feeds) - grid.scale


@pytest.mark.parametrize("size", [(35, 45), (83, 101)])
def test_fixed_size_tiles_are_seamless(built, size: tuple[int, int]) -> None:
    model, folder, variants, _, _, _ = built
    tiling = variants["fp32"].tiling
    image = center_crop(skimage_rgb("coffee"), *size)
    with make_runner(folder / tiling.stats[0], CONFIG) as stats, make_runner(folder / tiling.main, CONFIG) as main:
        tiled = upscale_fixed_tiled(np.ascontiguousarray(image.transpose(1, 2, 0)), tiling, [stats], main, 2)
    with torch.no_grad():
        whole = model(torch.from_numpy(image[None]))[0].numpy().transpose(1, 2, 0)
    assert np.abs(tiled - whole).max() <= 1e-4


def test_refuses_wrong_shape_dtype_and_file(built, tmp_path) -> None:
    _, folder, variants, _, inputs, _ = built
    with make_runner(folder / variants["fp32"].file, CONFIG) as runner:
        with pytest.raises(UserError, match="size of axis 3 = 48"):
            runner.infer(np.zeros((1, 3, 36, 50), dtype=np.float32))
        with pytest.raises(UserError, match="must be float32; got float64"):
            runner.infer(inputs[0].astype(np.float64))
    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(UserError, match="LiteRT cannot load it"):
        make_runner(fake, CONFIG).open()
    with pytest.raises(UserError, match="cannot run model.tflite"):
        make_runner(fake, RunnerConfig(backend="onnxruntime"))


SCRIPT = BLOCK_TORCH + """
import numpy as np
from runtime.runners import RunnerConfig, make_runner
from runtime.fixed_tiling import upscale_fixed_tiled
from runtime.manifest import Tiling
folder, x = sys.argv[1], np.load(sys.argv[2])
with make_runner(folder + '/' + sys.argv[3], RunnerConfig(threads=1)) as runner:
    np.save(sys.argv[4], runner.infer(x))
print('torch' in sys.modules and sys.modules['torch'] is None)
"""


def test_litert_runner_without_torch(built, tmp_path) -> None:
    _, folder, variants, _, inputs, outputs = built
    np.save(tmp_path / "x.npy", inputs[0])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(tmp_path / "x.npy"),
                             variants["fp32"].file, str(tmp_path / "y.npy")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert np.abs(np.load(tmp_path / "y.npy") - outputs[0]).max() <= 1e-4


@pytest.mark.parametrize("name", ["dyconvsr_authors", "dyconvsr_plus"])
def test_imported_and_plus_networks_reach_litert_with_seamless_fixed_tiles(name: str, tmp_path) -> None:
    """The authors' function (reflect-padded blur, interleaved skip, temperature 30) and DyConvSR+ (head GELU):
    fp32 LiteRT at parity, and fixed tiles that overhang the image filled as the blur pads (reflect or edge)."""
    from train.models import create_model

    model = create_model(name, scale=2).eval()
    model.load_state_dict(load_checkpoint(REPO / "weights" / "dyconvsr_x2.json").model.state_dict(), strict=False)
    base, inputs, outputs = tiling_and_references(model)
    variants, skipped = litert_variants(model, tmp_path, [SHAPE], ("fp32",), ReferenceSet(inputs, outputs), base)
    assert not skipped and len(variants) == 1 and variants[0].parity
    tiling = variants[0].tiling
    assert tiling.border == ("reflect" if name == "dyconvsr_authors" else "edge") and tiling.parity
    for size in ((83, 101), (31, 41)):  # several tiles; one tile that overhangs the image at the bottom and right
        image = np.ascontiguousarray(center_crop(skimage_rgb("coffee"), *size).transpose(1, 2, 0))
        with make_runner(tmp_path / tiling.stats[0], CONFIG) as stats, \
                make_runner(tmp_path / tiling.main, CONFIG) as main:
            tiled = upscale_fixed_tiled(image, tiling, [stats], main, 2)
            edged = upscale_fixed_tiled(image, dataclasses.replace(tiling, border="edge"), [stats], main, 2)
        with torch.no_grad():
            whole = model(torch.from_numpy(image.transpose(2, 0, 1)[None]))[0].numpy().transpose(1, 2, 0)
        assert np.abs(tiled - whole).max() <= 1e-4, size
        if name == "dyconvsr_authors" and size == (31, 41):  # the fill matters: edge where the blur reflects is wrong
            assert np.abs(edged - whole).max() > 1e-4  # outside the fp32 tolerance
