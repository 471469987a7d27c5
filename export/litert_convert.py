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
from runtime.host import install_command
from runtime.native_output import library_output_hidden

CONVERTER_PACKAGES = {"litert_torch": "litert-torch", "ai_edge_quantizer": "ai-edge-quantizer",
                      "ai_edge_litert": "ai-edge-litert"}
SIGNATURE = "serving_default"


def litert_unavailable(precision: str = "fp32") -> str | None:
    """Why LiteRT files of ``precision`` cannot be written here (one line), or None."""
    needed = ["litert_torch", "ai_edge_litert"] + ([] if precision == "fp32" else ["ai_edge_quantizer"])
    missing = [CONVERTER_PACKAGES[name] for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return f"{', '.join(missing)} not installed ({install_command('litert')} for the LiteRT converters)"
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
    output), every tensor's range the min and max over all ``calibration`` feeds.

    ``Quantizer.calibrate`` over a list keeps an exponential moving average (0.95) of each feed's min/max,
    which clipped the input to [0.07, 0.96] and the residual to half its range on real photos; one
    calibration per feed, merged here by min/max, keeps the whole range seen."""
    with library_output_hidden():
        from ai_edge_quantizer import quantizer, recipe

        qt = quantizer.Quantizer(str(source))
        qt.load_quantization_recipe(recipe.static_wi8_ai8())
        ranges: dict = {}
        for feed in calibration:
            for name, qsv in qt.calibrate({SIGNATURE: [feed]}, num_threads=1).items():
                seen = ranges.setdefault(name, dict(qsv))
                seen["min"], seen["max"] = np.minimum(seen["min"], qsv["min"]), np.maximum(seen["max"], qsv["max"])
        atomic_write_bytes(target, bytes(qt.quantize(ranges).quantized_model))
    return {"op_precision": op_precisions(target),
            "quantisation": f"ai-edge-quantizer {_version('ai-edge-quantizer')} static_wi8_ai8: int8 per-channel "
                            "weights, int8 activations, int8 input and output ((de)quantised by the runner from the "
                            "file's scale and zero point); ranges the min/max over all calibration feeds",
            "calibration_images": list(images), "calibration_feeds": len(calibration)}


def op_precisions(path: Path) -> dict[str, list[str]]:
    """What runs in which precision: each op type of the file -> the dtypes its first input arrives in."""
    from ai_edge_litert import interpreter

    with library_output_hidden():
        plain = interpreter.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES  # the file's own ops, undelegated
        model = interpreter.Interpreter(model_path=str(path), experimental_op_resolver_type=plain)
    tensors = {t["index"]: np.dtype(t["dtype"]).name for t in model.get_tensor_details()}
    found: dict[str, set[str]] = {}
    for op in model._get_ops_details():  # the interpreter's only listing of ops
        first = next((i for i in op["inputs"] if i >= 0), None)
        found.setdefault(op["op_name"], set()).add(tensors.get(first, "-"))
    return {name: sorted(dtypes) for name, dtypes in sorted(found.items())}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
