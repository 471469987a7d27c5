"""ONNX Runtime Mobile's usability check of a graph: NNAPI and Core ML partitions, saved as JSON + text.

ONNX Runtime's own checker (``python -m onnxruntime.tools.check_onnx_model_mobile_usability``;
``onnxruntime.tools.mobile_helpers.usability_checker``) optimises the graph at the basic level (what
the ``.ort`` conversion does too), then estimates, per execution provider, how many nodes it takes
and in how many partitions, from the op types in the EP's supported-ops table alone. Its table's
caveats ("Only DCR mode DepthToSpace", "Weights should be constant") are printed, not checked. This
module runs the same estimate and also enforces the caveats a graph can prove by itself
(:data:`CAVEATS`), so ``partitions_checked`` is the count to expect on a device.

``python -m export.mobile_usability FILE.onnx ... [-o PREFIX]`` prints the table (and writes PREFIX.json/.txt).
"""
from __future__ import annotations

import io
import json
import logging
import pathlib
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import click
import onnx

from runtime.cli_options import NamedPath
from runtime.errors import UserError, cli_errors
from runtime.files import atomic_write_bytes

SCHEMA = "dyconvsr-toolchain/mobile-usability"
SCHEMA_VERSION = 1
EPS = ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram")
_TABLES = {"CoreML NeuralNetwork": "coreml_supported_neuralnetwork_ops.md",
           "CoreML MLProgram": "coreml_supported_mlprogram_ops.md"}

Rule = Callable[[onnx.NodeProto, set[str]], str | None]  # (node, constant names) -> violated caveat or None


def _weights_constant(node: onnx.NodeProto, constants: set[str]) -> str | None:
    return None if all(i in constants for i in node.input[1:] if i) else "weights/bias not constant"


def _dcr(node: onnx.NodeProto, _: set[str]) -> str | None:
    mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "DCR")
    return None if mode == "DCR" else f"{mode} mode (DCR only)"


def _constant_pad(node: onnx.NodeProto, constants: set[str]) -> str | None:
    mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "constant")
    if mode != "constant":
        return f"{mode} mode (constant only)"
    return None if all(i in constants for i in node.input[1:] if i) else "pads not constant"


def _constant_inputs(node: onnx.NodeProto, constants: set[str]) -> str | None:
    return None if all(i in constants for i in node.input[1:] if i) else "non-constant indices/axes/bounds"


# The caveats of each EP's supported-ops table that the graph alone can decide, by op type.
CAVEATS: dict[str, dict[str, Rule]] = {
    "NNAPI": {"Conv": _weights_constant, "DepthToSpace": _dcr, "Pad": _constant_pad,
              "Unsqueeze": _constant_inputs, "Gather": _constant_inputs},
    "CoreML NeuralNetwork": {"Conv": _weights_constant, "DepthToSpace": _dcr, "Pad": _constant_pad,
                             "MatMul": _weights_constant, "Slice": _constant_inputs},
    "CoreML MLProgram": {"Conv": _weights_constant, "Slice": _constant_inputs, "Pad": _constant_pad},
}


@dataclass
class EpPartitions:
    """One execution provider's share of one graph."""

    ep: str
    nodes: int
    supported_nodes: int  # by op type, as ONNX Runtime's checker counts
    partitions: int
    partition_sizes: list[int]
    unsupported_ops: dict[str, int]  # op type -> nodes the EP's table lacks
    unsupported_dynamic_shape: int  # nodes refused for an input of dynamic shape
    unsupported_rank: int  # nodes refused for an input above the EP's rank limit (Core ML: 5)
    caveat_violations: dict[str, int]  # "Op: why" -> nodes, from :data:`CAVEATS`
    supported_nodes_checked: int  # with those caveats enforced: what a device can expect
    partitions_checked: int
    partition_sizes_checked: list[int]
    suitability: str  # ONNX Runtime's verdict on the op-type estimate: YES, MAYBE or NO


@dataclass
class GraphUsability:
    file: str
    fixed_shape: bool
    eps: list[EpPartitions]  # as the graph is
    # Dynamic graphs: ONNX Runtime's estimate were the input shape fixed (empty for fixed graphs).
    if_fixed: list[EpPartitions] = field(default_factory=list)


