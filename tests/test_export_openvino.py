"""OpenVINO IR variants of the artifact (export/openvino_ir.py) on the shipped DyConvSR x2: the fp32 IR
matches PyTorch, the bf16 IR runs in bf16 by itself where the CPU can, the NNCF INT8 IR keeps held-out
quality within the export issue's 0.1 dB budget and leaves the image-carrying skip in float, and
runtime.check runs them from the artifact folder."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nncf") is None or importlib.util.find_spec("openvino") is None,
    reason="the openvino-int8 extra (openvino, nncf) is not installed",
)
SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "dyconvsr_x2.json"


def _cpu_has_bf16() -> bool:
    from runtime.bench.machine import describe_machine

    return bool({"avx512_bf16", "amx_bf16"} & set(describe_machine().isa))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory):  # returns (folder, manifest)
    from export.artifact import ExportOptions, export_artifact
    from train.checkpoint import load_checkpoint

    folder = tmp_path_factory.mktemp("openvino") / "dyconvsr_x2"
    manifest = export_artifact(load_checkpoint(SHIPPED), folder, ExportOptions(mobile_shape=None,
        strategy="aggregate", extra_strategies=(), precisions=(), ort_format=False, tensorrt=(), tiling=False,
        openvino=("fp32", "bf16", "int8")))
    return folder, manifest


def _y_psnr(compiled, scale: int = 2) -> float:  # compiled: an openvino.CompiledModel
    from runtime.metrics import score_pair
    from runtime.quality import make_lr, modcrop
    from train.evaluate import embedded_benchmark

    scores = []
    for _, hr in embedded_benchmark("val").images:
        hr = modcrop(hr, scale)
        lr = np.ascontiguousarray((make_lr(hr, scale).astype(np.float32) / 255).transpose(2, 0, 1)[None])
        out = compiled({0: lr})[0][0].transpose(1, 2, 0)
        scores.append(score_pair(np.floor(np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), hr, border=scale).psnr_y)
    return float(np.mean(scores))


def test_ir_variants_are_in_the_manifest_with_parity(artifact) -> None:
    folder, manifest = artifact
    fp32, int8 = manifest.variant("model.openvino.xml"), manifest.variant("model.openvino.int8.xml")
    assert (fp32.kind, fp32.precision, int8.kind, int8.precision) == ("openvino", "fp32", "openvino", "int8")
    assert fp32.source == int8.source == "model.onnx"
    assert fp32.parity.passed and fp32.parity.max_abs_diff <= 1e-4
    assert int8.parity.passed and int8.parity.tolerance["min_psnr_db"] == 40.0 and int8.parity.psnr_db >= 40.0
    assert int8.parity.max_abs_diff > 1e-4  # really quantised, not the fp32 graph again
    for name in ("model.openvino.xml", "model.openvino.bin", "model.openvino.int8.xml", "model.openvino.int8.bin"):
        assert name in manifest.files and (folder / name).stat().st_size > 0
    # the constant conv weights are stored as int8 (aggregate's kernel bank stays float: it is mixed at run time)
    assert (folder / "model.openvino.int8.bin").stat().st_size < 0.8 * (folder / "model.openvino.bin").stat().st_size


def test_runtime_check_runs_the_ir_from_the_folder(artifact) -> None:
    from runtime.check import PASS, check_artifact
    from runtime.runners import RunnerConfig

    folder, _ = artifact
    report = check_artifact(folder, RunnerConfig(threads=1))
    rows = {row.name: row for row in report.rows}
    assert rows["model.openvino.xml"].engine.startswith("openvino CPU")
    assert rows["model.openvino.xml"].status == rows["model.openvino.int8.xml"].status == PASS
    assert report.passed


def test_nncf_int8_keeps_quality_and_the_skip_in_float(artifact) -> None:
    import openvino as ov

    folder, _ = artifact
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1}
    quantized = core.read_model(str(folder / "model.openvino.int8.xml"))
    fake_quantized = {op.get_friendly_name() for op in quantized.get_ordered_ops()
                      if any(i.get_node().get_type_name() == "FakeQuantize" for i in op.input_values())}
    assert "/tail/Conv/WithoutBiases" in fake_quantized  # the feature convs are INT8
    assert "/Conv" not in fake_quantized  # the fused repeat skip carries the image: float
    fp32 = _y_psnr(core.compile_model(core.read_model(str(folder / "model.onnx")), "CPU", config))
    int8 = _y_psnr(core.compile_model(quantized, "CPU", config))
    assert fp32 > 33.0  # the shipped weights, not a fresh model
    assert fp32 - int8 < 0.1


def test_bf16_ir_carries_its_precision(artifact) -> None:
    folder, manifest = artifact
    if not _cpu_has_bf16():
        assert "model.openvino.bf16.xml" in manifest.notes["skipped"]
        assert not (folder / "model.openvino.bf16.xml").exists()
        return
    import openvino as ov

    variant = manifest.variant("model.openvino.bf16.xml")
    assert variant.precision == "bf16" and variant.parity.passed
    assert 40.0 <= variant.parity.psnr_db < 100.0  # really bf16: far from fp32's ~150 dB, above the floor
    core = ov.Core()
    hint = ["runtime_options", "INFERENCE_PRECISION_HINT"]
    assert core.read_model(str(folder / "model.openvino.bf16.xml")).has_rt_info(hint)
    assert not core.read_model(str(folder / "model.openvino.xml")).has_rt_info(hint)
    # Plain OpenVINO, told nothing, compiles the file in bf16 on this CPU.
    compiled = core.compile_model(str(folder / "model.openvino.bf16.xml"), "CPU")
    assert "bf16" in str(compiled.get_property("INFERENCE_PRECISION_HINT")).replace("bfloat16", "bf16")
