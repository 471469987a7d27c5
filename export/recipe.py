"""The export-side facts every part of export/ shares, each defined once.

``ExportOptions`` (export/artifact.py) builds the default export recipe from them and from the
precisions of runtime.catalogue (which files can exist); the export CLI and the benchmarks take
that recipe from ``ExportOptions()``.
"""
from __future__ import annotations

# ONNX opset of every exported graph (the CLI accepts MIN_OPSET..MAX_OPSET).
OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 23  # 23: the newest opset torch 2.13's exporter writes

# The size speed is judged and tuned at: a 640x360 LR frame (1280x720 out at x2), batch 1. ``auto``
# times the lowerings on it, and TensorRT optimises its plans for it.
FOCUS_HW = (360, 640)
FOCUS_SHAPE = (1, 3, *FOCUS_HW)

# The smallest and largest input side a TensorRT plan's optimisation profile covers (H, W).
PROFILE_MIN_HW = (16, 16)
PROFILE_MAX_HW = (1080, 1920)
# The largest batch a plan built from a dynamic-batch graph accepts.
TENSORRT_MAX_BATCH = 4

# The libraries whose versions an artifact's manifest records (runtime.bench.machine.library_versions).
EXPORT_PACKAGES = ("torch", "onnx", "onnxruntime", "onnxsim", "numpy", "openvino", "nncf")

# Raised whenever what the same options write changes (2: INT8 recipes tried per file and proven at every ISA
# level below the exporting CPU's; 3: the INT8 ONNX is model.int8.onnx whichever lowering it came from), so an
# artifact of an older revision is never reused as today's.
RECIPE_REVISION = 3
