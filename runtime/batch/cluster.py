"""Ray for a batch run: a local runtime sized to this machine, or a running cluster joined by address, and the
workers (actors) on it. Ray is imported here only, so the rest of the runtime never needs it."""
from __future__ import annotations

import logging
import os
import signal
import socket
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import UserError
from ..host import install_command
from .shipping import EngineBundle
from .worker import EngineOptions, UpscaleWorker, WorkerInfo

# Ray's own retry rules for a worker that dies (killed, out of memory, its node lost): the actor is started again
# and the task it held, and those queued on it, run again on the new one.
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3


def import_ray() -> ModuleType:
    try:
        import ray
    except ModuleNotFoundError:
        raise UserError(f"runtime.batch needs the 'ray' extra, and ray is not installed: {install_command('ray')}"
                        ) from None
    return ray


@dataclass(frozen=True)
class Cluster:
    address: str  # "local" for a runtime this run started
    cpus: int
    nodes: int


def connect(address: str | None) -> Cluster:
    """Start a local Ray runtime with this machine's CPUs (``address`` None) or join the cluster at ``address``
    (``ray start --head`` prints it; ``auto`` finds the one on this machine)."""
    ray = import_ray()
    if address is not None:
        _check_reachable(address)
    options: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
                                   configure_logging=True)
    # Ray's core installs a crash handler for SIGTERM that dumps a stack and exits 1: the command's own handler
    # (one line, clean-ups, exit 143) is put back once Ray is up.
    handlers = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        if address is None:
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError, ray.exceptions.RayError) as exc:
        reason = (str(exc).splitlines() or [""])[0]
        if address is None:
            raise UserError(f"cannot start a local Ray runtime: {reason}") from None
        raise UserError(f"cannot join the Ray cluster at {address}: {reason} (a cluster started by `ray start` uses "
                        "token authentication: set RAY_AUTH_MODE=token and its token, RAY_AUTH_TOKEN or "
                        "~/.ray/auth_token, here too)") from None
    finally:
        for number, handler in handlers.items():
            if handler is not None:
                signal.signal(number, handler)
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    return Cluster(address or "local", int(resources.get("CPU", 0)), nodes)


def _check_reachable(address: str) -> None:
    """Refuse at once a HOST:PORT nothing listens on (ray.init would wait for it without end)."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise UserError(f"cannot join the Ray cluster at {address}: nothing answers there ({exc.strerror or exc}); "
                        "start one with `ray start --head`, or leave --address out for a local runtime") from None


def disconnect() -> None:
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()


def worker_count(requested: int | None, cluster: Cluster, threads: int) -> int:
    """``--workers``, else one worker per ``threads`` CPUs of the cluster."""
    if requested is not None:
        return requested
    return max(1, cluster.cpus // max(1, threads))


@dataclass
class Workers:
    actors: list[Any]
    infos: list[WorkerInfo]
    shipped: Any  # the engine files in the object store, held while a restarted worker may need them again

    @property
    def handle(self) -> list[Any]:
        """What workers get with every call: the reference in a list, which Ray passes on unresolved."""
        return [self.shipped]


def start_workers(bundle: EngineBundle, options: EngineOptions, count: int) -> Workers:
    """``count`` actors, each holding one engine opened from ``bundle`` (put in the object store once), and what
    each says of itself; UserError when a worker could not open the engine."""
    ray = import_ray()
    shipped = ray.put(bundle)
    actor_class = ray.remote(num_cpus=max(1, options.runner.threads), max_restarts=MAX_RESTARTS,
                             max_task_retries=MAX_TASK_RETRIES)(UpscaleWorker)
    actors = [actor_class.remote(options) for _ in range(count)]
    workers = Workers(actors, [], shipped)
    workers.infos = ray.get([actor.open.remote(workers.handle) for actor in actors])
    failed = [info for info in workers.infos if info.error]
    if failed:
        stop_workers(workers)
        raise UserError(f"the engine did not open on worker {failed[0].worker}: {failed[0].error}")
    return workers


def stop_workers(workers: Workers) -> None:
    """Close every worker's engine and remove its folder, then end it."""
    ray = import_ray()
    actors = workers.actors
    closing = [actor.close.remote() for actor in actors]
    try:
        ray.get(closing, timeout=30)
    except Exception:  # a dead worker: its folder is removed by the next one on its node
        pass
    for actor in actors:
        ray.kill(actor, no_restart=True)
