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
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from runtime.errors import UserError, quiet_libraries

from .precision import calibration_batches

# OpenVINO op types (after its ONNX frontend) left in float.
FLOAT_TYPES = ("GroupConvolution", "Sigmoid", "Softmax", "MatMul", "ReduceMax", "ReduceMean",
               "Add", "Multiply", "Subtract", "Divide")
# "/Conv" is the fused repeat skip (export/fusion.py), a 0/1 conv that carries the input image to
# the output: on an 8-bit activation grid it cost 0.13 dB Y-PSNR (0.16 -> 0.03 dB lost when kept float).
FLOAT_PATTERNS = (".*/fc[12]/.*", ".*spatial_attention.*", "^/Conv$")
CALIBRATION = {"crops_per_image": 2, "size": 96}


def recipe() -> dict[str, object]:
    return {"tool": "nncf.quantize (OpenVINO backend)", "quantised": "feature Conv inputs and weights",
            "float_types": list(FLOAT_TYPES), "float_patterns": list(FLOAT_PATTERNS), **CALIBRATION}


def openvino_unavailable(precision: str) -> str | None:
    """Why the OpenVINO IR of ``precision`` cannot be written here, or None when it can."""
    needed = ("openvino", "nncf") if precision == "int8" else ("openvino",)
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        extra = "openvino-int8" if precision == "int8" else "openvino"
        return f"{' and '.join(missing)} not installed (pip install 'dyconvsr-toolchain[{extra}]')"
    return None


def quantize_openvino(source: str | Path):  # returns an openvino.Model
    """The fp32 ONNX at ``source`` read by OpenVINO and quantised to INT8 with NNCF."""
    reason = openvino_unavailable("int8")
    if reason:
        raise UserError(f"OpenVINO INT8: {reason}")
    import nncf
    import openvino as ov

    _nncf_logs_like_the_project()
    model = ov.Core().read_model(str(source))
    data: list[np.ndarray] = list(calibration_batches(CALIBRATION["crops_per_image"], CALIBRATION["size"]))
    scope = nncf.IgnoredScope(types=list(FLOAT_TYPES), patterns=list(FLOAT_PATTERNS), validate=False)
    with quiet_libraries():  # NNCF's rich progress bar goes to stdout and has no off switch in every version
        return nncf.quantize(model, nncf.Dataset(data), subset_size=len(data), ignored_scope=scope)


def _nncf_logs_like_the_project() -> None:
    """NNCF installs its own stdout handler at INFO on import (30+ lines per quantisation); send its
    records through the root logger instead: stderr, WARNING unless the command ran with -v
    (runtime/cli_options.py), the level any library gets."""
    logger = logging.getLogger("nncf")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def to_openvino_int8(source: str | Path, target: str | Path) -> dict[str, object]:
    """Write the INT8 OpenVINO IR (``target`` .xml beside its .bin); returns the recipe."""
    import openvino as ov

    ov.save_model(quantize_openvino(source), str(target), compress_to_fp16=False)
    return recipe()


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
