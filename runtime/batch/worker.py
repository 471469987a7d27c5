"""The Ray actor of a batch run: one engine, opened once from the shipped files, upscaling whole inputs."""
from __future__ import annotations

import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError, quiet_libraries
from ..files import remove_stale_temps
from ..inputs import InputFile
from ..naming import Naming
from ..outputs import failure_reason, write_output
from ..runners import RunnerConfig
from ..upscaler import Upscaler
from ..video.cli import VideoSettings
from .ledger import Output, describe_output
from .shipping import EngineBundle, unpack


@dataclass(frozen=True)
class EngineOptions:
    variant: str | None
    runner: RunnerConfig
    tile: int
    batch: int
    min_size: int


@dataclass(frozen=True)
class Task:
    """One input to upscale into ``target`` (absolute paths: a worker's working folder is not the driver's)."""

    index: int
    item: InputFile
    target: Path
    replace: bool
    naming: Naming
    video: VideoSettings
    max_pixels: int | None


@dataclass(frozen=True)
class TaskResult:
    index: int
    ok: bool
    seconds: float
    worker: str
    error: str | None = None
    output: Output | None = None
    restarted: bool = False  # the worker is one Ray started again after the one before it died


@dataclass(frozen=True)
class WorkerInfo:
    worker: str
    error: str | None = None  # why the engine did not open on this worker
    scale: int = 0
    engine: str = ""
    restarted: bool = False


class UpscaleWorker:
    """Made a Ray actor by :func:`runtime.batch.cluster.start_workers`. The engine files come as an object
    reference inside a list (so Ray hands the reference over unresolved, never a copy per call), with
    :meth:`open` and again with every task, so a worker Ray started again after one died opens its engine on
    its first task. Its engine folder is removed by :meth:`close`; a killed worker's by the next worker started
    on that node."""

    def __init__(self, options: EngineOptions) -> None:
        import ray

        self.options = options
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.restarted = ray.get_runtime_context().was_current_actor_reconstructed
        self.folder: Path | None = None
        self.upscaler: Upscaler | None = None
        self.error: str | None = None

    def open(self, shipped: list[Any]) -> WorkerInfo:
        """Write the engine files here, prove them by their sha256s and open the engine (once)."""
        if self.upscaler is None and self.error is None:
            import ray

            options = self.options
            try:
                bundle: EngineBundle = ray.get(shipped[0])
                self.folder, opened = unpack(bundle)
                with quiet_libraries():
                    self.upscaler = Upscaler(opened, variant=options.variant, config=options.runner,
                                             tile=options.tile, batch=options.batch, min_size=options.min_size,
                                             verify=bundle.is_artifact).__enter__()
            except Exception as exc:  # said in the info, the one place the driver looks
                self.error = failure_reason(exc)
                self.close()
        if self.upscaler is None:
            return WorkerInfo(self.name, self.error or "engine not open")
        return WorkerInfo(self.name, None, self.upscaler.scale, self.upscaler.description, self.restarted)

    def run(self, task: Task, shipped: list[Any]) -> TaskResult:
        start = time.perf_counter()
        try:
            info = self.open(shipped)
            if self.upscaler is None:
                raise UserError(f"the engine did not open on this worker: {info.error}")
            if not os.path.lexists(task.item.path):
                raise UserError(f"not found on {socket.gethostname()} (a batch needs its inputs and -o on a file "
                                "system every node mounts)")
            remove_stale_temps(task.target.parent)  # what a worker killed mid-write on this node left
            with quiet_libraries():
                write_output(self.upscaler, task.item, task.target, task.naming, task.video, task.replace,
                             task.max_pixels)
            output = describe_output(task.target)
            return TaskResult(task.index, True, time.perf_counter() - start, self.name, output=output,
                              restarted=self.restarted)
        except Exception as exc:  # a bad input is a failed row
            return TaskResult(task.index, False, time.perf_counter() - start, self.name, failure_reason(exc),
                              restarted=self.restarted)

    def close(self) -> None:
        if self.upscaler is not None:
            self.upscaler.close()
            self.upscaler = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
