"""Latency samples and their statistics; no engine knowledge here."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, as numpy computes it."""
    if not values:
        raise ValueError("no samples")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


@dataclass
class Timing:
    """Timed runs of one engine in milliseconds, after its warm-up."""

    samples_ms: list[float]
    warmup: int
    first_run_ms: float  # the cold first call (includes lazy initialisation or compilation)
    median_ms: float = field(init=False)
    p90_ms: float = field(init=False)
    p95_ms: float = field(init=False)
    min_ms: float = field(init=False)
    mean_ms: float = field(init=False)
    runs: int = field(init=False)

    def __post_init__(self) -> None:
        self.median_ms = percentile(self.samples_ms, 50)
        self.p90_ms = percentile(self.samples_ms, 90)
        self.p95_ms = percentile(self.samples_ms, 95)
        self.min_ms = float(min(self.samples_ms))
        self.mean_ms = float(np.mean(self.samples_ms))
        self.runs = len(self.samples_ms)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timing:
        return cls(list(data["samples_ms"]), int(data["warmup"]), float(data["first_run_ms"]))


def paired_ratio(reference_ms: list[float], other_ms: list[float]) -> float:
    """Median over rounds of reference_k / other_k: how many times faster ``other`` is.

    Both lists come from the same rounds, so each pair shares the machine's load at that moment.
    """
    if len(reference_ms) != len(other_ms) or not reference_ms:
        raise ValueError(f"paired samples must have equal, non-zero length; "
                         f"got {len(reference_ms)} and {len(other_ms)}")
    return float(np.median(np.asarray(reference_ms) / np.asarray(other_ms)))
