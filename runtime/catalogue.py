"""The variant catalogue: every kind of engine file an artifact folder holds, what it is, what runs it,
what it was converted from, and how close to the PyTorch reference it must be.

export/ names the files it writes with the functions here, runtime.check, runtime.tiling and the
benchmarks judge engines by :func:`tolerance`, and the manifest records each variant's ``source``
(the artifact file it was converted from), so nobody parses a file name back into what it means.

Tolerances, against the fp32 PyTorch output on [0, 1] images (NaN/Inf always fail):

- fp32: max |diff| <= 1e-4. Float reassociation across backends stays near 1e-6 on these networks,
  while a wrong lowering, a missing op attribute or a TF32 matmul lands far above it.
- fp16: PSNR >= 50 dB. fp16 rounding alone measures about 60-70 dB; 50 dB still flags an op that
  overflows or a cast in the wrong place.
- int8 and bf16: PSNR >= 40 dB (RMS error about 2.5 levels of 255). INT8 QDQ of these networks
  measures about 45-55 dB and OpenVINO bf16 about 59 dB; 40 dB catches a broken calibration or an
  op that quantises badly while keeping sound variants.

An fp32 graph that OpenVINO is told to compute in bf16/f16 is judged at that precision.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

PRECISIONS = ("fp32", "fp16", "int8", "bf16")
REDUCED_ONNX_PRECISIONS = ("fp16", "int8")  # model.<precision>.onnx
TENSORRT_PRECISIONS = ("fp32", "fp16", "int8")  # model.<precision>.plan
OPENVINO_PRECISIONS = ("fp32", "bf16", "int8")  # model.openvino[.bf16|.int8].xml
LITERT_PRECISIONS = ("fp32", "fp16", "int8")  # model.mobile.<H>x<W>[.fp16|.int8].tflite

FP32_MAX_ABS_DIFF = 1e-4
MIN_PSNR_DB = {"fp16": 50.0, "int8": 40.0, "bf16": 40.0}
# Tiled vs whole through tiling graphs computed in bf16/f16 (OpenVINO told so): rounding, not seams.
REDUCED_SEAM_MAX_ABS_DIFF = 1e-2

# A precision (as the manifest spells it) -> OpenVINO's INFERENCE_PRECISION_HINT value.
OPENVINO_HINTS = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}

DEFAULT_FILE = "model.onnx"
STEM = "model"


@dataclass(frozen=True)
class VariantKind:
    """One row of the catalogue: a family of engine files."""

    name: str
    pattern: str  # the file name, <placeholders> filled by the naming functions below
    kind: str  # runtime.manifest.Variant.kind
    precisions: tuple[str, ...]
    lowering: str  # which lowering of the dynamic conv the file holds
    backend: str  # what runs it by default (runtime.runners.backend_for)
    source: str  # what it is converted from (Variant.source)


CATALOGUE = (
    VariantKind("default", DEFAULT_FILE, "onnx", ("fp32",), "the export's --strategy", "onnxruntime",
                "none: exported from PyTorch"),
    VariantKind("lowering", "model.<strategy>.onnx", "onnx", ("fp32",), "<strategy>", "onnxruntime",
                "none: exported from PyTorch"),
    VariantKind("fixed_shape", "model.<strategy>.<N>x<H>x<W>.onnx", "onnx", ("fp32",), "<strategy>", "onnxruntime",
                "none: exported from PyTorch"),
    VariantKind("reduced_onnx", "model.<fp16|int8>.onnx", "onnx", REDUCED_ONNX_PRECISIONS,
                "its source's", "onnxruntime",
                "fp16: model.onnx; int8: model.onnx, or the fastest constant-weight lowering when model.onnx computes "
                "its kernel (aggregate)"),
    VariantKind("ort", "model[.<stem>].ort", "ort", ("fp32",), "its source's", "onnxruntime",
                "an fp32 ONNX variant (model[.<stem>].onnx)"),
    VariantKind("tensorrt", "model.<fp32|fp16|int8>.plan", "tensorrt", TENSORRT_PRECISIONS, "its source's",
                "tensorrt", "an fp32 ONNX variant with constant conv weights (int8: its symmetric QDQ copy)"),
    VariantKind("openvino", "model.openvino[.bf16|.int8].xml (+ .bin)", "openvino", OPENVINO_PRECISIONS,
                "its source's", "openvino", "the default fp32 ONNX variant"),
    # ORT Mobile: the .ort of the mobile lowering's fixed-shape ONNX, with its required_operators config.
    VariantKind("ort_mobile", "model.mobile.<N>x<H>x<W>.ort", "ort", ("fp32",), "mobile",
                "onnxruntime (ORT Mobile on phones: CPU, NNAPI or Core ML EP)",
                "the fixed-shape mobile ONNX (model.mobile.<N>x<H>x<W>.onnx)"),
    # Core ML (iOS/macOS): not a manifest variant (a folder no runner here runs; prediction needs macOS),
    # recorded in the manifest's notes["coreml"]; fp32 compute, tolerance as fp32 where it can run.
    VariantKind("coreml", "model.mobile.<N>x<H>x<W>.mlpackage/", "coreml", ("fp32",), "mobile",
                "Core ML on macOS/iOS (no runner in runtime/)",
                "the PyTorch mobile lowering traced at the shape of model.mobile.<N>x<H>x<W>.onnx (coremltools "
                "converts torch, not ONNX)"),
    # LiteRT (Android): fp16 = fp16 weights, fp32 compute; int8 = full static INT8 (int8 input/output, which
    # the runner (de)quantises). Each with its fixed-shape tiling counterpart (Variant.tiling):
    # tiling/mobile.<H>x<W>.stats.tflite (fp32) and tiling/mobile.<H>x<W>[.fp16|.int8].main.tflite.
    VariantKind("litert", "model.mobile.<H>x<W>[.fp16|.int8].tflite", "litert", LITERT_PRECISIONS,
                "mobile", "litert",
                "fp32: none, the PyTorch mobile lowering converted by litert-torch; fp16/int8: the fp32 .tflite of "
                "the same shape, by ai-edge-quantizer (int8 calibrated on the held-out calibration images)"),
)

# Files beside the engines that describe them (never run): name pattern -> what it is.
COMPANION_FILES = {
    "<ort stem>.required_operators.config": "the ops a reduced-size ONNX Runtime build needs for that .ort "
                                            "(build.py --minimal_build --include_ops_by_config)",
    "mobile_usability.json / .txt": "ONNX Runtime Mobile's usability check (NNAPI / Core ML partitions) of "
                                    "model.onnx, model.stacked.onnx and the mobile ONNX (export/mobile_usability.py)",
}
MOBILE_USABILITY_JSON = "mobile_usability.json"
MOBILE_USABILITY_TEXT = "mobile_usability.txt"


def tolerance(precision: str) -> dict[str, float]:
    """What an engine computing in ``precision`` must reach against the fp32 PyTorch reference."""
    if precision == "fp32":
        return {"max_abs_diff": FP32_MAX_ABS_DIFF}
    if precision not in MIN_PSNR_DB:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return {"min_psnr_db": MIN_PSNR_DB[precision]}


def seam_tolerance(computed_in: str | None) -> float:
    """Largest |tiled - whole| the seam probe allows for tiling graphs computed in ``computed_in`` (None: fp32)."""
    return FP32_MAX_ABS_DIFF if computed_in in (None, "fp32") else REDUCED_SEAM_MAX_ABS_DIFF


def canonical_precision(name: str) -> str:
    """A precision as the manifest spells it (PRECISIONS), from that spelling or OpenVINO's (f32, f16, bf16)."""
    spelled = {value: key for key, value in OPENVINO_HINTS.items()}
    return name if name in PRECISIONS else spelled.get(name.lower(), name.lower())