@dataclass
class UsabilityReport:
    onnxruntime: str
    graphs: list[GraphUsability]
    text: str = ""  # ONNX Runtime's checker log for every graph

    def graph(self, file: str) -> GraphUsability:
        for graph in self.graphs:
            if graph.file == file:
                return graph
        raise KeyError(f"no usability entry for {file!r}; graphs: {', '.join(g.file for g in self.graphs)}")

    def to_dict(self) -> dict:
        body = asdict(self)
        body.pop("text")
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, **body}

    @classmethod
    def from_dict(cls, data: dict, text: str = "") -> UsabilityReport:
        if data.get("schema") != SCHEMA or data.get("version") != SCHEMA_VERSION:
            raise UserError(f"not a {SCHEMA} v{SCHEMA_VERSION} report: schema {data.get('schema')!r} "
                            f"v{data.get('version')!r}")
        graphs = [GraphUsability(g["file"], g["fixed_shape"], [EpPartitions(**e) for e in g["eps"]],
                                 [EpPartitions(**e) for e in g["if_fixed"]]) for g in data["graphs"]]
        return cls(data["onnxruntime"], graphs, text)

    def table(self) -> str:
        """One line per graph and EP: nodes taken and partitions, by op type and with caveats checked."""
        lines = [f"{'graph':<40}{'EP':<22}{'nodes':>8}{'parts':>7}{'checked':>9}{'parts':>7}  unsupported"]
        rows: list[tuple[str, EpPartitions]] = []
        for graph in self.graphs:  # a dynamic graph also as ONNX Runtime estimates it with its shapes fixed
            rows += [(graph.file, ep) for ep in graph.eps] + [(f"{graph.file} if fixed", ep) for ep in graph.if_fixed]
        for name, ep in rows:
            blockers = [f"{op} x{n}" for op, n in ep.unsupported_ops.items()]
            blockers += [f"{why} x{n}" for why, n in ep.caveat_violations.items()]
            if ep.unsupported_dynamic_shape:
                blockers.append(f"dynamic shape x{ep.unsupported_dynamic_shape}")
            if ep.unsupported_rank:
                blockers.append(f"rank > 5 x{ep.unsupported_rank}")
            lines.append(f"{name:<40}{ep.ep:<22}{f'{ep.supported_nodes}/{ep.nodes}':>8}{ep.partitions:>7}"
                         f"{f'{ep.supported_nodes_checked}/{ep.nodes}':>9}{ep.partitions_checked:>7}  "
                         f"{', '.join(blockers) or '-'}")
        return "\n".join(lines)


class _CheckedOps:
    """An EP's supported-ops table (ONNX Runtime's checker object), optionally with :data:`CAVEATS` enforced."""

    def __init__(self, table, rules: dict[str, Rule] | None, constants: set[str]) -> None:
        self.table, self.rules, self.constants = table, rules or {}, constants

    def violation(self, node: onnx.NodeProto) -> str | None:
        """The caveat ``node`` (of a supported op type) violates, as "Op: why", or None."""
        rule = self.rules.get(node.op_type)
        why = rule(node, self.constants) if rule else None
        return f"{node.op_type}: {why}" if why else None

    def is_op_supported(self, node: onnx.NodeProto) -> bool:
        return self.table.is_op_supported(node) and self.violation(node) is None

    def get_caveats(self) -> list[str]:
        return self.table.get_caveats()


def _ep_partitions(model: onnx.ModelProto, ep: str, fixed: bool) -> EpPartitions:
    from onnxruntime.tools.mobile_helpers import usability_checker as uc

    folder = pathlib.Path(uc.__file__).parent
    table = uc._SupportedOpsChecker(folder / ("nnapi_supported_ops.md" if ep == "NNAPI" else _TABLES[ep]))
    max_rank = 999 if ep == "NNAPI" else 5  # as usability_checker.check_coreml_partitions
    constants = {i.name for i in model.graph.initializer}
    plain = uc.check_partitioning(model.graph, _CheckedOps(table, None, constants), fixed, max_rank)
    strict = _CheckedOps(table, CAVEATS[ep], constants)
    checked = uc.check_partitioning(model.graph, strict, fixed, max_rank)
    unsupported = Counter(n.op_type for n in model.graph.node if not table.is_op_supported(n))
    violations = Counter(strict.violation(n) for n in model.graph.node if table.is_op_supported(n))
    violations.pop(None, None)
    return EpPartitions(
        ep=ep, nodes=plain.num_nodes, supported_nodes=plain.num_supported_nodes, partitions=plain.num_partitions,
        partition_sizes=[len(g) for g in plain.supported_groups], unsupported_ops=dict(sorted(unsupported.items())),
        unsupported_dynamic_shape=plain.nodes_unsupported_due_to_dynamic_input,
        unsupported_rank=plain.num_unsupported_nodes_due_to_rank, caveat_violations=dict(sorted(violations.items())),
        supported_nodes_checked=checked.num_supported_nodes, partitions_checked=checked.num_partitions,
        partition_sizes_checked=[len(g) for g in checked.supported_groups], suitability=plain.suitability().name,
    )


