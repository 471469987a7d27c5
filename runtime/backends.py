"""One record per engine family: what every package knows about a backend, in one place.

A :class:`Backend` says which engine files it runs (by suffix, and which it can run when named with
``--backend``), which files sit beside an engine (OpenVINO's weights), which manifest variant kinds it
runs by default, which Python packages it needs and from which optional extra, how to tell whether this
install has them, and where its runner lives (imported only when an engine of that kind is opened).
``runtime.runners`` (``--backend`` choices, suffix dispatch, the runner factory), the manifest's
``engine_files``, the CLI help and the benchmarks' backend names are all derived from :data:`REGISTRY`.

Adding a backend: its runner module under ``runtime/runners/`` (a :class:`~runtime.runners.base.Runner`)
and one record here; export steps and benchmark rows look the backend up by name.
This module imports nothing heavy: every command imports it.
"""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UserError
from .host import install_command

if TYPE_CHECKING:
    from .runners.base import Runner, RunnerConfig


@dataclass(frozen=True)
class Backend:
    """An engine family (see the module docstring)."""

    name: str  # the --backend value and the benchmarks' backend column
    title: str  # as people write it
    suffixes: tuple[str, ...]  # engine files it runs under --backend auto
    runner: str  # "module:Class" of its runner, relative to runtime.runners; "" = none runs here
    packages: tuple[str, ...]  # Python modules it needs, checked without importing them
    extra: str  # the optional extra that installs them
    help: str  # one phrase for --backend help
    also_runs: tuple[str, ...] = ()  # further suffixes it runs when named with --backend
    device: str = "cpu"  # where it runs here: "cpu", or "gpu" (benchmarks group those under --backend gpu)
    kinds: tuple[str, ...] = ()  # manifest Variant.kind values it runs by default
    timed: bool = True  # benchmarks time it (False: an arbiter, not an engine a device runs)
    # File beside an engine that running it reads: engine file name -> companion file name.
    companion: Callable[[str], str] | None = field(default=None, compare=False)

    def runs(self, suffix: str) -> bool:
        """Whether this backend can run an engine file with ``suffix`` (when named with --backend)."""
        return suffix in self.suffixes or suffix in self.also_runs

    def missing(self) -> str | None:
        """Why this install cannot run the backend (which extra to install), or None if its packages are here.
        Only finds the packages; a GPU, a device or a driver is the runner's to report (BackendUnavailable)."""
        if not self.runner:
            return f"no {self.title} runner exists in runtime/ ({self.help})"
        absent = [name for name in self.packages if importlib.util.find_spec(name) is None]
        return self.install_hint() if absent else None

    def install_hint(self) -> str:
        """What a runner says when importing its packages fails."""
        return f"the {self.title} backend needs the optional extra: {install_command(self.extra)}"

    def make_runner(self, path: str, config: RunnerConfig, **options: Any) -> Runner:
        """A not-yet-opened runner of this backend for ``path`` (its module imported now, not before)."""
        if not self.runner:
            raise UserError(self.missing() or f"{self.title} has no runner")
        module, cls = self.runner.split(":")
        return getattr(importlib.import_module(f"runtime.runners.{module}"), cls)(path, config, **options)


def openvino_weights(xml: str) -> str:
    """The weights file of an OpenVINO IR (``model.openvino.xml`` -> ``model.openvino.bin``)."""
    return xml.removesuffix(".xml") + ".bin"


REGISTRY: tuple[Backend, ...] = (
    Backend("onnxruntime", "ONNX Runtime", (".onnx", ".ort"), "ort:OrtRunner", ("onnxruntime",), "cpu",
            ".onnx/.ort on its CPU, CUDA or TensorRT execution providers", kinds=("onnx", "ort")),
    Backend("openvino", "OpenVINO", (".xml",), "openvino:OpenVinoRunner", ("openvino",), "openvino",
            ".xml (OpenVINO IR, with its .bin) on Intel CPUs, GPUs and NPUs; also runs .onnx",
            also_runs=(".onnx",), kinds=("openvino",), companion=openvino_weights),
    Backend("tensorrt", "TensorRT", (".plan", ".engine", ".trt"), "tensorrt:TensorRTRunner", ("tensorrt",), "gpu",
            ".plan (TensorRT engines) on an NVIDIA GPU", kinds=("tensorrt",), device="gpu"),
    Backend("litert", "LiteRT", (".tflite",), "litert:LiteRTRunner", ("ai_edge_litert",), "litert-runtime",
            ".tflite (fixed shapes) on the CPU with XNNPACK, as Android phones run them", kinds=("litert",)),
    Backend("coreml", "Core ML", (".mlpackage",), "", ("coremltools",), "coreml",
            ".mlpackage for iOS/macOS: written and spec-checked by export, run only on macOS", kinds=("coreml",)),
    Backend("onnx-reference", "ONNX reference", (), "onnx_reference:OnnxReferenceRunner", ("onnx",), "reference",
            ".onnx by the ONNX specification in numpy (onnx.reference): the arbiter when engines disagree; slow",
            also_runs=(".onnx",), timed=False),
)
BY_NAME = {backend.name: backend for backend in REGISTRY}
RUNNABLE = tuple(backend for backend in REGISTRY if backend.runner)
# runtime.bench / benchmarks --backend: each CPU backend by name, the GPU ones (and ONNX Runtime's GPU providers)
# together as "gpu".
BENCH_BACKENDS = (*(b.name for b in RUNNABLE if b.device == "cpu" and b.timed), "gpu")
TITLES = {backend.name: backend.title for backend in REGISTRY}


def auto_help() -> str:
    """The --backend help: what auto picks per suffix, then what each named backend runs."""
    picks = "; ".join(f"{'/'.join(b.suffixes)} -> {b.name}" for b in RUNNABLE if b.suffixes)
    return f"auto: by file suffix ({picks}). Named: " + "; ".join(f"{b.name}: {b.help}" for b in RUNNABLE) + "."


def for_suffix(suffix: str) -> Backend | None:
    """The backend that runs ``suffix`` under --backend auto, or None."""
    return next((b for b in RUNNABLE if suffix in b.suffixes), None)


def for_kind(kind: str) -> Backend:
    """The backend that runs a manifest variant of ``kind`` by default (ONNX Runtime for unknown kinds)."""
    return next((b for b in REGISTRY if kind in b.kinds), BY_NAME["onnxruntime"])


def companion_files(file: str) -> list[str]:
    """``file`` and what running it also reads (an OpenVINO IR's weights)."""
    owner = next((b for b in REGISTRY if b.companion and any(file.endswith(s) for s in b.suffixes)), None)
    return [file, owner.companion(file)] if owner and owner.companion else [file]
