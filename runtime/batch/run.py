"""A batch run from the driver's side: plan every output as ``runtime.infer`` would, skip what an earlier run
completed, hand the rest to the workers, record each output as it is published, report every input."""
from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..cli_options import Verbosity
from ..errors import Terminated, UserError, display
from ..files import remove_stale_temps
from ..infer import choose_variant
from ..inputs import InputFile, expand_inputs
from ..naming import Naming
from ..outputs import OutputPlan, OwnInputs, failure_reason
from ..progress import progress_bar, status
from ..runners import RunnerConfig
from ..upscaler import tile_for
from ..video.cli import VideoSettings
from ..video.formats import is_video_path
from . import cluster
from .ledger import Journal, settings_digest
from .report import REPORT, BatchReport, Row
from .shipping import bundle_engine
from .worker import EngineOptions, Task, TaskResult

# Tasks queued on each worker: the next input is there when one finishes, so no worker waits for the driver.
QUEUE_PER_WORKER = 2


@dataclass(frozen=True)
class BatchSettings:
    engine: Path
    inputs: tuple[str, ...]
    out_dir: Path
    naming: Naming
    overwrite: bool = False
    variant: str | None = None
    tile: int | None = None
    batch: int = 1
    min_size: int = 1
    max_pixels: int | None = None
    runner: RunnerConfig = RunnerConfig()
    video: VideoSettings = VideoSettings()
    address: str | None = None
    workers: int | None = None


def run_batch(settings: BatchSettings, verbosity: Verbosity) -> BatchReport:
    """Upscale every input on the cluster; the report is also written to ``OUT/batch-report.json``."""
    start = time.perf_counter()
    cluster.import_ray()  # a missing extra is said before anything is read
    files, problems = expand_inputs(list(settings.inputs))
    report = BatchReport(str(settings.engine))
    head = [Row(argument, None, "failed", error=reason) for argument, reason in problems]
    for row in head:
        status(f"error: {row.input}: {row.error}")
    rows: list[Row | None] = [None] * len(files)
    if any(is_video_path(item.path) for item in files):
        settings.video.check()
    runner = replace(settings.runner, threads=settings.runner.threads or 1)  # each worker its own CPUs, no more
    variant = choose_variant(settings.engine, settings.variant, runner, verbosity)
    bundle = bundle_engine(settings.engine, variant)
    options = EngineOptions(bundle.variant, runner, tile_for(settings.tile, video=False), settings.batch,
                            settings.min_size)
    digest = settings_digest({"engine": bundle.digests, "variant": bundle.variant, "naming": asdict(settings.naming),
                              "video": {**asdict(settings.video), "verbose": None}, "tile": options.tile,
                              "backend": runner.backend, "provider": runner.provider, "precision": runner.precision,
                              "gpu": runner.gpu})
    plan = OutputPlan(settings.out_dir, settings.naming, OwnInputs(files), settings.video)
    workers = None
    planned = False
    try:
        joined = cluster.connect(settings.address)
        count = cluster.worker_count(settings.workers, joined, runner.threads)
        if count * runner.threads > joined.cpus:
            raise UserError(f"--workers {count} with --threads {runner.threads} each need {count * runner.threads} "
                            f"CPUs; the cluster at {joined.address} has {joined.cpus}")
        verbosity.detail(f"ray: {joined.address}, {joined.nodes} node(s), {joined.cpus} CPUs; {count} worker(s) "
                         f"of {runner.threads} thread(s); shipping {bundle.size / 1e6:.1f} MB of engine files")
        workers = cluster.start_workers(bundle, options, count)
        infos = workers.infos
        report.engine, report.address, report.nodes = infos[0].engine, joined.address, joined.nodes
        report.workers = [info.worker for info in infos]
        journal = Journal(settings.out_dir)
        tasks = _plan_tasks(files, rows, plan, journal, digest, infos[0].scale, settings)
        planned = True
        journal.plan([_as_given(plan, task.target) for task in tasks])

        def publish(task: Task, result: TaskResult) -> None:
            source, target = files[task.index], _as_given(plan, task.target)
            if result.ok and result.output is not None:
                journal.record(target, source.path, digest, result.output, result.worker)
            if result.restarted and result.worker not in report.restarted_workers:
                report.restarted_workers.append(result.worker)
            if not result.ok:
                status(f"error: {display(source.path)}: {result.error}")
            else:
                verbosity.detail(f"{display(source.path)} -> {display(target)} ({result.worker})")
            rows[task.index] = Row(str(source.path), str(target) if result.ok else None,
                                   "ok" if result.ok else "failed", round(result.seconds, 4), result.worker or None,
                                   result.error)

        with progress_bar(total=len(tasks), quiet=verbosity.quiet or len(tasks) < 2, unit="image",
                          desc="batch") as bar:
            _dispatch(workers, tasks, lambda task, result: (publish(task, result), bar.update(1)))
    finally:
        if workers is not None:
            cluster.stop_workers(workers)
        cluster.disconnect()
        for folder in plan.swept:  # temp files of workers killed mid-write (the retry wrote the output)
            remove_stale_temps(folder)
        report.seconds = round(time.perf_counter() - start, 3)
        report.rows = head + [row or Row(str(item.path), None, "not run")
                              for row, item in zip(rows, files, strict=True)]
        if planned:
            settings.out_dir.mkdir(parents=True, exist_ok=True)
            report.write(settings.out_dir / REPORT)
    return report


