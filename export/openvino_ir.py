"""OpenVINO IR variants of the artifact: the fp32 graph as OpenVINO's own format, and INT8 by NNCF
post-training quantisation (INT8 convolutions, everything else in float).

The IR (``.xml`` + ``.bin``) skips OpenVINO's ONNX frontend on the device and is what OpenVINO
deployments ship; runtime/runners/openvino.py runs it.

INT8 recipe (docs/performance.md has the measurements behind it): quantise only the inputs and weights
of the feature convolutions (head, dynamic body, tail, high-frequency). Quantising the elementwise
ops as well (NNCF's default) puts the tail (CBAM multiply, repeat-skip add) on an 8-bit grid just
before the output and costs ~0.1 dB Y-PSNR without saving time; the attention MLP, the blur and
the 7x7 spatial-attention conv are too small to gain from INT8; the fused skip conv carries the
image itself and stays float.

Made to hold on every x86 CPU it may meet (docs/performance.md, "INT8 across ISAs"):

- proven at every ISA level below this CPU's under ``ONEDNN_MAX_CPU_ISA`` (runtime/isa_proof.py), trying
  :data:`WEIGHT_RECIPES` in order: 8-bit weights first, then 7-bit weights everywhere (NNCF
  ``OverflowFix.ENABLE``). Without VNNI (AVX2, AVX-512 without VNNI) oneDNN multiplies u8 x s8 pairs with
  ``vpmaddubsw``, whose 16-bit sums saturate; with 7-bit weights two products can no longer overflow
  (2 * 255 * 64 < 32767). SRCNN x2 with 8-bit weights measured 41 dB on AMX and 23 dB capped to AVX512_CORE.
- activation ranges by min/max over the calibration set, asymmetric (``preset=MIXED``): NNCF's default
  range estimator clips the tails, which cost SRCNN 4 dB.
- the reconstruction layer of the Y-channel networks (the model's ``last_layer``, which writes the image
  itself) and the project's functional convs (colour conversion, repeat skip: ``/Conv``, ``/Conv_1``) in float.
"""
from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from runtime.errors import UserError, quiet_libraries
from runtime.host import install_command

from .precision import calibration_batches

# OpenVINO op types (after its ONNX frontend) left in float.
FLOAT_TYPES = ("GroupConvolution", "Sigmoid", "Softmax", "MatMul", "ReduceMax", "ReduceMean",
               "Add", "Multiply", "Subtract", "Divide")
# On an 8-bit activation grid the fused skip cost 0.13 dB Y-PSNR (0.16 -> 0.03 dB lost when kept float).
# "/Conv", "/Conv_1": the functional convs (no module path) carry the image itself: the fused repeat skip
# (export/fusion.py), a 0/1 conv, and the Y-channel networks' RGB <-> YCbCr conversions.
FLOAT_PATTERNS = (".*/fc[12]/.*", ".*spatial_attention.*", r"^/Conv(_\d+)?$")
CALIBRATION = {"crops_per_image": 2, "size": 96}
# Weight grids tried in this order (export/variants.py keeps the first that holds on every ISA level reached).
WEIGHT_RECIPES = ("8bit", "7bit")


def float_patterns(keep_float: Sequence[str] = ()) -> list[str]:
    """The NNCF ignored-scope patterns: :data:`FLOAT_PATTERNS` plus every node of the modules ``keep_float``."""
    return [*FLOAT_PATTERNS, *(f".*/{re.escape(name)}/.*" for name in keep_float)]


def recipe(keep_float: Sequence[str] = (), weights: str = "7bit") -> dict[str, object]:
    grid = ("int8 per-channel, 7-bit range (overflow_fix: no 16-bit saturation without VNNI)" if weights == "7bit"
            else "int8 per-channel, full 8-bit range")
    return {"tool": "nncf.quantize (OpenVINO backend)", "quantised": "feature Conv inputs and weights",
            "weights": grid, "weight_recipe": weights,
            "activations": "uint8/int8 asymmetric, min/max over the calibration set (preset MIXED)",
            "float_types": list(FLOAT_TYPES), "float_patterns": float_patterns(keep_float), **CALIBRATION}


