"""Runners: one interface and lifecycle, input validation, provider strictness, OpenVINO, TensorRT
refusals, and the typed error for a backend this machine lacks."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from runtime.errors import BackendUnavailable, UserError
from runtime.runners import RunnerConfig, make_runner
from runtime.runners.gpu import gpu_at, nvidia_gpus
from runtime.runners.ort import resolve_providers
from runtime.runners.plan_origin import PlanOrigin, check_plan_origin

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


def test_runner_is_a_context_manager_with_infer(dy_artifact) -> None:
    runner = make_runner(dy_artifact / "model.onnx")
    with runner:
        out = runner.infer(np.random.rand(1, 3, 9, 11).astype(np.float32))
    assert out.shape == (1, 3, 18, 22)
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        runner.infer(np.zeros((1, 3, 4, 4), np.float32))


def test_open_and_close_are_idempotent_and_with_uses_them(dy_artifact) -> None:
    runner = make_runner(dy_artifact / "model.onnx")
    runner.close()  # never opened: nothing to release, no error
    assert not runner.is_open and runner.session is None
    assert runner.open() is runner and runner.is_open
    session = runner.session
    assert runner.open().session is session  # open twice: the same engine, not a second load
    assert runner.infer(np.zeros((1, 3, 6, 6), np.float32)).shape == (1, 3, 12, 12)
    runner.close()
    runner.close()
    assert not runner.is_open and runner.session is None
    with runner:  # reopened by `with`, closed on the way out
        assert runner.is_open and [i.name for i in runner.inputs] == ["input"]
    assert not runner.is_open and runner.session is None


def test_a_failed_open_leaves_the_runner_closed_and_closable(dy_artifact, tmp_path) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes((dy_artifact / "model.onnx").read_bytes()[:200])  # a truncated real graph
    runner = make_runner(corrupt)
    with pytest.raises(UserError, match="ONNX Runtime cannot load it") as caught:
        runner.open()
    assert not isinstance(caught.value, BackendUnavailable)  # a broken file is not a missing backend
    assert not runner.is_open and runner.session is None
    runner.close()
    with pytest.raises(RuntimeError, match="used while closed"):
        runner.infer(np.zeros((1, 3, 4, 4), np.float32))


@pytest.mark.parametrize(
    "batch,message",
    [
        (np.zeros((1, 4, 8, 8), np.float32), r"channels = 3; got shape \(1, 4, 8, 8\)"),
        (np.zeros((3, 8, 8), np.float32), r"rank 4 \(N, C, H, W\); got shape \(3, 8, 8\)"),
        (np.zeros((1, 3, 8, 8), np.float64), r"must be float32; got float64"),
        (np.zeros((1, 3, 8, 8), np.uint8), r"must be float32; got uint8"),
        ([[0.0]], r"must be a numpy array; got list"),
    ],
)
def test_wrong_input_fails_with_a_clear_message(dy_artifact, batch, message: str) -> None:
    with make_runner(dy_artifact / "model.onnx") as runner, pytest.raises(UserError, match=message):
        runner.infer(batch)


def test_multi_input_graph_needs_run_with_named_feeds(dy_artifact) -> None:
    with make_runner(dy_artifact / "tiling" / "main.onnx") as runner:
        with pytest.raises(UserError, match="use run"):
            runner.infer(np.zeros((1, 3, 8, 8), np.float32))
        with pytest.raises(UserError, match="engine inputs are input, pooled_0; got input"):
            runner.run({"input": np.zeros((1, 3, 8, 8), np.float32)})
        channels = runner.inputs[1].shape[1]
        out = runner.run({"input": np.zeros((1, 3, 8, 8), np.float32), "pooled_0": np.zeros((1, channels), np.float32)})
        assert next(iter(out.values())).shape == (1, 3, 16, 16)


def test_strict_provider_refuses_the_silent_cpu_fallback(dy_artifact) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA; the fallback cannot be provoked")
    runner = make_runner(dy_artifact / "model.onnx", RunnerConfig(provider="cuda"))
    missing = r"CUDAExecutionProvider not running \(session runs CPUExecutionProvider"
    with pytest.raises(BackendUnavailable, match=missing):
        with runner:
            pass
    assert not runner.is_open and runner.session is None  # the fallen-back session is not kept
    # Non-strict: the fallback is allowed, and the runner says where it really runs.
    with make_runner(dy_artifact / "model.onnx", RunnerConfig(provider="cuda,cpu", strict=False)) as runner:
        assert "CPUExecutionProvider" in runner.description
    with make_runner(dy_artifact / "model.onnx", RunnerConfig(provider="cpu", threads=1)) as runner:
        assert runner.description == "onnxruntime CPUExecutionProvider, 1 threads"


def test_provider_names() -> None:
    assert resolve_providers("tensorrt,cuda,cpu", []) == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers("auto", ["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(UserError, match="unknown ONNX Runtime provider 'gpu'"):
        resolve_providers("gpu", [])


def test_engine_type_and_backend_mismatch_are_refused(dy_artifact, tmp_path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="unknown engine type '.bin'"):
        make_runner(tmp_path / "model.bin")
    with pytest.raises(UserError, match="backend 'tensorrt' cannot run model.onnx"):
        make_runner(dy_artifact / "model.onnx", RunnerConfig(backend="tensorrt"))


def test_plan_built_elsewhere_is_refused_by_name() -> None:
    check_plan_origin(PlanOrigin("10.3.0", "NVIDIA L4", "8.9"), "10.3.0", "NVIDIA L4", "8.9")
    with pytest.raises(UserError, match="built with TensorRT 10.0.1, this machine has TensorRT 10.3.0"):
        check_plan_origin(PlanOrigin("10.0.1", "NVIDIA L4", "8.9"), "10.3.0", "NVIDIA L4", "8.9")
    with pytest.raises(UserError, match=r"compute capability 8.9 \(NVIDIA L4\), this GPU is NVIDIA A100 .* with 8.0"):
        check_plan_origin(PlanOrigin("10.3.0", "NVIDIA L4", "8.9"), "10.3.0", "NVIDIA A100 80GB", "8.0")
    notes = {"tensorrt_version": "10.3.0", "gpu_name": "NVIDIA L4"}
    assert PlanOrigin.from_notes(notes) == PlanOrigin("10.3.0", "NVIDIA L4")


def test_plan_without_tensorrt_says_what_to_install(tmp_path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    (tmp_path / "model.fp16.plan").write_bytes(b"\0" * 16)
    with pytest.raises(BackendUnavailable, match=r"needs TensorRT and an NVIDIA GPU: pip install"):
        with make_runner(tmp_path / "model.fp16.plan"):
            pass


def test_the_gpu_probe_names_each_gpu_or_refuses_by_type() -> None:
    gpus = nvidia_gpus()
    if not gpus:  # what a plan meets on this machine: the typed error, naming what is missing
        with pytest.raises(BackendUnavailable, match="needs an NVIDIA GPU; the NVIDIA driver .* lists none"):
            gpu_at(0, "a .plan engine")
    else:
        assert gpu_at(0, "a .plan engine") == gpus[0]
    with pytest.raises(BackendUnavailable, match=f"--gpu {len(gpus)}: this machine has|lists none"):
        gpu_at(len(gpus), "--gpu")  # one past the last
    for gpu in gpus:
        major, minor = gpu.compute_capability.split(".")
        assert gpu.name and int(major) >= 3 and int(minor) >= 0


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino extra not installed")
def test_openvino_matches_onnxruntime_in_f32_and_runs_bf16(dy_artifact) -> None:
    x = np.random.default_rng(0).random((1, 3, 20, 22), dtype=np.float32)
    with make_runner(dy_artifact / "model.onnx") as ort_runner:
        expected = ort_runner.infer(x)
    config = RunnerConfig(backend="openvino", threads=1, precision="f32")
    with make_runner(dy_artifact / "model.onnx", config) as runner:
        assert np.abs(runner.infer(x) - expected).max() <= 1e-4
        assert runner.description.startswith("openvino CPU f32")
    config = RunnerConfig(backend="openvino", precision="bf16", strict=False)
    with make_runner(dy_artifact / "model.onnx", config) as runner:
        out = runner.infer(x)
        assert np.isfinite(out).all() and np.abs(out - expected).max() < 0.1
    with pytest.raises(BackendUnavailable, match="OpenVINO device 'NPU' not available"):
        with make_runner(dy_artifact / "model.onnx", RunnerConfig(backend="openvino", provider="NPU")):
            pass


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino extra not installed")
def test_openvino_ir_runs_on_openvino_by_suffix(dy_artifact, tmp_path) -> None:
    import openvino as ov

    ov.save_model(ov.Core().read_model(str(dy_artifact / "model.onnx")), str(tmp_path / "model.xml"))
    x = np.random.default_rng(1).random((1, 3, 17, 20), dtype=np.float32)
    with make_runner(dy_artifact / "model.onnx") as ort_runner:
        expected = ort_runner.infer(x)
    with make_runner(tmp_path / "model.xml", RunnerConfig(threads=1, precision="f32")) as runner:
        assert runner.description.startswith("openvino CPU")
        assert np.abs(runner.infer(x) - expected).max() <= 1e-4
    with pytest.raises(UserError, match="backend 'onnxruntime' cannot run model.xml"):
        make_runner(tmp_path / "model.xml", RunnerConfig(backend="onnxruntime"))


@pytest.mark.gpu
def test_cuda_provider_really_runs_where_present(dy_artifact) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("no CUDA execution provider in this onnxruntime build")
    x = np.random.default_rng(0).random((1, 3, 16, 18), dtype=np.float32)
    with make_runner(dy_artifact / "model.onnx", RunnerConfig(provider="cuda")) as runner:
        assert "CUDAExecutionProvider" in runner.description
        on_gpu = runner.infer(x)
    with make_runner(dy_artifact / "model.onnx", RunnerConfig(provider="cpu")) as runner:
        assert np.abs(runner.infer(x) - on_gpu).max() <= 1e-4
