"""Where the milliseconds go: an engine's own profiler, grouped by what the network does, each group against its
roofline. ``python -m runtime.bench ARTIFACT --profile`` (torch-free).

ONNX Runtime: its session profiler (``enable_profiling``) gives every kernel's time with the shapes of its inputs
and outputs, from which each kernel's FLOPs (convolutions and matrix products: 2 x MACs; anything else: one per
output element) and bytes moved (inputs, weights and outputs once) follow. OpenVINO: its performance counters
(``PERF_COUNT``) give every executed node's time; the FLOPs and bytes of a group are then ONNX Runtime's for the
same graph (node names are the ONNX file's). Nodes are grouped by the module scope the exporter wrote into their
names (``/head/Conv``, ``/body/...``) and, where a node has none, by operator type (:func:`group_of`). A group's
roofline is min(peak FLOP/s, memory bandwidth x FLOPs/byte), with the fp32 matrix-product peak and a streaming copy
bandwidth measured in the same process; ``of roofline`` is the time it allows over the group's time. Above 100% the
model is pessimistic for that group: its tensors stay in cache or are never written (fused), so it moves less
through DRAM than their size. bf16 and INT8 engines are held to the fp32 peak (numpy has no bf16 or int8 product;
``benchmarks.run`` measures those peaks with torch).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable, UserError

# Module scopes of the DyConvSR family (train/models) and what they are, in network order.
SCOPES = (
    ("unshuffle", "pixel shuffles"), ("head", "head conv"), ("body", "dynamic conv + attention"),
    ("tail", "tail conv"), ("phase_blur", "high-frequency branch"), ("high_frequency", "high-frequency branch"),
    ("spatial_attention", "spatial attention"),
)
# Operator types (ONNX Runtime kernels and OpenVINO node types) of nodes without a scope.
OPERATORS = {
    "pixel shuffles": {"DepthToSpace", "SpaceToDepth"},
    "GELU": {"Erf", "Gelu", "FastGelu", "BiasGelu"},
    "layout and dtype conversions": {"Slice", "Pad", "Reshape", "Transpose", "Concat", "Shape", "Gather", "Unsqueeze",
                                     "Squeeze", "Cast", "Flatten", "ReorderInput", "ReorderOutput", "Reorder",
                                     "StridedSlice", "Convert", "Constant", "Identity", "Expand", "Range",
                                     "ShapeOf", "Parameter", "Result"},
    "convolutions (other)": {"Conv", "FusedConv", "NchwcConv", "Convolution", "GroupConvolution", "ConvInteger",
                             "QLinearConv"},
}
OTHER = "element-wise and other"
_ITEM_BYTES = {"float": 4, "float16": 2, "bfloat16": 2, "double": 8, "int8": 1, "uint8": 1, "int32": 4, "int64": 8}
MATMUL_OPS = {"MatMul", "Gemm", "FusedMatMul", "MatMulInteger", "QLinearMatMul"}
CONV_OPS = OPERATORS["convolutions (other)"]


def group_of(name: str, op: str) -> str:
    """What node ``name`` (an ONNX node name or an engine's fused kernel named after one) of type ``op`` does."""
    parts = [p for p in name.split("/") if p]
    for scope, group in SCOPES:
        if scope in parts[:-1] or any(p.startswith(f"{scope}.") for p in parts[:-1]):
            return group
    if "GELU" in name.upper() or op in OPERATORS["GELU"]:  # ORT names a fused GELU after its first node (/Div)
        return "GELU"
    return next((group for group, ops in OPERATORS.items() if op in ops), OTHER)


@dataclass
class NodeTime:
    name: str
    op: str
    group: str
    ms: float  # mean per run
    flops: float = 0.0
    bytes: float = 0.0


@dataclass
class GroupTime:
    group: str
    ms: float
    share: float  # of the profiled total
    flops: float
    bytes: float
    roofline_ms: float | None  # the time the roofline allows: the longer of compute at the peak and DRAM traffic
    of_roofline: float | None  # roofline_ms / ms; above 1: the group moves less than its tensors through DRAM
    bound: str = "-"  # "compute" or "memory": which side of the roofline the group's FLOPs/byte put it


@dataclass
class Profile:
    engine: str
    file: str
    input_hw: tuple[int, int]
    runs: int
    total_ms: float  # sum of the kernels' times (per run)
    wall_ms: float  # median run seen from Python
    peak_gflops: float
    bandwidth_gbs: float
    groups: list[GroupTime] = field(default_factory=list)
    nodes: list[NodeTime] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"{self.engine} {self.file}, {self.input_hw[1]}x{self.input_hw[0]} input, {self.runs} runs: "
                 f"kernels {self.total_ms:.2f} ms, wall {self.wall_ms:.2f} ms; roofline from the fp32 peak "
                 f"{self.peak_gflops:.0f} GFLOP/s (numpy BLAS) and {self.bandwidth_gbs:.1f} GB/s (DRAM copy)"
                 + ("; a reduced-precision engine is held to the fp32 peak here" if "bf16" in self.engine else ""),
                 f"{'group':30} {'ms':>8} {'share':>6} {'GFLOP':>7} {'MB':>8} {'bound':>8} {'roofline ms':>11} "
                 f"{'of roofline':>11}"]
        for g in self.groups:
            roof = "-" if g.roofline_ms is None else f"{g.roofline_ms:.2f}"
            of = "-" if g.of_roofline is None else f"{100 * g.of_roofline:.0f}%"
            lines.append(f"{g.group:30} {g.ms:8.2f} {100 * g.share:5.1f}% {g.flops / 1e9:7.2f} {g.bytes / 1e6:8.1f} "
                         f"{g.bound:>8} {roof:>11} {of:>11}")
        return "\n".join(lines)


