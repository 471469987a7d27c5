"""ORT Mobile from the mobile lowering: the fixed-shape .ort runs and matches PyTorch, its
required_operators config lists exactly its ops, and the mobile-usability report is written and parsed."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from export.artifact import ExportOptions, export_artifact
from export.mobile_usability import EPS, check_graph, read_report
from export.mobile_variants import mobile_variants
from export.ort_format import required_operators
from export.references import center_crop, fixed_shape_reference, skimage_rgb
from export.variants import ReferenceSet, onnx_variant
from runtime import catalogue
from runtime.check import PASS, check_artifact
from runtime.manifest import read_manifest
from train.models import create_model

SHAPE = (24, 32)


@pytest.fixture(scope="module")
def mobile(tmp_path_factory):
    torch.manual_seed(3)
    model = create_model("dyconvsr_tiny").eval()
    folder = tmp_path_factory.mktemp("ort_mobile")
    _, x = fixed_shape_reference(1, *SHAPE)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    refs = ReferenceSet([x], [y])
    dynamic = onnx_variant(model, "stacked", folder / "model.onnx", refs)  # a dynamic graph to compare with
    out = mobile_variants(model, folder, refs, SHAPE, compare=[dynamic.file], coreml=False)
    return model, folder, out


def _variant(out, suffix: str):
    return next(v for v in out.variants if v.file.endswith(suffix))


def test_the_ort_file_runs_at_its_fixed_shape_and_matches_pytorch(mobile) -> None:
    model, folder, out = mobile
    onnx_file, ort_file = _variant(out, ".onnx"), _variant(out, ".ort")
    assert ort_file.file == catalogue.ort_file(onnx_file.file) == "model.mobile.1x24x32.ort"
    assert ort_file.source == onnx_file.file and ort_file.fixed_input_shape == [1, 3, *SHAPE]
    assert onnx_file.parity and ort_file.parity
    image = center_crop(skimage_rgb("rocket")[40:, 90:], *SHAPE)[None]  # not the reference crop
    with torch.no_grad():
        expected = model(torch.from_numpy(image)).numpy()
    session = ort.InferenceSession(str(folder / ort_file.file), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, *SHAPE]
    (got,) = session.run(None, {"input": image})
    assert got.shape == (1, 3, 2 * SHAPE[0], 2 * SHAPE[1])
    assert np.abs(got - expected).max() <= catalogue.FP32_MAX_ABS_DIFF


def test_required_operators_config_lists_exactly_the_ops_of_the_ort_model(mobile, tmp_path) -> None:
    _, folder, out = mobile
    ort_file = _variant(out, ".ort")
    config = folder / ort_file.notes["required_operators"]
    assert config.name == catalogue.required_operators_file(ort_file.file)
    assert config.name == "model.mobile.1x24x32.required_operators.config"
    assert "/tmp" not in config.read_text()  # its header names the artifact's file, not the converter's temp one
    listed = {op for ops in required_operators(config).values() for op in ops}
    # The .ort holds the graph optimised at the basic level: ONNX Runtime's own optimiser, saved as ONNX.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "basic.onnx")
    ort.InferenceSession(str(folder / _variant(out, ".onnx").file), options, providers=["CPUExecutionProvider"])
    assert listed == {node.op_type for node in onnx.load(tmp_path / "basic.onnx").graph.node}
    assert {"Conv", "DepthToSpace"} <= listed and not {"Pad", "Shape", "Mod", "SpaceToDepth"} & listed


def test_usability_report_is_written_and_parsed(mobile) -> None:
    _, folder, out = mobile
    report = read_report(folder / catalogue.MOBILE_USABILITY_JSON, folder / catalogue.MOBILE_USABILITY_TEXT)
    assert [g.file for g in report.graphs] == ["model.onnx", "model.mobile.1x24x32.onnx"]
    fixed, dynamic = report.graph("model.mobile.1x24x32.onnx"), report.graph("model.onnx")
    assert fixed.fixed_shape and not fixed.if_fixed and [ep.ep for ep in fixed.eps] == list(EPS)
    for ep in fixed.eps:
        assert ep.unsupported_dynamic_shape == 0 and ep.unsupported_rank == 0  # fixed shape, rank <= 5
        assert ep.supported_nodes + sum(ep.unsupported_ops.values()) == ep.nodes
        assert ep.partitions == len(ep.partition_sizes) and sum(ep.partition_sizes) == ep.supported_nodes
        assert "DepthToSpace: CRD mode (DCR only)" not in ep.caveat_violations
    assert fixed.eps[2].ep == "CoreML MLProgram" and fixed.eps[2].partitions_checked == 1  # the whole graph
    # NNAPI and Core ML NeuralNetwork: all but the two exact GELUs (Erf), 2 partitions (measured 57/59 nodes).
    for ep in fixed.eps[:2]:
        assert ep.unsupported_ops == {"Erf": 2} and not ep.caveat_violations and ep.partitions_checked == 2, ep
    assert not dynamic.fixed_shape and dynamic.if_fixed and dynamic.eps[0].unsupported_dynamic_shape > 0
    assert "Checking NNAPI" in report.text and "CoreML MLProgram" in report.table()
    assert _variant(out, ".ort").notes["usability"]["CoreML MLProgram"]["partitions"] == 1
    assert out.notes["mobile_usability"]["graphs"]["model.mobile.1x24x32.onnx"]["CoreML MLProgram"][0] == 1


def test_checkable_caveats_are_enforced(tmp_path) -> None:
    # A CRD DepthToSpace and a Conv with a computed weight: in the EP tables by op type, refused by their caveats.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 4, 4])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [8, 8, 1, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"]),
                               helper.make_node("DepthToSpace", ["c"], ["y"], blocksize=2, mode="CRD")],
                              "g", [x, w], [y])
    path = tmp_path / "crd.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    usability, text = check_graph(path)
    nnapi = usability.eps[0]
    assert nnapi.ep == "NNAPI" and nnapi.supported_nodes == 2 and nnapi.partitions == 1
    assert nnapi.caveat_violations == {"Conv: weights/bias not constant": 1, "DepthToSpace: CRD mode (DCR only)": 1}
    assert nnapi.supported_nodes_checked == 0 and nnapi.partitions_checked == 0
    assert "NNAPI" in text


def test_the_artifact_carries_the_mobile_files_and_runtime_check_proves_the_ort(tmp_path) -> None:
    folder = tmp_path / "a"
    export_artifact(create_model("dyconvsr_tiny"), folder, ExportOptions(
        strategy="branches", extra_strategies=(), precisions=(), tensorrt=(), openvino=(), litert=(), tiling=False,
        mobile_shape=SHAPE))
    manifest = read_manifest(folder)
    ort_file = manifest.variant("model.mobile.1x24x32.ort")
    assert ort_file.source == "model.mobile.1x24x32.onnx" and ort_file.strategy == "mobile"
    for name in (ort_file.notes["required_operators"], catalogue.required_operators_file("model.ort"),
                 catalogue.MOBILE_USABILITY_JSON, catalogue.MOBILE_USABILITY_TEXT):
        assert name in manifest.files, name
    assert set(manifest.notes["mobile_usability"]["graphs"]) == {"model.onnx", "model.mobile.1x24x32.onnx"}
    package = catalogue.coreml_file("model.mobile.1x24x32.onnx")
    assert package in manifest.notes.get("skipped", {}) or manifest.notes["coreml"]["file"] == package
    report = check_artifact(folder, variants=[ort_file.file])
    assert report and report.rows[-1].status == PASS, report.table()
