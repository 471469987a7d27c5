"""Core ML from the mobile lowering: the .mlpackage's spec as far as Linux can check it (prediction needs
macOS), and the one-line skip where coremltools is absent or fails (it needs numpy < 2.4)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from export.coreml import MACOS_NOTE, coreml_unavailable, inspect_package, to_coreml
from export.mobile import mobile_module
from export.mobile_variants import mobile_variants
from export.references import fixed_shape_reference
from export.variants import ReferenceSet
from runtime import catalogue
from train.models import create_model

SHAPE = (16, 24)
needs_coreml = pytest.mark.skipif(coreml_unavailable() is not None, reason=str(coreml_unavailable()))


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(4)
    return create_model("dyconvsr_tiny").eval()


@needs_coreml
def test_the_package_has_the_mobile_interface_and_fp32_ops(tiny, tmp_path) -> None:
    path = tmp_path / catalogue.coreml_file("model.mobile.1x16x24.onnx")
    notes = to_coreml(mobile_module(tiny, SHAPE), SHAPE, 2, path)
    assert path.name == "model.mobile.1x16x24.mlpackage" and (path / "Manifest.json").is_file()
    spec = inspect_package(path)
    assert spec.inputs == {"input": [1, 3, *SHAPE]} and spec.outputs == {"output": [1, 3, 32, 48]}
    assert set(spec.dtypes.values()) == {"FLOAT32"} and notes["compute_precision"] == "fp32"
    assert {"conv", "gelu", "softmax"} <= set(spec.op_types) and "pad" not in spec.op_types
    assert notes["op_types"] == spec.op_types and "macOS" in notes["prediction"]


@needs_coreml
def test_prediction_needs_macos(tiny, tmp_path) -> None:
    import coremltools as ct

    path = tmp_path / "m.mlpackage"
    module = mobile_module(tiny, SHAPE)
    to_coreml(module, SHAPE, 2, path)
    x = np.random.default_rng(0).random((1, 3, *SHAPE), dtype=np.float32)
    if sys.platform != "darwin":
        with pytest.raises(Exception, match="macOS"):
            ct.models.MLModel(str(path)).predict({"input": x})
        return
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    got = ct.models.MLModel(str(path)).predict({"input": x})["output"]
    assert np.abs(got - expected).max() <= catalogue.FP32_MAX_ABS_DIFF


def test_export_records_the_package_or_the_one_line_reason(tiny, tmp_path) -> None:
    _, x = fixed_shape_reference(1, *SHAPE)
    with torch.no_grad():
        refs = ReferenceSet([x], [tiny(torch.from_numpy(x)).numpy()])
    package = catalogue.coreml_file("model.mobile.1x16x24.onnx")
    out = mobile_variants(tiny, tmp_path, refs, SHAPE)
    reason = coreml_unavailable()
    if reason is None:  # the coreml environment: the package, its source and the macOS note
        assert out.notes["coreml"]["file"] == package and out.notes["coreml"]["source"] == "model.mobile.1x16x24.onnx"
        assert out.notes["coreml"]["prediction"] == MACOS_NOTE and package not in out.skipped
        assert (tmp_path / package / "Manifest.json").is_file()
    else:  # coremltools absent or failing (numpy 2.4): skipped with that one line, as TensorRT/OpenVINO are
        assert out.skipped == {package: reason} and "coreml" not in out.notes and "\n" not in reason
        assert "coremltools" in reason and not (tmp_path / package).exists()