def _numel(shape: Sequence[int]) -> int:
    return int(math.prod(shape)) if shape else 1


def _shapes(entries: list) -> list[tuple[str, list[int]]]:
    """ORT's ``input_type_shape`` entries ([{"float": [1, 3, 8, 8]}]) as (element type, shape)."""
    return [(kind, list(dims)) for entry in entries for kind, dims in entry.items()]


def node_cost(op: str, inputs: list[tuple[str, list[int]]], outputs: list[tuple[str, list[int]]]) -> tuple[float,
                                                                                                         float]:
    """(FLOPs, bytes moved) of one kernel from its shapes: 2 x MACs for convolutions and matrix products, one per
    output element otherwise; every input and output read or written once."""
    moved = sum(_numel(s) * _ITEM_BYTES.get(k, 4) for k, s in (*inputs, *outputs))
    out = sum(_numel(s) for _, s in outputs)
    if op in CONV_OPS and len(inputs) >= 2 and len(inputs[1][1]) >= 3:
        weight = inputs[1][1]  # [C_out, C_in / groups, kh, kw]
        return 2.0 * out * _numel(weight[1:]), float(moved)
    if op in MATMUL_OPS and len(inputs) >= 2 and inputs[0][1]:
        return 2.0 * out * inputs[0][1][-1], float(moved)
    return float(out), float(moved)


def memory_bandwidth(megabytes: int = 256, repeats: int = 5) -> float:
    """Best GB/s of a streaming copy (read + write) of a buffer far larger than any cache."""
    source = np.ones(megabytes * (1 << 20) // 4, dtype=np.float32)
    target = np.empty_like(source)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best / 1e9


def summarise(nodes: list[NodeTime], peak_gflops: float, bandwidth_gbs: float) -> list[GroupTime]:
    """Nodes summed per group, slowest group first, each against its roofline."""
    total = sum(n.ms for n in nodes) or 1.0
    groups: dict[str, list[NodeTime]] = {}
    for node in nodes:
        groups.setdefault(node.group, []).append(node)
    result = []
    for name, members in groups.items():
        ms, flops, moved = (sum(getattr(n, key) for n in members) for key in ("ms", "flops", "bytes"))
        roof, bound = None, "-"
        if flops and moved:
            compute, memory = flops / (peak_gflops * 1e9), moved / (bandwidth_gbs * 1e9)
            roof, bound = 1e3 * max(compute, memory), "compute" if compute >= memory else "memory"
        result.append(GroupTime(name, ms, ms / total, flops, moved, roof, roof / ms if roof and ms else None, bound))
    return sorted(result, key=lambda g: -g.ms)


def ort_profile(path: Path, height: int, width: int, runs: int, threads: int) -> tuple[list[NodeTime], float]:
    """Every kernel of one ONNX Runtime CPU session on a (1, 3, height, width) input, mean ms per run; and the
    median wall time of a run."""
    import onnxruntime as ort

    from ..runners.ort import session_options

    with tempfile.TemporaryDirectory(prefix="dyconvsr-profile-") as scratch:
        options = session_options(threads)
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(scratch, "ort")
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types
            raise UserError(f"{path}: ONNX Runtime cannot load it ({exc})") from None
        name = session.get_inputs()[0].name
        feed = {name: np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)}
        session.run(None, feed)  # warm-up: recorded too, left out below
        walls = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, feed)
            walls.append(time.perf_counter() - start)
        events = json.loads(Path(session.end_profiling()).read_text())
    kernels = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time")]
    per_node: dict[str, list[dict]] = {}
    for event in kernels:
        per_node.setdefault(event["name"].removesuffix("_kernel_time"), []).append(event)
    nodes = []
    for node, seen in per_node.items():
        timed = seen[-runs:]  # the warm-up run first
        args = timed[-1].get("args", {})
        op = args.get("op_name", "?")
        flops, moved = node_cost(op, _shapes(args.get("input_type_shape", [])),
                                 _shapes(args.get("output_type_shape", [])))
        nodes.append(NodeTime(node, op, group_of(node, op), sum(e["dur"] for e in timed) / len(timed) / 1e3,
                              flops, moved))
    return nodes, 1e3 * float(np.median(walls))