def openvino_unavailable(precision: str) -> str | None:
    """Why the OpenVINO IR of ``precision`` cannot be written here, or None when it can."""
    needed = ("openvino", "nncf") if precision == "int8" else ("openvino",)
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        extra = "openvino-int8" if precision == "int8" else "openvino"
        return f"{' and '.join(missing)} not installed ({install_command(extra)})"
    return None


def quantize_openvino(source: str | Path, keep_float: Sequence[str] = (), weights: str = "7bit"):  # -> openvino.Model
    """The fp32 ONNX at ``source`` read by OpenVINO and quantised to INT8 with NNCF; the modules named in
    ``keep_float`` (their ONNX scope, e.g. ``conv3``) stay float; ``weights`` is one of :data:`WEIGHT_RECIPES`."""
    if weights not in WEIGHT_RECIPES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_RECIPES)}; got {weights!r}")
    reason = openvino_unavailable("int8")
    if reason:
        raise UserError(f"OpenVINO INT8: {reason}")
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    _nncf_logs_like_the_project()
    model = ov.Core().read_model(str(source))
    data: list[np.ndarray] = list(calibration_batches(CALIBRATION["crops_per_image"], CALIBRATION["size"]))
    scope = nncf.IgnoredScope(types=list(FLOAT_TYPES), patterns=float_patterns(keep_float), validate=False)
    advanced = AdvancedQuantizationParameters(
        overflow_fix=OverflowFix.ENABLE if weights == "7bit" else OverflowFix.DISABLE,
        activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)
    with quiet_libraries():  # NNCF's rich progress bar goes to stdout and has no off switch in every version
        return nncf.quantize(model, nncf.Dataset(data), preset=nncf.QuantizationPreset.MIXED,
                             subset_size=len(data), ignored_scope=scope, advanced_parameters=advanced)


def _nncf_logs_like_the_project() -> None:
    """NNCF installs its own stdout handler at INFO on import (30+ lines per quantisation); send its
    records through the root logger instead: stderr, WARNING unless the command ran with -v
    (runtime/cli_options.py), the level any library gets."""
    logger = logging.getLogger("nncf")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def to_openvino_int8(source: str | Path, target: str | Path, keep_float: Sequence[str] = (), weights: str = "7bit"
                     ) -> dict[str, object]:
    """Write the INT8 OpenVINO IR (``target`` .xml beside its .bin); returns the recipe."""
    import openvino as ov

    ov.save_model(quantize_openvino(source, keep_float, weights), str(target), compress_to_fp16=False)
    return recipe(keep_float, weights)


def to_openvino_fp32(source: str | Path, target: str | Path, precision: str = "fp32") -> dict[str, object]:
    """Write the fp32 ONNX at ``source`` as OpenVINO IR (weights kept fp32, not compressed to fp16).

    ``precision="bf16"`` stores the inference precision in the IR (rt_info ``runtime_options``), so
    OpenVINO runs it in bfloat16 wherever the device can (AVX512-BF16/AMX CPUs) without being told;
    "fp32" leaves the choice to the device (OpenVINO picks bf16 by itself on AMX CPUs)."""
    reason = openvino_unavailable("fp32")
    if reason:
        raise UserError(f"OpenVINO IR: {reason}")
    import openvino as ov

    model = ov.Core().read_model(str(source))
    notes: dict[str, object] = {"conversion": "openvino.save_model(compress_to_fp16=False)", "openvino": ov.__version__}
    if precision == "bf16":
        model.set_rt_info("bf16", ["runtime_options", "INFERENCE_PRECISION_HINT"])
        notes["runtime_options"] = {"INFERENCE_PRECISION_HINT": "bf16"}
    ov.save_model(model, str(target), compress_to_fp16=False)
    return notes