def _signalled(call: Callable[[], Any]) -> Any:
    """``call()``; a signal handled while Ray's core waits comes out of it as a SystemError wrapping the command's
    own exception (Ctrl-C, SIGTERM): that exception is raised instead, so the command ends as it always does."""
    try:
        return call()
    except SystemError as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, (KeyboardInterrupt, Terminated)):
            raise cause from None
        raise


def _as_given(plan: OutputPlan, target: Path) -> Path:
    """A task's absolute target as the output folder was named on the command line."""
    return plan.out_dir / target.relative_to(os.path.abspath(plan.out_dir))


def _plan_tasks(files: list[InputFile], rows: list[Row | None], plan: OutputPlan, journal: Journal, digest: str,
                scale: int, settings: BatchSettings) -> list[Task]:
    """A task per input still to do; the others get their row now (skipped, or failed with the reason)."""
    tasks = []
    for index, item in enumerate(files):
        try:
            target = plan.target(item, scale)
            if journal.is_complete(target, item.path, digest):
                rows[index] = Row(str(item.path), str(target), "skipped")
                continue
            # An unrecorded output an earlier run planned is its own, published as that run was killed.
            replace_it = settings.overwrite or (os.path.lexists(target) and journal.was_planned(target))
            plan.check_replaceable(item, target, replace_it)
            plan.sweep(target)
        except Exception as exc:
            rows[index] = Row(str(item.path), None, "failed", error=failure_reason(exc))
            status(f"error: {display(item.path)}: {rows[index].error}")
            continue
        absolute = InputFile(Path(os.path.abspath(item.path)), item.relative)
        tasks.append(Task(index, absolute, Path(os.path.abspath(target)), replace_it, settings.naming,
                          settings.video, settings.max_pixels))
    return tasks


def _dispatch(workers: cluster.Workers, tasks: list[Task], on_result: Callable[[Task, TaskResult], object]) -> None:
    """Run ``tasks`` on ``actors``, ``QUEUE_PER_WORKER`` queued on each; a worker that died more often than Ray
    restarts it fails its tasks and takes no more."""
    ray = cluster.import_ray()
    queue = deque(tasks)
    alive = dict(enumerate(workers.actors))
    queued = {number: 0 for number in alive}
    running: dict = {}

    def fill() -> None:
        for number, actor in alive.items():
            while queued[number] < QUEUE_PER_WORKER and queue:
                task = queue.popleft()
                running[actor.run.remote(task, workers.handle)] = (task, number)
                queued[number] += 1

    fill()
    while running:
        (ref,), _ = _signalled(lambda: ray.wait(list(running), num_returns=1))
        task, number = running.pop(ref)
        queued[number] -= 1
        try:
            result = _signalled(lambda ref=ref: ray.get(ref))
        except ray.exceptions.RayActorError as exc:
            alive.pop(number, None)
            result = TaskResult(task.index, False, 0.0, "", f"its worker died {cluster.MAX_RESTARTS + 1} times "
                                f"({(str(exc).splitlines() or [''])[0]})")
        except ray.exceptions.RayError as exc:
            result = TaskResult(task.index, False, 0.0, "", failure_reason(exc))
        on_result(task, result)
        fill()
    for task in queue:
        on_result(task, TaskResult(task.index, False, 0.0, "", "not run: every worker died"))
