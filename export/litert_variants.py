"""The LiteRT files of an artifact: the mobile lowering at fixed LR shapes, fp32 / fp16 weights / full INT8,
each with its fixed-shape tiling counterpart, every one proven through runtime's LiteRT runner.

Per shape (H, W): ``model.mobile.<H>x<W>[.<p>].tflite`` (one input, the whole fixed-size image),
``tiling/mobile.<H>x<W>.stats.tflite`` (fp32) and ``tiling/mobile.<H>x<W>[.<p>].main.tflite``, which
``runtime.fixed_tiling`` runs for images of any other size. Reduced precisions are kept only above the
catalogue's PSNR floor on the reference of their shape; INT8 is calibrated on the held-out calibration
images (export/precision.py) cropped to the shape, with their own whole-image statistics.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime import catalogue, isa_proof
from runtime.fixed_tiling import spans, upscale_fixed_tiled
from runtime.manifest import Parity, Tiling, Variant
from runtime.parity import compare_all
from runtime.runners import RunnerConfig, make_runner

from .litert_convert import convert, litert_unavailable, to_fp16_weights, to_int8
from .mobile import NOTE, VALID_INPUT, MobileDyConvSR, MobileTilingMain, MobileTilingStats, check_mobile_shape
from .parity import engine_parity
from .references import REFERENCE_SPECS, center_crop, skimage_rgb
from .variants import ReferenceSet, isa_checked

LITERT_RUNNER = RunnerConfig(backend="litert", threads=2)
# A held-out image for the multi-tile proof (not a reference crop, not a calibration image).
CERTIFY_IMAGE = "astronaut"
CALIBRATION_CROPS = 3  # per calibration image


def litert_variants(
    model: nn.Module, folder: Path, shapes: list[tuple[int, int]], precisions: tuple[str, ...], refs: ReferenceSet,
    base: Tiling | None,
) -> tuple[list[Variant], dict[str, str]]:
    """Every LiteRT file for every shape, or the one-line reason each is skipped."""
    variants, skipped = [], {}
    for height, width in shapes:
        for precision in precisions:
            file = catalogue.litert_file(height, width, precision)
            reason = litert_unavailable(precision) or _unsupported(model, height, width, base)
            if reason:
                skipped[file] = reason
                continue
            variant, why = _build(model, folder, (height, width), precision, refs, base)
            if variant is None:
                skipped[file] = why
            else:
                variants.append(variant)
    return variants, skipped


def _unsupported(model: nn.Module, height: int, width: int, base: Tiling | None) -> str | None:
    try:
        check_mobile_shape(height, width)
        MobileDyConvSR(model, (height, width))
        if base is not None:  # the fixed-size tiles must hold the halo on both sides
            for size in (height, width):
                spans(size + 1, size, base.halo, base.align)
    except Exception as exc:  # UserError from the lowering: says why in one line
        return str(exc)
    return None


def _feeds(mobile: MobileDyConvSR, image: np.ndarray, tiling: bool) -> dict[str, np.ndarray]:
    """A whole-image feed (input [, pooled_0, valid]) for one (1, 3, H, W) image."""
    x = torch.from_numpy(image)
    if not tiling:
        return {"input": image}
    with torch.no_grad():
        pooled = mobile.features(x)[1].mean(dim=(2, 3)).numpy()
    valid = np.ones((1, 1, image.shape[2] // 2, image.shape[3] // 2), dtype=np.float32)
    return {"input": image, "pooled_0": pooled, VALID_INPUT: valid}


def _files(height: int, width: int, precision: str = "fp32") -> dict[str, str]:
    """The file of each graph (model, stats, main) of a shape and precision (stats: always the fp32 one)."""
    stats, main = catalogue.litert_tiling_files(height, width, precision)
    return {"model": catalogue.litert_file(height, width, precision), "stats": stats, "main": main}


def _graphs(mobile: MobileDyConvSR) -> dict[str, nn.Module]:
    graphs = {"model": mobile}
    if mobile.dynamic:
        graphs.update(stats=MobileTilingStats(mobile), main=MobileTilingMain(mobile))
    return graphs


def _examples(name: str, mobile: MobileDyConvSR) -> dict[str, torch.Tensor]:
    height, width = mobile.shape
    example = {"input": torch.rand(1, 3, height, width)}
    if name == "stats":
        return {**example, VALID_INPUT: torch.ones(1, 1, height // 2, width // 2)}
    if name == "main":
        return {**example, "pooled_0": torch.rand(1, mobile.fc1.shape[1]),
                VALID_INPUT: torch.ones(1, 1, height // 2, width // 2)}
    return example


def calibration_images() -> list[tuple[str, np.ndarray]]:
    """The INT8 calibration photos: the embedded train split without the reference images and the tiling
    proof's image (export/references.py), so neither the parity references nor the held-out val split
    (``train.data.EMBEDDED_VAL``) is calibrated on. (export/precision.py's six low-contrast images, camera
    from val among them, left the input and most activations clipped on real photos: 44.5 dB, -0.13 dB.)"""
    from train.data import embedded_images

    excluded = {name for spec in REFERENCE_SPECS for name in spec.images} | {CERTIFY_IMAGE}
    return [(image.name, image.hr.astype(np.float32) / np.float32(255.0))
            for image in embedded_images("train") if image.name not in excluded]


def _calibration(mobile: MobileDyConvSR, name: str,
                 images: list[tuple[str, np.ndarray]] | None = None) -> list[dict[str, np.ndarray]]:
    """Feeds of ``images`` (default :func:`calibration_images`), CALIBRATION_CROPS crops of the shape from
    each along its diagonal (with its own statistics for main); min/max ranges over all of them."""
    feeds = []
    for _, image in calibration_images() if images is None else images:
        room = max(0, min(image.shape[0] - mobile.shape[0], image.shape[1] - mobile.shape[1]))
        for j in range(CALIBRATION_CROPS):
            offset = j * room // (CALIBRATION_CROPS - 1)
            crop = center_crop(image[offset:, offset:], *mobile.shape)[None]
            feeds.append(_feeds(mobile, crop, name == "main"))
    return feeds


def _build(model: nn.Module, folder: Path, shape: tuple[int, int], precision: str, refs: ReferenceSet,
           base: Tiling | None) -> tuple[Variant | None, str]:
    mobile = MobileDyConvSR(model, shape, pooled=True).eval()
    height, width = shape
    files = _files(height, width, precision)
    fp32_files = _files(height, width)
    stats_file, main_file = files["stats"], files["main"]
    (folder / "tiling").mkdir(exist_ok=True)
    notes: dict = {"lowering": NOTE}
    images = calibration_images() if precision == "int8" else []
    for name, module in _graphs(mobile).items():
        fp32 = folder / fp32_files[name]
        if not fp32.is_file():
            notes.update(convert(module, _examples(name, mobile), fp32))
        target = folder / files[name]
        if precision == "fp16" and name != "stats":
            notes.update(to_fp16_weights(fp32, target))
        elif precision == "int8" and name != "stats":
            notes.update(to_int8(fp32, target, _calibration(mobile, name, images), [n for n, _ in images]))
    inputs, outputs = refs.usable(1, [1, 3, height, width])
    path = folder / files["model"]
    parity = engine_parity(path, inputs, outputs, catalogue.tolerance(precision), 1, LITERT_RUNNER)
    lower_isa = None  # why a reduced-precision file fails at a lower x86 level (XNNPACK under qemu), if it does
    if parity and precision == "int8":
        notes["isa_proof"], lower_isa = isa_checked(path, "litert", inputs, outputs, 1, LITERT_RUNNER, parity)
    elif parity and precision == "fp16":
        notes["isa_proof"] = isa_proof.record(parity, [], "litert")  # this CPU's level only
    tiling = None
    if mobile.dynamic and base is not None:
        tiling = Tiling(stats=[stats_file], main=main_file, pooled_inputs=["pooled_0"],
                        pooled_channels=list(base.pooled_channels), feature_scale=base.feature_scale,
                        halo=base.halo, align=base.align, valid_input=VALID_INPUT, border=mobile.tile_border)
        tiling.parity = certify_fixed_tiling(folder, tiling, model, precision, refs, shape)
    variant = Variant(
        file=files["model"], kind="litert", strategy="mobile", precision=precision, dynamic_batch=False,
        dynamic_spatial=False, fixed_input_shape=[1, 3, height, width], parity=parity, batch=1, notes=notes,
        source=None if precision == "fp32" else fp32_files["model"], tiling=tiling,
    )
    if parity and lower_isa is None and (tiling is None or tiling.parity):
        return variant, ""
    for name in ("model", "main"):
        if precision != "fp32":
            (folder / files[name]).unlink(missing_ok=True)
    if lower_isa is not None:
        return None, f"{lower_isa} (files removed)"
    failed = parity if not parity else tiling.parity
    return (variant if precision == "fp32" else None,
            f"PSNR {failed.psnr_db:.1f} dB / max|diff| {failed.max_abs_diff:.2g} outside {failed.tolerance} "
            "(files removed)")


def certify_fixed_tiling(folder: Path, tiling: Tiling, model: nn.Module, precision: str,
                         refs: ReferenceSet, shape: tuple[int, int]) -> Parity:
    """runtime.fixed_tiling on the LiteRT tiling graphs of the fixed tile ``shape`` (H, W), against PyTorch:
    the odd-size reference (one overhanging tile) and a held-out crop larger than the tile (several tiles,
    every border case)."""
    height, width = shape
    crop = center_crop(skimage_rgb(CERTIFY_IMAGE), height + 2 * tiling.halo + 7, width + tiling.halo + 5)[None]
    with torch.no_grad():
        big = model(torch.from_numpy(crop)).numpy()
    images, references = [refs.inputs[1], crop], [refs.outputs[1], big]
    with contextlib.ExitStack() as stack:
        stats = [stack.enter_context(make_runner(folder / name, LITERT_RUNNER)) for name in tiling.stats]
        main = stack.enter_context(make_runner(folder / tiling.main, LITERT_RUNNER))
        tiled = [np.stack([upscale_fixed_tiled(np.ascontiguousarray(x.transpose(1, 2, 0)), tiling, stats, main,
                                               int(model.scale)) for x in batch]).transpose(0, 3, 1, 2)
                 for batch in images]
    return compare_all(tiled, references, catalogue.tolerance(precision))

