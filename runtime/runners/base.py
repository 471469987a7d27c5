"""The one interface every engine runner implements (Polygraphy style).

A runner loads its engine on ``open()`` and releases it on ``close()`` (Polygraphy's activate and
deactivate); ``with runner:`` calls them. While open, ``infer(batch) -> batch`` runs a single-input,
single-output engine and ``run(feeds) -> outputs`` runs any engine (the tiling graphs take extra
``pooled_<i>`` inputs). ``close()`` is idempotent and safe after a failed ``open()``, so an owner
of several runners can release them all whatever state each is in (``contextlib.ExitStack``).
Inputs are validated against what the engine declares before anything runs, so a wrong rank,
channel count or dtype fails with a message naming what was received and what is expected.
"""
from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from ..backends import RUNNABLE
from ..errors import BackendUnavailable, UserError

BACKENDS = ("auto", *(backend.name for backend in RUNNABLE))  # the --backend choices
# More intra-op threads than this only slow a run down, and a typo (30000) would spawn threads
# until the machine stalls; every CLI's --threads goes through RunnerConfig, so this is the bound.
MAX_THREADS = 4 * (os.cpu_count() or 1)
MAX_GPU = 63


@dataclass(frozen=True)
class RunnerConfig:
    """How to run an engine; every field has a default that works on a plain CPU.

    ``provider``: for ONNX Runtime a comma list of execution providers in priority order
    (``tensorrt``, ``cuda``, ``cpu`` or full names such as ``CUDAExecutionProvider``), or
    ``auto`` for the best available; for OpenVINO a device (``CPU``, ``GPU``, ``NPU``, ``AUTO``);
    ignored by TensorRT. ``strict`` (default: on whenever a provider is named) fails when the
    engine does not run where asked instead of falling back silently. ``precision`` is an
    OpenVINO inference precision hint (``f32``, ``bf16``, ``f16``). ``threads`` 0 = library default.
    ``gpu``: a GPU index (CUDA's device order; OpenVINO's ``GPU.<n>``): the engine runs on that GPU or
    not at all (strict); None = no GPU asked for (the CPU, or device 0 of a GPU provider named).
    ``spin=False`` lets idle ONNX Runtime worker threads sleep instead of spinning, which matters
    when several runtimes share one process (benchmarks): a spinning pool steals the cores.
    """

    backend: str = "auto"
    provider: str = "auto"
    threads: int = 0
    strict: bool | None = None
    precision: str | None = None
    spin: bool = True
    gpu: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise UserError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if type(self.threads) is not int or not 0 <= self.threads <= MAX_THREADS:
            raise UserError(f"--threads must be 0 (library default) to {MAX_THREADS} "
                            f"(4 x {os.cpu_count() or 1} CPUs); got {self.threads!r}")
        if self.gpu is not None and (type(self.gpu) is not int or not 0 <= self.gpu <= MAX_GPU):
            raise UserError(f"--gpu must be a GPU index from 0 to {MAX_GPU}; got {self.gpu!r}")

    @property
    def is_strict(self) -> bool:
        return (self.provider != "auto" or self.gpu is not None) if self.strict is None else self.strict

    def cpu_only(self, title: str, how: str) -> None:
        """For a backend that runs on the CPU only: :class:`BackendUnavailable` when a GPU index was asked for."""
        if self.gpu is not None:
            raise BackendUnavailable(f"{title} runs on the CPU ({how}); --gpu {self.gpu} does not apply")


@dataclass(frozen=True)
class TensorInfo:
    """An engine input or output as the engine declares it; ``None`` marks a dynamic axis."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype} [{dims}]"


def check_feed(info: TensorInfo, array: np.ndarray) -> None:
    """Raise :class:`UserError` unless ``array`` fits ``info`` (rank, static dims, dtype)."""
    if not isinstance(array, np.ndarray):
        raise UserError(f"input {info.name!r} must be a numpy array; got {type(array).__name__}")
    if array.ndim != len(info.shape):
        layout = " (N, C, H, W)" if len(info.shape) == 4 else ""
        raise UserError(
            f"input {info.name!r} must have rank {len(info.shape)}{layout}; got shape {tuple(array.shape)}"
        )
    if array.dtype != info.dtype:
        raise UserError(f"input {info.name!r} must be {info.dtype}; got {array.dtype}")
    for axis, (want, got) in enumerate(zip(info.shape, array.shape, strict=True)):
        if want is not None and want != got:
            what = "channels" if axis == 1 and len(info.shape) == 4 else f"size of axis {axis}"
            raise UserError(
                f"input {info.name!r} must have {what} = {want}; got shape {tuple(array.shape)} "
                f"(engine expects {info.describe()})"
            )
    if 0 in array.shape:
        raise UserError(f"input {info.name!r} is empty: shape {tuple(array.shape)}")


class Runner(abc.ABC):
    """Base class: subclasses implement ``_load``, ``_unload``, ``_run`` and fill the specs.

    ``_unload`` must release whatever a partial ``_load`` took, and do nothing when nothing is held.
    """

    def __init__(self, path: str, config: RunnerConfig) -> None:
        self.path = path
        self.config = config
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []
        # Largest (H, W) a dynamic-shape engine accepts (a TensorRT profile's max); None = any.
        self.max_spatial: tuple[int, int] | None = None
        self._active = False

    # ---- what subclasses provide --------------------------------------------------------
    @abc.abstractmethod
    def _load(self) -> None:
        """Load the engine, fill ``inputs``/``outputs``, enforce strictness."""

    @abc.abstractmethod
    def _unload(self) -> None:
        """Release everything ``_load`` took, even part of it; a no-op when nothing is held."""

    @abc.abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run validated feeds; return outputs in ``self.outputs`` order."""

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """Where the engine actually runs, e.g. ``onnxruntime CPUExecutionProvider, 2 threads``."""

    @property
    def computed_in(self) -> str | None:
        """The precision the engine computes in when that is not the file's own (OpenVINO told bf16 on an fp32
        graph), as runtime.catalogue spells it; None when it computes in the file's precision."""
        return None

    # ---- the interface ------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._active

    def open(self) -> Runner:
        """Load the engine (a no-op when open); on failure, what was loaded is released and the error raised."""
        if self._active:
            return self
        self.inputs, self.outputs, self.max_spatial = [], [], None
        try:
            self._load()
        except BaseException:
            self._unload()
            raise
        self._active = True
        return self

    def close(self) -> None:
        """Release the engine; safe to call twice, on a runner never opened, or after a failed open."""
        self._active = False
        self._unload()

    def __enter__(self) -> Runner:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if not self._active:
            raise RuntimeError(f"{type(self).__name__} used while closed (outside its `with` block or after close())")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_open()
        expected = {info.name for info in self.inputs}
        if set(feeds) != expected:
            raise UserError(
                f"{self.path}: engine inputs are {', '.join(sorted(expected))}; "
                f"got {', '.join(sorted(feeds)) or 'none'}"
            )
        for info in self.inputs:
            check_feed(info, feeds[info.name])
        results = self._run(feeds)
        return {info.name: result for info, result in zip(self.outputs, results, strict=True)}

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run a single-input, single-output engine on one (N, C, H, W) batch."""
        self._check_open()
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            names = ", ".join(i.name for i in self.inputs)
            raise UserError(f"{self.path}: infer() needs one input and one output; engine takes {names} (use run())")
        return self.run({self.inputs[0].name: batch})[self.outputs[0].name]