def openvino_profile(path: Path, height: int, width: int, runs: int, threads: int,
                     precision: str = "f32") -> tuple[list[NodeTime], float]:
    """Every executed node of one OpenVINO CPU compile (performance counters), mean ms per run; and the median wall
    time of a run. FLOPs and bytes are left for the caller to take from ONNX Runtime's profile of the same graph."""
    from ..runners.openvino import import_openvino

    core = import_openvino().Core()
    model = core.read_model(str(path))
    model.reshape([1, 3, height, width])
    properties = {"PERF_COUNT": "YES", "INFERENCE_PRECISION_HINT": precision}
    if threads:
        properties["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(model, "CPU", properties)
    request = compiled.create_infer_request()
    feed = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    request.infer({0: feed})
    totals: dict[tuple[str, str], float] = {}
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        request.infer({0: feed})
        walls.append(time.perf_counter() - start)
        for info in request.profiling_info:
            if info.status == info.Status.EXECUTED:
                key = (info.node_name, info.node_type)
                totals[key] = totals.get(key, 0.0) + info.real_time.total_seconds() * 1e3
    nodes = [NodeTime(name, op, group_of(name, op), ms / runs) for (name, op), ms in totals.items()]
    return nodes, 1e3 * float(np.median(walls))


def borrow_costs(nodes: list[NodeTime], costs: list[NodeTime]) -> None:
    """Give each group of ``nodes`` the FLOPs and bytes ``costs`` (ONNX Runtime's profile of the same graph) has for
    that group, on its first node: engines fuse differently, the arithmetic of a group is the graph's."""
    by_group: dict[str, tuple[float, float]] = {}
    for cost in costs:
        flops, moved = by_group.get(cost.group, (0.0, 0.0))
        by_group[cost.group] = (flops + cost.flops, moved + cost.bytes)
    seen = set()
    for node in nodes:
        if node.group in by_group and node.group not in seen:
            node.flops, node.bytes = by_group[node.group]
            seen.add(node.group)


def profile_artifact(folder: Path, height: int, width: int, runs: int = 10, threads: int = 2,
                     backends: Sequence[str] = ("onnxruntime", "openvino")) -> list[Profile]:
    """The default model.onnx on ONNX Runtime and, where OpenVINO is installed, the fp32 and bf16 IR."""
    from ..manifest import read_manifest
    from .machine import numpy_matmul_peak

    manifest = read_manifest(folder)
    peak = numpy_matmul_peak().gflops or 1.0
    bandwidth = memory_bandwidth()
    default = folder / manifest.default_variant
    costs, wall = ort_profile(default, height, width, runs, threads)
    profiles = [Profile("onnxruntime CPU", default.name, (height, width), runs, sum(n.ms for n in costs), wall, peak,
                        bandwidth, summarise(costs, peak, bandwidth), costs)]
    if "openvino" in backends:
        for variant in (v for v in manifest.variants if v.kind == "openvino" and v.precision in ("fp32", "bf16")):
            precision = "bf16" if variant.precision == "bf16" else "f32"
            try:
                nodes, wall = openvino_profile(folder / variant.file, height, width, runs, threads, precision)
            except BackendUnavailable:
                break
            except RuntimeError as exc:  # bf16 on a CPU without it, and the like: that engine is not profiled
                profiles.append(Profile(f"openvino CPU {precision} (not profiled: {str(exc).splitlines()[0]})",
                                        variant.file, (height, width), 0, 0.0, 0.0, peak, bandwidth))
                continue
            borrow_costs(nodes, costs)
            profiles.append(Profile(f"openvino CPU {precision}", variant.file, (height, width), runs,
                                    sum(n.ms for n in nodes), wall, peak, bandwidth,
                                    summarise(nodes, peak, bandwidth), nodes))
    return profiles


def profiles_json(profiles: list[Profile]) -> list[dict]:
    return [asdict(p) for p in profiles]
