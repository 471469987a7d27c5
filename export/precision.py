"""Reduced-precision ONNX variants: FP16 (weights and activations) and INT8 (static QDQ).

Both keep float32 graph inputs/outputs, so the runtime contract (float32 NCHW in [0, 1]) holds
for every variant. Each is kept only if its PSNR against the fp32 PyTorch reference stays above
its floor in runtime/catalogue.py, which the manifest records as the variant's tolerance.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from runtime.files import atomic_write_bytes

from .references import center_crop, skimage_rgb

# Calibration images: held out from the reference crops (export/references.py) and the tests.
CALIBRATION_IMAGES = ("retina", "hubble_deep_field", "immunohistochemistry", "colorwheel", "camera", "coins")
CALIBRATION_CROP = 64


def to_fp16(source: str | Path, target: str | Path) -> None:
    """Convert weights and activations to float16, keeping float32 inputs and outputs."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    OnnxModel(model).topological_sort()  # the converter appends its input Casts after their consumers
    onnx.checker.check_model(model, full_check=True)
    atomic_write_bytes(target, model.SerializeToString())


def calibration_batches(crops_per_image: int = 2, size: int = CALIBRATION_CROP) -> Iterator[np.ndarray]:
    """(1, 3, size, size) float32 crops of real images, deterministic."""
    for name in CALIBRATION_IMAGES:
        image = skimage_rgb(name)
        for j in range(crops_per_image):
            offset = (j + 1) * min(image.shape[0], image.shape[1]) // (crops_per_image + 2)
            yield center_crop(image[offset:, offset:], size, size)[None]


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over calibration_batches."""

    def __init__(self, input_name: str) -> None:
        self.input_name = input_name
        self._batches = calibration_batches()

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        self._batches = calibration_batches()


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# The CPU recipes of the INT8 ONNX file, tried in this order; the first that holds its floor on every ISA level
# reached (runtime/isa_proof.py) is kept. u8 x s8 pairs saturate in 16 bits on CPUs without VNNI (ONNX Runtime's
# AVX2 / AVX-512 kernels use vpmaddubsw): 7-bit weights cannot overflow there and keep the fast u8s8 kernels;
# u8 weights (U8U8) take MLAS's 16-bit-exact kernels at full 8-bit precision where 7 bits cost too much.
INT8_WEIGHTS = {"s8_7bit": "int8 per-channel symmetric, 7-bit range (reduce_range)",
                "u8": "uint8 per-channel asymmetric (U8U8: no saturation on any ISA)",
                "s8": "int8 per-channel symmetric"}
CPU_INT8_RECIPES = ("s8_7bit", "u8")


def to_int8(source: str | Path, target: str | Path, symmetric: bool = False, weights: str = "s8_7bit"
            ) -> dict[str, object]:
    """Static QDQ quantisation calibrated on real crops, weights as ``weights`` (:data:`INT8_WEIGHTS`); returns
    the recipe.

    Activations are u8 with a zero point (what ONNX Runtime's CPU kernels prefer) or, with ``symmetric``, s8
    with zero point 0 and full-range s8 weights (what TensorRT's explicit quantisation requires).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if symmetric:
        weights = "s8"
    if weights not in INT8_WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(INT8_WEIGHTS)}; got {weights!r}")
    recipe = {
        "format": "QDQ", "activations": "int8 symmetric" if symmetric else "uint8",
        "weights": INT8_WEIGHTS[weights], "weight_recipe": weights, "biases": "float" if symmetric else "int32",
        "calibration": "MinMax", "calibration_images": list(CALIBRATION_IMAGES),
        "calibration_crop": CALIBRATION_CROP, "tool": "onnxruntime.quantization.quantize_static",
    }
    input_name = onnx.load(str(source)).graph.input[0].name
    # The quantiser warns through the root logger about every computed (non-initializer) tensor.
    with tempfile.TemporaryDirectory() as tmp, _quiet_root_logger():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared), str(quantized), _Reader(input_name), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QUInt8 if weights == "u8" else QuantType.QInt8,
            per_channel=True, reduce_range=weights == "s8_7bit", calibrate_method=CalibrationMethod.MinMax,
            # TensorRT dequantises int8 only: keep biases float in the TensorRT recipe.
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": weights != "u8",
                           "QuantizeBias": not symmetric},
        )
        atomic_write_bytes(target, quantized.read_bytes())
    return recipe
