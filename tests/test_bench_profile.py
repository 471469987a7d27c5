"""runtime/bench/profile.py: ONNX Runtime's profiler and OpenVINO's counters on a real exported DyConvSR, grouped by
what the network does, with FLOPs checked against the graph's own weights; the CLI torch-free."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.bench.profile import ort_profile, profile_artifact
from test_bench_runtime import bench_without_torch

HW = (24, 32)


def test_every_kernel_is_timed_grouped_and_costed_from_its_shapes(real_artifact: Path) -> None:
    onnx = pytest.importorskip("onnx")
    nodes, wall = ort_profile(real_artifact / "model.onnx", *HW, runs=3, threads=1)
    groups = {n.group for n in nodes}
    assert {"head conv", "dynamic conv + attention", "tail conv", "spatial attention"} <= groups, groups
    assert wall > 0 and all(n.ms >= 0 for n in nodes)
    # The head conv's FLOPs from the graph itself: 2 x C_out x (H/2 x W/2 after the unshuffle) x C_in x k x k.
    model = onnx.load(str(real_artifact / "model.onnx"))
    head = next(n for n in model.graph.node if n.name == "/head/Conv")
    weight = next(t for t in model.graph.initializer if t.name == head.input[1])
    c_out, c_in, kh, kw = weight.dims
    expected = 2 * c_out * (HW[0] // 2) * (HW[1] // 2) * c_in * kh * kw
    costed = [n for n in nodes if n.group == "head conv" and n.op in ("Conv", "FusedConv", "NchwcConv")]
    assert costed and sum(n.flops for n in costed) == expected


def test_the_profile_command_prints_the_groups_and_writes_json_without_torch(real_artifact: Path,
                                                                               tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    result = bench_without_torch([real_artifact, "--profile", "-r", f"{HW[1]}x{HW[0]}", "--threads", "1",
                                  "--backend", "onnxruntime", "-o", out])
    assert "onnxruntime CPU model.onnx" in result.stdout and "dynamic conv + attention" in result.stdout
    (profile, *_) = json.loads(out.read_text())["profiles"]
    assert profile["file"] == "model.onnx" and profile["input_hw"] == list(HW)
    assert sum(g["share"] for g in profile["groups"]) == pytest.approx(1.0)
    assert sum(g["ms"] for g in profile["groups"]) == pytest.approx(profile["total_ms"])


def test_openvino_counters_get_the_graphs_arithmetic_per_group(litert_artifact: Path) -> None:
    pytest.importorskip("openvino")
    profiles = profile_artifact(litert_artifact, *HW, runs=2, threads=1)  # its fp32 IR
    ort, *openvino = profiles
    assert openvino, "the artifact has OpenVINO IR and openvino is installed: it is profiled"
    costs = {g.group: g.flops for g in ort.groups}
    for profile in openvino:
        if not profile.runs:  # bf16 on a CPU without it: said in its title
            assert "not profiled" in profile.engine
            continue
        assert profile.engine.startswith("openvino CPU") and profile.groups
        for group in profile.groups:
            assert group.flops in (0.0, costs.get(group.group, 0.0))
