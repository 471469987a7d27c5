"""What the browser pages run, from the artifact's manifest: served as ``web.json`` so the JavaScript judges and
tiles with the manifest's own numbers (tolerances, tiling geometry, limits) and repeats none of the Python rules.

ORT Web's WASM build is ONNX Runtime's CPU engine compiled to WebAssembly, with every operator: ``model.onnx``,
the other ``.onnx``/``.ort`` variants and the tiling graphs load there as written (measured: check.html). So
export writes no browser-only file; it records in ``notes.web`` (:func:`web_record`) which files the page runs,
whose parity is the manifest's own for those files, and the browser re-proves them (check.html).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..catalogue import tolerance
from ..manifest import Manifest, Tiling, Variant
from ..parity import tolerance_for
from ..upscaler import DEFAULT_TILE

# ONNX Runtime Web loads these kinds (runtime/catalogue.py); OpenVINO IR, LiteRT and TensorRT files are not its.
WEB_KINDS = ("onnx", "ort")
ORT_WEB = "onnxruntime-web"
# One picture in a tab: the largest output (about 1 GiB of RGBA at 256 MP would not fit a tab's canvas).
MAX_OUTPUT_PIXELS = 64 << 20  # 8192 x 8192
MAX_INPUT_PIXELS = 16 << 20  # 4096 x 4096, whatever the scale allows below MAX_OUTPUT_PIXELS
CHECK_TILE = 16  # as runtime.check's default: every stored reference is split into several tiles
BENCH_SHAPE = (360, 640)  # bench.html's LR input (-> 1280x720 at x2), as runtime.bench's 720p


def web_record(default: Variant, tiling: Tiling | None, version: str) -> dict[str, Any]:
    """``notes.web`` of an exported manifest: the files the page runs (the default variant and the tiling graphs)
    and why no browser-only file is written."""
    return {
        "runtime": f"{ORT_WEB} {version}",
        "engine": default.file,
        "tiling": [*tiling.stats, tiling.main] if tiling else [],
        "extra_files": [],
        "why": "ORT Web's WASM build is the ONNX Runtime CPU engine compiled to WebAssembly, every operator at this "
               "opset: the page runs these files as written, their parity is theirs above, and check.html "
               "proves them again in the browser",
    }


def runs_in_browser(variant: Variant) -> str | None:
    """None when the page can run ``variant``, else why not."""
    if variant.kind not in WEB_KINDS:
        return f"{variant.kind} file: not an {ORT_WEB} engine"
    return None


def engine_variant(manifest: Manifest) -> Variant:
    """The variant the page upscales with: ``notes.web.engine`` where export recorded one the page can run, else
    the manifest's default (manifests from before the record)."""
    recorded = manifest.notes.get("web", {})
    name = recorded.get("engine") if isinstance(recorded, dict) else None
    for variant in manifest.variants:
        if variant.file == name and runs_in_browser(variant) is None:
            return variant
    return manifest.default


def max_input_pixels(scale: int) -> int:
    """The largest LR picture the page accepts at ``scale``."""
    return min(MAX_INPUT_PIXELS, MAX_OUTPUT_PIXELS // (scale * scale))


def page_plan(manifest: Manifest, label: str, version: str) -> dict[str, Any]:
    """``web.json``: everything the pages need from the manifest, in JSON."""
    engine = engine_variant(manifest)
    low, high = manifest.output.value_range
    variants = []
    for variant in manifest.variants:
        fixed = variant.fixed_input_shape
        variants.append({
            "file": variant.file, "kind": variant.kind, "precision": variant.precision,
            "skip": runs_in_browser(variant), "tolerance": tolerance_for(variant), "batch": variant.batch,
            "fixed": fixed[-2:] if fixed else None, "required": variant.file == manifest.default_variant,
        })
    tiling = manifest.tiling
    return {
        "artifact": label,
        "model": manifest.model_name,
        "scale": manifest.scale,
        "runtime": f"{ORT_WEB} {version}",
        "engine": {"file": engine.file, "batch": engine.batch,
                   "fixed": engine.fixed_input_shape[-2:] if engine.fixed_input_shape else None},
        "tiling": None if tiling is None else {k: v for k, v in asdict(tiling).items() if k != "parity"},
        "tile": DEFAULT_TILE,
        "check_tile": CHECK_TILE,
        "tiled_tolerance": tolerance("fp32"),  # the tiling graphs are fp32
        "bench_shape": list(BENCH_SHAPE),
        "max_input_pixels": max_input_pixels(manifest.scale),
        "max_output_pixels": MAX_OUTPUT_PIXELS,
        "peak": float(high - low) or 1.0,
        "variants": variants,
        "references": [asdict(ref) for ref in manifest.references],
        "files": manifest.files,
    }
