"""TensorRT: the GPU-free compatibility check on real exported graphs, and plan building where a
GPU exists (marked `gpu`, skipped here with the reason)."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from export.artifact import ExportOptions, export_artifact
from export.precision import to_int8
from export.tensorrt_build import tensorrt_unavailable
from export.tensorrt_compat import RULES, check_tensorrt
from train.models import create_model

ONLY_FP32 = {"precisions": (), "ort_format": False, "tensorrt": (), "openvino": (), "tiling": False}


@pytest.fixture(scope="module", params=["dyconvsr_tiny", "dcnn_tiny"])
def artifact(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("trt") / request.param
    options = ExportOptions(mobile_shape=None,
                            strategy="branches", extra_strategies=("stacked", "aggregate"), **ONLY_FP32)
    return folder, export_artifact(create_model(request.param), folder, options)


def _computed_weight_convs(path) -> list[str]:
    graph = onnx.load(str(path)).graph
    constants = ({i.name for i in graph.initializer}
                 | {o for n in graph.node if n.op_type == "Constant" for o in n.output})
    return [n.name for n in graph.node if n.op_type == "Conv" and n.input[1] not in constants]


def test_trt_safe_strategies_pass(artifact) -> None:
    folder, manifest = artifact
    for variant in manifest.variants:
        if variant.strategy in ("branches", "stacked"):
            assert _computed_weight_convs(folder / variant.file) == []
            report = check_tensorrt(folder / variant.file, "10")
            assert report, str(report)
            # Constant weights: even the pre-8.5 rules find nothing wrong with any Conv.
            assert not [p for p in check_tensorrt(folder / variant.file, "8.4").problems if p.op == "Conv"]


def test_computed_weights_fail_pre_8_5_naming_the_node(artifact) -> None:
    folder, manifest = artifact
    path = folder / next(v.file for v in manifest.variants if v.strategy == "aggregate")
    offending = _computed_weight_convs(path)
    assert offending  # the aggregate lowering really computes its Conv weights
    report = check_tensorrt(path, "8.4")
    assert not report
    named = {p.node for p in report.problems if p.op == "Conv"}
    assert named == set(offending)
    assert all(name in str(report) for name in offending) and ">= 8.5" in str(report)
    assert check_tensorrt(path, "10")  # allowed from 8.5 on, with static weight shapes


def test_asymmetric_int8_is_flagged_symmetric_passes(artifact, tmp_path) -> None:
    folder, _ = artifact
    for symmetric in (False, True):
        target = tmp_path / f"int8_{symmetric}.onnx"
        to_int8(folder / "model.onnx", target, symmetric=symmetric)
        problems = check_tensorrt(target, "10").problems
        assert bool(problems) is not symmetric
        assert all(p.op in ("QuantizeLinear", "DequantizeLinear") and "zero point" in p.reason for p in problems)


def test_unsupported_op_is_named(tmp_path) -> None:
    node = onnx.helper.make_node("Hardmax", ["x"], ["y"], name="the_hardmax")
    graph = onnx.helper.make_graph(
        [node], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )
    report = check_tensorrt(onnx.helper.make_model(graph), "10")
    assert [(p.node, p.op) for p in report.problems] == [("the_hardmax", "Hardmax")]


def test_unknown_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="known: " + ", ".join(RULES)):
        check_tensorrt(onnx.ModelProto(), "7.0")


def test_plans_are_skipped_with_a_reason_without_gpu(tmp_path) -> None:
    reason = tensorrt_unavailable()
    if reason is None:
        pytest.skip("tensorrt and a GPU are present: plans are built (see test_plans_build_and_match)")
    manifest = export_artifact(create_model("dyconvsr_tiny"), tmp_path / "a", ExportOptions(
        precisions=(), ort_format=False, tiling=False, tensorrt=("fp32", "fp16"), strategy="branches", openvino=(),
        mobile_shape=None))
    assert manifest.notes["skipped"] == {"model.fp32.plan": reason, "model.fp16.plan": reason}
    assert all(v.kind != "tensorrt" for v in manifest.variants)


@pytest.mark.gpu
@pytest.mark.skipif(tensorrt_unavailable() is not None, reason=str(tensorrt_unavailable()))
def test_plans_build_and_match(tmp_path) -> None:
    from runtime.runners import PlanOrigin, RunnerConfig, make_runner

    model = create_model("dyconvsr_tiny")
    folder = tmp_path / "a"
    manifest = export_artifact(model, folder, ExportOptions(mobile_shape=None,
                                                            precisions=(), ort_format=False, tiling=False,
                                                            strategy="branches", openvino=()))
    plans = [v for v in manifest.variants if v.kind == "tensorrt"]
    assert {v.precision for v in plans} == {"fp32", "fp16", "int8"}, manifest.notes.get("skipped")
    assert (folder / "tensorrt.cache").is_file()
    images = np.random.default_rng(0).random((1, 3, 37, 45), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    for plan in plans:
        assert plan.notes["tensorrt_version"] and plan.notes["gpu_name"] != "unknown"
        with make_runner(folder / plan.file, RunnerConfig(backend="tensorrt"), PlanOrigin.from_notes(plan.notes)) as r:
            got = r.infer(images)
        assert np.isfinite(got).all()
        if plan.precision == "fp32":
            assert np.abs(got - expected).max() <= 1e-4
        else:
            mse = float(np.mean((got.astype(np.float64) - expected) ** 2))
            assert 10 * np.log10(1 / mse) >= plan.parity.tolerance["min_psnr_db"]
