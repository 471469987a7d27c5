"""The measurement protocol for one group of engines that share an input.

1. Each engine in turn: load it and run it once, under :class:`PeakMemory` (the memory a user
   pays to get a first result); that first run's wall time is kept as ``first_run_ms``.
2. Warm-up: each engine runs ``warmup`` more times, untimed.
3. ``rounds`` rounds: in each, every engine runs ``settle`` untimed calls (absorbing the previous
   engine's thread pools spinning down and its cache footprint) and then one timed call. The
   order rotates from round to round. Sample k of every engine is thus taken within the same
   slice of time, so per-round ratios between engines stay fair while the machine's load drifts.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import UserError, first_line
from ..progress import progress_bar
from .engines import Engine, NotMeasured
from .memory import MemoryUse, PeakMemory
from .schema import FAILED, MEASURED
from .timing import Timing


@dataclass(frozen=True)
class Protocol:
    rounds: int = 6
    warmup: int = 2
    settle: int = 1

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.warmup < 0 or self.settle < 0:
            raise UserError(f"need rounds >= 1, warmup >= 0, settle >= 0; "
                            f"got {self.rounds}, {self.warmup}, {self.settle}")

    def calls_per_engine(self) -> int:
        return 1 + self.warmup + self.rounds * (1 + self.settle)


@dataclass
class Outcome:
    engine: Engine | NotMeasured
    status: str
    description: str = ""
    timing: Timing | None = None
    memory: MemoryUse | None = None
    output: np.ndarray | None = None  # the first run's output, for parity


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception as one short line (its class named unless it is a UserError), for report rows."""
    text = first_line(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {first_line(exc)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def measure_group(
    engines: Sequence[Engine | NotMeasured], batch: np.ndarray, protocol: Protocol, desc: str = "", quiet: bool = False
) -> list[Outcome]:
    """Run the protocol; returns one :class:`Outcome` per engine in the given order."""
    n, _, height, width = batch.shape
    outcomes = [Outcome(e, e.reason) if isinstance(e, NotMeasured) else Outcome(e, MEASURED) for e in engines]
    for outcome in outcomes:
        if isinstance(outcome.engine, Engine):
            reason = outcome.engine.supports(n, height, width)
            if reason:
                outcome.status = reason
    live = [o for o in outcomes if o.status == MEASURED]
    feeds: dict[int, object] = {}
    first_ms: dict[int, float] = {}
    samples: dict[int, list[float]] = {id(o): [] for o in live}
    bar = progress_bar(total=len(live) * protocol.calls_per_engine(), quiet=quiet, desc=desc, unit="call", leave=False)
    try:
        for outcome in list(live):
            engine = outcome.engine
            try:
                with PeakMemory() as memory:
                    engine.load()
                    feed = engine.prepare(batch)
                    start = time.perf_counter()
                    result = engine.run(feed)
                    first_ms[id(outcome)] = (time.perf_counter() - start) * 1000
                outcome.memory, outcome.description = memory.result, engine.description
                outcome.output = engine.to_array(result)
                feeds[id(outcome)] = feed
                for _ in range(protocol.warmup):
                    engine.run(feed)
            except Exception as exc:  # an engine failing is a row of the report, not a crash
                _fail(outcome, live, exc)
                engine.close()
            bar.update(1 + protocol.warmup)
        for k in range(protocol.rounds):
            order = live[k % len(live):] + live[: k % len(live)] if live else []
            for outcome in order:
                engine, feed = outcome.engine, feeds[id(outcome)]
                try:
                    for _ in range(protocol.settle):
                        engine.run(feed)
                    start = time.perf_counter()
                    engine.run(feed)
                    samples[id(outcome)].append((time.perf_counter() - start) * 1000)
                except Exception as exc:
                    _fail(outcome, live, exc)
                bar.update(1 + protocol.settle)
    finally:
        bar.close()
        for outcome in outcomes:
            if isinstance(outcome.engine, Engine):
                outcome.engine.close()
    for outcome in live:
        outcome.timing = Timing(samples[id(outcome)], protocol.warmup, first_ms[id(outcome)])
    return outcomes


def _fail(outcome: Outcome, live: list[Outcome], exc: BaseException) -> None:
    outcome.status = f"{FAILED}: {one_line(exc)}"
    if outcome in live:
        live.remove(outcome)