# ---- file names ----------------------------------------------------------------------------------
def onnx_file(strategy: str | None = None) -> str:
    """fp32 ONNX: the default variant (``strategy`` None) or another lowering."""
    return DEFAULT_FILE if strategy is None else f"{STEM}.{strategy}.onnx"


def fixed_shape_file(strategy: str, batch: int, height: int, width: int) -> str:
    return f"{STEM}.{strategy}.{batch}x{height}x{width}.onnx"


def _stem(source: str) -> str:
    return PurePosixPath(source).stem


def reduced_onnx_file(precision: str) -> str:
    """The artifact's fp16 or int8 ONNX: model.<precision>.onnx, whichever fp32 lowering it was made from (that is
    its manifest ``source``), so the name never moves with a timing."""
    return f"{STEM}.{precision}.onnx"


def ort_file(source: str) -> str:
    return f"{_stem(source)}.ort"


def required_operators_file(ort: str) -> str:
    """The required_operators config kept beside the ``.ort`` file ``ort``."""
    return f"{_stem(ort)}.required_operators.config"


def coreml_file(source: str) -> str:
    """The Core ML package (a folder) converted at the shape of the fixed-shape ONNX ``source``."""
    return f"{_stem(source)}.mlpackage"


def plan_file(precision: str) -> str:
    return f"{STEM}.{precision}.plan"


def openvino_file(precision: str) -> str:
    return f"{STEM}.openvino.xml" if precision == "fp32" else f"{STEM}.openvino.{precision}.xml"


def litert_file(height: int, width: int, precision: str = "fp32") -> str:
    return f"{STEM}.mobile.{height}x{width}{'' if precision == 'fp32' else '.' + precision}.tflite"


def litert_tiling_files(height: int, width: int, precision: str = "fp32") -> tuple[str, str]:
    """(stats, main) tiling counterparts of a LiteRT file: one fp32 stats graph per shape, a main per precision."""
    main = f"tiling/mobile.{height}x{width}{'' if precision == 'fp32' else '.' + precision}.main.tflite"
    return f"tiling/mobile.{height}x{width}.stats.tflite", main
