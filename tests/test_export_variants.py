"""Reduced precision (fp16, int8), ORT format, fixed shapes and `auto`: real exports, checked
against PyTorch on real image crops that are not the calibration or reference crops."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from export.artifact import ExportOptions, export_artifact
from export.lowering import STRATEGIES
from export.references import center_crop, skimage_rgb
from runtime import catalogue
from runtime.errors import UserError
from runtime.manifest import read_manifest, verify_files
from train.models import create_model


def _images(batch: int, height: int, width: int) -> np.ndarray:
    # Off-centre crops: not the reference crops, and not the calibration images.
    return np.stack([center_crop(skimage_rgb(n)[50:, 80:], height, width) for n in ("rocket", "astronaut")[:batch]])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1.0 / mse)


@pytest.fixture(scope="module", params=["dyconvsr_tiny", "dcnn_tiny", "srcnn_tiny", "dyconvsr"])
def reduced(request, tmp_path_factory):
    torch.manual_seed(2)
    model = create_model(request.param)
    folder = tmp_path_factory.mktemp("reduced") / request.param
    options = ExportOptions(mobile_shape=None,
                            strategy="stacked", precisions=("fp16", "int8"), ort_format=False, tensorrt=(),
                            openvino=(), tiling=False)
    return model, folder, export_artifact(model, folder, options)


@pytest.mark.parametrize("hw", [(20, 24), (21, 27)], ids=["even", "odd"])
def test_reduced_precision_above_recorded_floor(reduced, hw) -> None:
    model, folder, manifest = reduced
    images = _images(2, *hw)
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    precisions = {v.precision: v for v in manifest.variants if v.kind == "onnx"}
    assert {"fp16", "int8"} <= set(precisions), manifest.notes.get("skipped")
    for precision in ("fp16", "int8"):
        variant = precisions[precision]
        floor = variant.parity.tolerance["min_psnr_db"]
        assert variant.parity.passed and variant.parity.psnr_db >= floor
        session = ort.InferenceSession(str(folder / variant.file), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].type == "tensor(float)"  # fp32 I/O kept
        (got,) = session.run(None, {"input": images})
        assert np.isfinite(got).all()
        assert _psnr(got, expected) >= floor, precision


def test_reduced_precision_is_really_reduced(reduced) -> None:
    _, folder, manifest = reduced
    files = {v.precision: folder / v.file for v in manifest.variants if v.kind == "onnx"}
    fp16_types = {i.data_type for i in onnx.load(str(files["fp16"])).graph.initializer}
    assert onnx.TensorProto.FLOAT16 in fp16_types
    int8_ops = {n.op_type for n in onnx.load(str(files["int8"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= int8_ops
    assert manifest.variant(files["int8"].name).notes["quantisation"]["format"] == "QDQ"


def test_int8_below_floor_is_not_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(catalogue.MIN_PSNR_DB, "int8", 150.0)  # unreachable for int8
    manifest = export_artifact(create_model("dyconvsr_tiny"), tmp_path / "a",
                               ExportOptions(mobile_shape=None,
                                             precisions=("int8",), ort_format=False, tensorrt=(), openvino=(),
                                             tiling=False, strategy="branches"))
    assert all(v.precision != "int8" for v in manifest.variants)
    assert not (tmp_path / "a" / "model.int8.onnx").exists()
    assert "below the floor" in manifest.notes["skipped"]["model.int8.onnx"]
    assert verify_files(tmp_path / "a", manifest) == []


def test_ort_format_runs_and_matches(tmp_path) -> None:
    model = create_model("dyconvsr_tiny")
    folder = tmp_path / "a"
    manifest = export_artifact(model, folder, ExportOptions(mobile_shape=None,
                                                            precisions=(), ort_format=True, tensorrt=(),
                                                            openvino=(), tiling=False, strategy="branches"))
    variant = manifest.variant("model.ort")
    assert variant.kind == "ort" and (folder / "model.ort").read_bytes()[4:8] == b"ORTM"
    images = _images(1, 19, 30)
    session = ort.InferenceSession(str(folder / "model.ort"), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": images})
    with torch.no_grad():
        assert np.abs(got - model(torch.from_numpy(images)).numpy()).max() <= 1e-4


def test_fixed_shape_variant(tmp_path) -> None:
    model = create_model("dcnn_tiny")
    manifest = export_artifact(model, tmp_path / "a", ExportOptions(mobile_shape=None,
        strategy="branches", fixed_shapes=[(23, 31)], precisions=(), ort_format=False, tensorrt=(), openvino=(),
        tiling=False))
    variant = next(v for v in manifest.variants if v.fixed_input_shape)
    assert variant.fixed_input_shape == [1, 3, 23, 31] and not variant.dynamic_spatial
    graph = onnx.load(str(tmp_path / "a" / variant.file)).graph
    graph_dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert graph_dims == [1, 3, 23, 31]
    assert any(r.input_shape == [1, 3, 23, 31] for r in manifest.references)  # a reference it can run
    images = _images(1, 23, 31)
    session = ort.InferenceSession(str(tmp_path / "a" / variant.file), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": images})
    with torch.no_grad():
        assert np.abs(got - model(torch.from_numpy(images)).numpy()).max() <= 1e-4
    with pytest.raises(Exception, match="index: 2 Got: 24 Expected: 23"):
        session.run(None, {"input": _images(1, 24, 31)})


def test_auto_picks_the_fastest_passing_strategy(tmp_path) -> None:
    manifest = export_artifact(create_model("dyconvsr_tiny"), tmp_path / "a", ExportOptions(mobile_shape=None,
        strategy="auto", auto_shape=(1, 3, 48, 64), precisions=(), ort_format=False, tensorrt=(), openvino=(),
        tiling=False))
    auto = manifest.notes["auto"]
    timed = {k: v for k, v in auto["median_ms"].items() if isinstance(v, float)}
    assert set(auto["median_ms"]) == set(STRATEGIES)
    assert auto["chosen"] == min(timed, key=timed.get) == manifest.default.strategy
    assert manifest.default.parity.passed
    assert read_manifest(tmp_path / "a").notes["auto"]["chosen"] == auto["chosen"]


def test_int8_comes_from_constant_weights_when_model_onnx_computes_its_kernel(tmp_path) -> None:
    torch.manual_seed(0)
    manifest = export_artifact(create_model("dyconvsr_tiny"), tmp_path / "a", ExportOptions(
        strategy="aggregate", extra_strategies=("branches", "stacked"), precisions=("fp16", "int8"),
        ort_format=False, tensorrt=(), openvino=(), tiling=False, mobile_shape=None))  # no mobile files
    by_file = {v.file: v for v in manifest.variants}
    assert by_file["model.onnx"].strategy == "aggregate" and not by_file["model.onnx"].dynamic_batch
    assert by_file["model.fp16.onnx"].strategy == "aggregate"
    int8 = [v for v in manifest.variants if v.precision == "int8"]
    assert len(int8) == 1 and int8[0].strategy in ("branches", "stacked") and int8[0].dynamic_batch
    assert int8[0].file == "model.int8.onnx" and int8[0].source == f"model.{int8[0].strategy}.onnx"
    graph = onnx.load(str(tmp_path / "a" / int8[0].file)).graph
    constants = {i.name for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    for node in (n for n in graph.node if n.op_type == "Conv"):
        weight = producers.get(node.input[1])
        # Every conv weight is a constant, directly or through its DequantizeLinear.
        assert node.input[1] in constants or (weight is not None and weight.op_type in ("DequantizeLinear", "Constant"))


def test_every_variant_records_the_file_it_was_converted_from(tmp_path) -> None:
    folder = tmp_path / "a"
    manifest = export_artifact(create_model("dyconvsr_tiny"), folder, ExportOptions(
        strategy="aggregate", extra_strategies=("stacked",), precisions=("fp16", "int8"), ort_format=True,
        openvino=("fp32", "int8"), tensorrt=(), tiling=False, mobile_shape=None))  # mobile: test_ort_mobile.py
    expected = {
        "model.onnx": None, "model.stacked.onnx": None,  # exported from PyTorch
        "model.fp16.onnx": "model.onnx",
        "model.int8.onnx": "model.stacked.onnx",  # INT8 needs constant conv weights
        "model.ort": "model.onnx",
        "model.openvino.xml": "model.onnx", "model.openvino.int8.xml": "model.onnx",
    }
    sources = {v.file: v.source for v in manifest.variants}
    skipped = manifest.notes.get("skipped", {})
    assert {f: s for f, s in expected.items() if f not in skipped} == sources, skipped
    assert {v.file: v.source for v in read_manifest(folder).variants} == sources

    # A manifest written before `source` was a field: ORT and OpenVINO variants noted it, reduced
    # ONNX variants carried it only in their name (then model.<lowering>.int8.onnx); both are read back as the field.
    data = json.loads((folder / "manifest.json").read_text())
    legacy = {"model.int8.onnx": "model.stacked.int8.onnx"}
    for variant in data["variants"]:
        if variant.pop("source") is not None and variant["kind"] in ("ort", "openvino"):
            variant["notes"]["source"] = "model.onnx"
        variant["file"] = legacy.get(variant["file"], variant["file"])
    data["files"] = {legacy.get(rel, rel): digest for rel, digest in data["files"].items()}
    (folder / "manifest.json").write_text(json.dumps(data))
    assert {v.file: v.source for v in read_manifest(folder).variants} == {
        legacy.get(file, file): source for file, source in sources.items()}

    data["variants"][0]["source"] = "model.missing.onnx"
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"variants\[0\].source must be null or the file of another variant"):
        read_manifest(folder)


def test_the_int8_file_keeps_its_name_whichever_lowering_it_is_quantised_from(tmp_path) -> None:
    """Issue 25: the INT8 ONNX source is the fastest constant-weight lowering, which timing picks; two exports of the
    same weights where a different lowering is the source still write the same file names."""
    torch.manual_seed(0)
    model = create_model("dyconvsr_tiny")
    names, sources = [], []
    for extra in (("stacked",), ("branches",)):
        manifest = export_artifact(model, tmp_path / extra[0], ExportOptions(
            strategy="aggregate", extra_strategies=extra, precisions=("int8",), ort_format=False, openvino=(),
            tensorrt=(), tiling=False, mobile_shape=None))
        int8 = next(v for v in manifest.variants if v.precision == "int8")
        names.append(sorted(f.replace(extra[0], "<lowering>") for f in (v.file for v in manifest.variants)))
        sources.append(int8.source)
        assert int8.file == "model.int8.onnx"
    assert sources == ["model.stacked.onnx", "model.branches.onnx"] and names[0] == names[1]
