"""Benchmark engines: anything that upscales a float32 NCHW batch, split into untimed and timed steps.

``prepare`` (untimed) turns the shared input into what the engine eats, ``run`` (timed) is the
call a user pays for, ``to_array`` (untimed) turns the result back for parity checks. Engines
for artifact variants wrap :mod:`runtime.runners`; benchmarks/ adds PyTorch and Pillow engines.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import catalogue
from ..backends import BY_NAME, for_kind
from ..errors import UserError
from ..host import gpu_names
from ..manifest import Manifest, Variant, artifact_file
from ..parity import run_in_chunks
from ..runners import Runner, RunnerConfig, make_runner
from ..runners.openvino import openvino_hint
from ..runners.plan_origin import PlanOrigin

NO_GPU = "not measured: no GPU"


@dataclass
class EngineInfo:
    label: str  # unique within a report group, e.g. "onnxruntime model.onnx" (catalogue.DEFAULT_FILE)
    backend: str  # "pytorch", "torch.compile", "onnxruntime", "openvino", "tensorrt", "pillow", ...
    variant: str  # file or formulation
    precision: str = "fp32"
    strategy: str | None = None
    device: str = "cpu"
    notes: dict[str, Any] = field(default_factory=dict)


class Engine(abc.ABC):
    def __init__(self, info: EngineInfo) -> None:
        self.info = info

    def supports(self, batch: int, height: int, width: int) -> str | None:
        """None if the engine can run this input, else why not (it becomes a 'not measured' row)."""
        return None

    @abc.abstractmethod
    def load(self) -> None: ...

    def prepare(self, batch: np.ndarray) -> Any:
        return batch

    @abc.abstractmethod
    def run(self, feed: Any) -> Any: ...

    def to_array(self, output: Any) -> np.ndarray:
        return np.asarray(output)

    def close(self) -> None:
        return None

    @property
    def description(self) -> str:
        return self.info.backend


@dataclass
class NotMeasured:
    """An engine the report lists but cannot run here, with the reason."""

    info: EngineInfo
    reason: str


class RunnerEngine(Engine):
    """An engine file run through :func:`runtime.runners.make_runner`."""

    def __init__(self, info: EngineInfo, path: Path, config: RunnerConfig, variant: Variant | None = None) -> None:
        super().__init__(info)
        self.path, self.config, self.variant = path, config, variant
        self.runner: Runner | None = None

    def supports(self, batch: int, height: int, width: int) -> str | None:
        if self.variant is None:
            return None
        fixed = self.variant.fixed_input_shape
        if fixed and tuple(fixed[-2:]) != (height, width):
            return f"not measured: fixed input shape {fixed[-1]}x{fixed[-2]}"
        if not self.variant.dynamic_batch and self.variant.batch and batch % self.variant.batch:
            return f"not measured: batch {batch} is not a multiple of the variant's fixed batch {self.variant.batch}"
        return None

    def load(self) -> None:
        origin = PlanOrigin.from_notes(self.variant.notes) if self.variant else None
        self.runner = make_runner(self.path, self.config, origin).open()

    def prepare(self, batch: np.ndarray) -> np.ndarray:
        assert self.runner is not None
        return np.ascontiguousarray(batch, dtype=self.runner.inputs[0].dtype)

    def run(self, feed: np.ndarray) -> np.ndarray:
        assert self.runner is not None
        chunk = self.variant.batch if self.variant and not self.variant.dynamic_batch else None
        return run_in_chunks(self.runner.infer, feed, chunk)

    def to_array(self, output: np.ndarray) -> np.ndarray:
        return np.asarray(output, dtype=np.float32)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
            self.runner = None

    @property
    def description(self) -> str:
        return self.runner.description if self.runner else self.info.backend


def onnxruntime_providers() -> list[str]:
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def artifact_engines(
    folder: Path,
    manifest: Manifest,
    threads: int,
    backends: set[str],
    openvino_precisions: tuple[str, ...] = ("f32", "bf16"),
    openvino_all: bool = False,
) -> list[Engine | NotMeasured]:
    """Every variant of an artifact on every requested backend, GPU ones listed as not measured here.

    ``backends`` holds any of "onnxruntime", "openvino", "litert", "gpu". ONNX Runtime runs on the CPU
    provider (strict: no silent fallback); OpenVINO runs each fp32 ONNX variant in each of
    ``openvino_precisions`` and the INT8 file as it is; only the default variant and the INT8 file
    unless ``openvino_all`` (OpenVINO re-optimises the graph itself, so lowerings matter less there).
    """
    engines: list[Engine | NotMeasured] = []
    cpu = RunnerConfig(backend="onnxruntime", provider="cpu", threads=threads, strict=True, spin=False)
    for variant in manifest.variants:
        path = artifact_file(folder, variant.file)  # never an engine symlinked out of the folder
        # The source (the file this one was converted from) goes into every row, for pairing reduced precision.
        base = EngineInfo("", "onnxruntime", variant.file, variant.precision, variant.strategy, "cpu",
                          {"source": variant.source} if variant.source else {})
        if variant.kind in ("onnx", "ort") and "onnxruntime" in backends:
            engines.append(RunnerEngine(replace(base, label=f"onnxruntime {variant.file}"), path, cpu, variant))
        on_openvino = openvino_all or variant.file == manifest.default_variant or variant.precision == "int8"
        if variant.kind == "onnx" and "openvino" in backends and on_openvino:
            engines += _openvino_engines(base, path, variant, threads, openvino_precisions)
        if variant.kind == "openvino" and "openvino" in backends and (on_openvino or variant.precision == "bf16"):
            # IR files run as written: fp32 and the INT8 file's float parts in f32 (so INT8 pairs with
            # the fp32 graph it came from), the bf16 file in the precision stored in it.
            engines += _openvino_engines(base, path, variant, threads, (openvino_hint(variant.precision),))
        runs = for_kind(variant.kind)
        if runs.name not in ("onnxruntime", "openvino") and runs.device == "cpu" and runs.name in backends:
            # Any other CPU backend of the registry (LiteRT, and the next one): its files as they are.
            info = replace(base, label=f"{runs.name} {variant.file}", backend=runs.name)
            missing = runs.missing()
            if missing is None:
                engines.append(RunnerEngine(info, path, RunnerConfig(backend=runs.name, threads=threads), variant))
            else:
                engines.append(NotMeasured(info, f"not measured: {missing}"))
        if variant.kind == "tensorrt" and "gpu" in backends:
            info = replace(base, label=f"tensorrt {variant.file}", backend="tensorrt", device="gpu")
            engines.append(_gpu_engine(info, path, RunnerConfig(backend="tensorrt"), variant))
    if "gpu" in backends:
        engines += _gpu_placeholders(folder, manifest, threads)
    return engines


def _openvino_engines(base: EngineInfo, path: Path, variant: Variant, threads: int,
                      precisions: tuple[str | None, ...]) -> list[Engine | NotMeasured]:
    # OpenVINO picks its own inference precision for an fp16 graph (bf16 on such CPUs), so only the
    # fp32 graphs (at each requested precision) and the INT8 graph (its own kernels) are run.
    if variant.precision not in ("fp32", "int8") and variant.kind != "openvino":
        return []
    # INT8 ONNX: its float parts in f32, as export proved it.
    wanted = precisions if variant.precision == "fp32" or variant.kind == "openvino" else (
        openvino_hint(variant.precision),)
    out: list[Engine | NotMeasured] = []
    for precision in wanted:
        name = variant.precision if precision is None or variant.precision == "int8" else precision
        info = replace(base, label=f"openvino {name} {variant.file}", backend="openvino",
                       precision=variant.precision if precision in (None, "f32") else name)
        missing = BY_NAME["openvino"].missing()
        if missing is not None:
            out.append(NotMeasured(info, f"not measured: {missing}"))
            continue
        config = RunnerConfig(backend="openvino", provider="CPU", threads=threads, strict=True, precision=precision)
        out.append(RunnerEngine(info, path, config, variant))
    return out


def _gpu_engine(info: EngineInfo, path: Path, config: RunnerConfig, variant: Variant) -> Engine | NotMeasured:
    return RunnerEngine(info, path, config, variant) if gpu_names() else NotMeasured(info, NO_GPU)


def _gpu_placeholders(folder: Path, manifest: Manifest, threads: int) -> list[Engine | NotMeasured]:
    """ONNX Runtime's CUDA and TensorRT providers on the default variant, and TensorRT plans that
    export did not build (it builds them only where a GPU is)."""
    default = manifest.default
    out: list[Engine | NotMeasured] = []
    providers = onnxruntime_providers()
    for short, full in (("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")):
        info = EngineInfo(f"onnxruntime-{short} {default.file}", f"onnxruntime-{short}", default.file,
                          default.precision, default.strategy, "gpu")
        if not gpu_names():
            out.append(NotMeasured(info, NO_GPU))
        elif full not in providers:
            out.append(NotMeasured(info, f"not measured: this onnxruntime build lacks {full} (install the gpu extra)"))
        else:
            config = RunnerConfig(backend="onnxruntime", provider=short, threads=threads, strict=True, spin=False)
            out.append(RunnerEngine(info, artifact_file(folder, default.file), config, default))
    built = {v.precision for v in manifest.variants if v.kind == "tensorrt"}
    for precision in catalogue.TENSORRT_PRECISIONS:
        if precision not in built:
            plan = catalogue.plan_file(precision)
            info = EngineInfo(f"tensorrt {plan}", "tensorrt", plan, precision, default.strategy, "gpu")
            reason = NO_GPU if not gpu_names() else "not measured: export built no plan of this precision"
            out.append(NotMeasured(info, reason))
    return out


def check_engine_labels(engines: list[Engine | NotMeasured]) -> None:
    seen: set[str] = set()
    for engine in engines:
        if engine.info.label in seen:
            raise UserError(f"two engines share the label {engine.info.label!r}")
        seen.add(engine.info.label)
