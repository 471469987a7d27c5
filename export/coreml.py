"""The mobile lowering -> a Core ML ML Program (``.mlpackage``), where coremltools works here.

coremltools 9 converts PyTorch (a traced module), not ONNX, so the package is traced from the same
fixed-shape module the mobile ONNX is exported from. It computes in fp32 (``compute_precision``
FLOAT32; Core ML's default for ML Programs is fp16) and targets iOS 16 / macOS 13.

**Core ML prediction needs macOS** (the Core ML framework; coremltools on Linux has no predictor), so
export cannot prove the package against the PyTorch references here. What Linux can check is checked
(:func:`inspect_package`): the package loads as a spec, its one input and one output have the names,
dtype and fixed shapes of the mobile ONNX, and the ML Program's op types are recorded. On a Mac,
``coremltools.models.MLModel(path).predict({"input": x})`` runs it.

coremltools 9.0 fails with numpy 2.4 (it works with 2.3): it needs its own environment or the
``coreml`` extra (``pip install torch==2.13.0 'numpy<2.4' coremltools==9.0``). Where it is absent or
fails, :func:`coreml_unavailable` says why in one line and export skips the package.
"""
from __future__ import annotations

import functools
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from runtime.errors import first_line
from runtime.native_output import library_output_hidden

REQUIREMENT = "pip install torch==2.13.0 'numpy<2.4' coremltools==9.0 (the coreml extra, in its own environment)"
MACOS_NOTE = ("Core ML prediction needs macOS (the Core ML framework): not run on this machine, so no parity; "
              "the spec, input/output shapes and op types were checked")
DEPLOYMENT_TARGET = "iOS16"


class _Probe(nn.Module):
    """A conv and reshapes sized from the traced shape (``aten::Int``): what coremltools 9.0 fails to
    convert under numpy 2.4 ("only 0-dimensional arrays can be converted to Python scalars")."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, c, h, w = y.shape
        return y.reshape(n * 2, c // 2, h, w).reshape(n, c, h, w)[:, :3]


@functools.cache
def coreml_unavailable() -> str | None:
    """None when coremltools imports and converts a one-conv probe here; else the one-line reason."""
    # coremltools' progress bars, its "Failed to load libcoremlpython" lines and torch-version warnings
    # hidden; the failures are caught inside, so a skipped package replays nothing.
    with library_output_hidden():
        try:
            import coremltools
        except Exception as exc:  # ImportError, or its import failing under a numpy it does not support
            return f"coremltools not usable ({first_line(exc)}): {REQUIREMENT}"
        try:
            with tempfile.TemporaryDirectory() as tmp:
                _convert(_Probe().eval(), (4, 4), Path(tmp) / "probe.mlpackage")
        except Exception as exc:
            return (f"coremltools {coremltools.__version__} fails with numpy {np.__version__} ({first_line(exc)}): "
                    f"{REQUIREMENT}")
    return None


def _convert(module: nn.Module, shape: tuple[int, int], path: Path) -> None:
    """Trace and convert; the caller hides coremltools' output (runtime.native_output.library_output_hidden)."""
    import coremltools as ct

    example = torch.rand(1, 3, *shape)
    with torch.no_grad():
        traced = torch.jit.trace(module.eval(), example)
        package = ct.convert(
            traced, inputs=[ct.TensorType(name="input", shape=tuple(example.shape), dtype=np.float32)],
            outputs=[ct.TensorType(name="output", dtype=np.float32)], convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32, minimum_deployment_target=getattr(ct.target, DEPLOYMENT_TARGET),
        )
        package.save(str(path))


@dataclass
class PackageSpec:
    """What Linux can read from an ``.mlpackage``."""

    specification_version: int
    inputs: dict[str, list[int]]  # name -> fixed shape
    outputs: dict[str, list[int]]
    dtypes: dict[str, str]  # name -> Core ML array dtype (FLOAT32)
    op_types: dict[str, int]  # ML Program op type -> count (const excluded)


def inspect_package(path: str | Path) -> PackageSpec:
    """Load the package's spec (without compiling it: that needs macOS) and read its interface and ops."""
    import coremltools as ct

    with library_output_hidden():
        spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    features = {}
    dtypes = {}
    for group in (spec.description.input, spec.description.output):
        for feature in group:
            array = feature.type.multiArrayType
            features[feature.name] = [int(d) for d in array.shape]
            dtypes[feature.name] = ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)
    main = spec.mlProgram.functions["main"]
    block = main.block_specializations[main.opset]
    ops = Counter(op.type for op in block.operations if op.type != "const")
    return PackageSpec(
        specification_version=int(spec.specificationVersion),
        inputs={f.name: features[f.name] for f in spec.description.input},
        outputs={f.name: features[f.name] for f in spec.description.output},
        dtypes=dtypes, op_types=dict(sorted(ops.items())),
    )


def to_coreml(module: nn.Module, shape: tuple[int, int], scale: int, path: str | Path) -> dict:
    """Convert the fixed-shape ``module`` (input (1, 3, *shape)) to the ML Program package ``path`` and
    check its spec; returns the manifest notes. Raises RuntimeError when the spec is not as expected."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / path.name
        with library_output_hidden():
            _convert(module, shape, staged)
        spec = inspect_package(staged)
        expected_in, expected_out = [1, 3, *shape], [1, 3, shape[0] * scale, shape[1] * scale]
        if spec.inputs != {"input": expected_in} or spec.outputs != {"output": expected_out}:
            raise RuntimeError(f"Core ML package has inputs {spec.inputs} and outputs {spec.outputs}; expected "
                               f"input {expected_in} and output {expected_out}")
        if set(spec.dtypes.values()) != {"FLOAT32"}:
            raise RuntimeError(f"Core ML package input/output dtypes {spec.dtypes}; expected FLOAT32")
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(staged, path)
    import coremltools

    return {"tool": f"coremltools {coremltools.__version__} (torch.jit.trace -> ct.convert, mlprogram)",
            "compute_precision": "fp32", "deployment_target": DEPLOYMENT_TARGET, "prediction": MACOS_NOTE,
            **asdict(spec)}