def check_graph(path: str | pathlib.Path, name: str | None = None) -> tuple[GraphUsability, str]:
    """The usability of one ONNX file (optimised at the basic level first, as the ``.ort`` conversion
    does), and ONNX Runtime's own checker log for it."""
    from onnxruntime.tools import onnx_model_utils
    from onnxruntime.tools.mobile_helpers import usability_checker as uc

    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such ONNX file")
    with tempfile.TemporaryDirectory() as tmp:
        optimized = pathlib.Path(tmp) / path.name
        onnx_model_utils.optimize_model(path, optimized, use_external_initializers=True)
        model = onnx_model_utils.ModelProtoWithShapeInfo(optimized).model_with_shape_info
        dynamic_inputs = [i for i in model.graph.input if not onnx_model_utils.is_fixed_size_tensor(i)]
        log = logging.getLogger(f"{__name__}.checker")  # ONNX Runtime's checker logs its findings at INFO
        log.setLevel(logging.INFO)
        log.propagate = False
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        log.addHandler(handler)
        try:
            log.info(f"Checking {name or path.name} for usability with ORT Mobile.")
            uc.checker(optimized, log)
        finally:
            log.removeHandler(handler)
        eps = [_ep_partitions(model, ep, True) for ep in EPS]
        if_fixed = [_ep_partitions(model, ep, False) for ep in EPS] if dynamic_inputs else []
    return GraphUsability(name or path.name, not dynamic_inputs, eps, if_fixed), stream.getvalue()


def usability_report(paths: Sequence[str | pathlib.Path]) -> UsabilityReport:
    import onnxruntime

    graphs, texts = [], []
    for path in paths:
        graph, text = check_graph(path)
        graphs.append(graph)
        texts.append(text)
    return UsabilityReport(onnxruntime.__version__, graphs, "\n".join(texts))


def write_report(report: UsabilityReport, json_path: str | pathlib.Path, text_path: str | pathlib.Path) -> None:
    """The report as JSON, and as text: the table, then ONNX Runtime's checker log."""
    atomic_write_bytes(json_path, (json.dumps(report.to_dict(), indent=2) + "\n").encode())
    atomic_write_bytes(text_path, f"{report.table()}\n\n{report.text}".encode())


def read_report(json_path: str | pathlib.Path, text_path: str | pathlib.Path | None = None) -> UsabilityReport:
    try:
        data = json.loads(pathlib.Path(json_path).read_text(encoding="utf-8"))
        text = pathlib.Path(text_path).read_text(encoding="utf-8") if text_path else ""
    except (OSError, ValueError) as exc:
        raise UserError(f"{json_path}: cannot read the usability report ({exc})") from None
    return UsabilityReport.from_dict(data, text)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("files", nargs=-1, required=True, type=NamedPath(dir_okay=False))
@click.option("-o", "--out", "prefix", default=None, metavar="PREFIX", type=NamedPath(dir_okay=False),
              help="Also write PREFIX.json and PREFIX.txt.")
@cli_errors
def main(files: tuple[str, ...], prefix: str | None) -> None:
    """Print the NNAPI / Core ML partitions of each ONNX FILE (``python -m export.mobile_usability``)."""
    report = usability_report(files)
    click.echo(report.table())
    if prefix is not None:
        write_report(report, f"{prefix}.json", f"{prefix}.txt")


if __name__ == "__main__":
    main()
