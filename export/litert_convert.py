"""torch module -> LiteRT flatbuffer (litert-torch), and its fp16 / full-INT8 copies (ai-edge-quantizer).

Export side only (the ``litert`` extra); the device runs the files with ``ai-edge-litert`` alone
(runtime/runners/litert.py). Graph inputs are passed by keyword, so the file's ``serving_default``
signature carries the runtime's names (``input``, ``pooled_0``, ``valid``).
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime.files import atomic_write_bytes
from runtime.native_output import library_output_hidden

CONVERTER_PACKAGES = {"litert_torch": "litert-torch", "ai_edge_quantizer": "ai-edge-quantizer",
                      "ai_edge_litert": "ai-edge-litert"}
SIGNATURE = "serving_default"


def litert_unavailable(precision: str = "fp32") -> str | None:
    """Why LiteRT files of ``precision`` cannot be written here (one line), or None."""
    needed = ["litert_torch", "ai_edge_litert"] + ([] if precision == "fp32" else ["ai_edge_quantizer"])
    missing = [CONVERTER_PACKAGES[name] for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return (f"{', '.join(missing)} not installed (pip install 'dyconvsr-toolchain[litert]' for the LiteRT "
                "converters)")
    return None


def convert(module: nn.Module, inputs: dict[str, torch.Tensor], path: Path) -> dict[str, str]:
    """fp32 .tflite of ``module`` traced at the shapes of ``inputs`` (name -> example); returns its notes."""
    with library_output_hidden(), torch.no_grad():
        import litert_torch  # importing TensorFlow's runtime logs from C++ already

        edge = litert_torch.convert(module.eval(), sample_kwargs=inputs)
        with tempfile.TemporaryDirectory() as tmp:
            edge.export(os.path.join(tmp, "model.tflite"))
            atomic_write_bytes(path, Path(tmp, "model.tflite").read_bytes())
    return {"converter": f"litert-torch {_version('litert-torch')}", "layout": "NCHW input and output"}


def to_fp16_weights(source: Path, target: Path) -> dict[str, str]:
    """fp16 weights (cast back to fp32 where they are read), fp32 compute."""
    with library_output_hidden():
        from ai_edge_quantizer import algorithm_manager, qtyping, quantizer

        qt = quantizer.Quantizer(str(source))
        qt.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
        atomic_write_bytes(target, bytes(qt.quantize().quantized_model))
    return {"quantisation": f"ai-edge-quantizer {_version('ai-edge-quantizer')} FLOAT_CASTING: fp16 weights, "
                            "fp32 activations and compute"}


def to_int8(source: Path, target: Path, calibration: Sequence[dict[str, np.ndarray]], images: Sequence[str]) -> dict:
    """Full static INT8 (recipe static_wi8_ai8: int8 per-channel weights, int8 activations, int8 input and
    output), calibrated (min/max) on ``calibration`` feeds."""
    with library_output_hidden():
        from ai_edge_quantizer import quantizer, recipe

        qt = quantizer.Quantizer(str(source))
        qt.load_quantization_recipe(recipe.static_wi8_ai8())
        ranges = qt.calibrate({SIGNATURE: list(calibration)}, num_threads=1)
        atomic_write_bytes(target, bytes(qt.quantize(ranges).quantized_model))
    return {"quantisation": f"ai-edge-quantizer {_version('ai-edge-quantizer')} static_wi8_ai8 (min/max "
                            "calibration; int8 input and output, (de)quantised by the runner from the file's scale "
                            "and zero point)",
            "calibration_images": list(images), "calibration_feeds": len(calibration)}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
