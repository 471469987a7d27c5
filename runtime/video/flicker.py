"""Flicker figures: how much a clip changes from one frame to the next.

- Temporal MAD: the mean absolute frame-to-frame difference, RGB on the 0-255 scale. An upscaled
  clip is steady when its temporal MAD is close to the HR clip's (a pan moves both alike); output
  MAD above HR's is flicker the upscaler added. :class:`FlickerReport` holds both and the ratio.
- Statistics motion: how far the attention's input (each dynamic layer's pooled statistics) moves
  between frames, as the relative L2 step ||p_t - p_(t-1)|| / ||p_(t-1)||; where the attention
  weights themselves are available (benchmarks compute them with the model), the same meter gives
  their total-variation step 0.5 * sum |a_t - a_(t-1)| with ``relative=False, norm=1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TemporalMad:
    """Feed frames in order (float in [0, 1] or uint8, any layout as long as it is always the same)."""

    total: float = 0.0
    steps: int = 0
    _previous: np.ndarray | None = None

    def add(self, frame: np.ndarray) -> None:
        current = frame.astype(np.float32) * np.float32(1 / 255 if frame.dtype == np.uint8 else 1)
        current = np.clip(current, 0.0, 1.0)
        if self._previous is not None and self._previous.shape == current.shape:
            self.total += float(np.abs(current - self._previous).mean(dtype=np.float64)) * 255.0
            self.steps += 1
        self._previous = current

    @property
    def value(self) -> float | None:
        return self.total / self.steps if self.steps else None


@dataclass
class StepMeter:
    """Mean step of a sequence of vectors: relative L2 (default) or a plain L1 norm scaled by ``weight``."""

    relative: bool = True
    norm: int = 2
    weight: float = 1.0
    steps: list[float] = field(default_factory=list)
    _previous: np.ndarray | None = None

    def add(self, vector: np.ndarray) -> None:
        current = np.asarray(vector, dtype=np.float64).ravel()
        if self._previous is not None:
            step = float(np.linalg.norm(current - self._previous, ord=self.norm)) * self.weight
            if self.relative:
                step /= max(float(np.linalg.norm(self._previous, ord=self.norm)), 1e-12)
            self.steps.append(step)
        self._previous = current

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.steps)) if self.steps else None

    @property
    def max(self) -> float | None:
        return float(np.max(self.steps)) if self.steps else None


@dataclass(frozen=True)
class FlickerReport:
    output_mad: float | None
    hr_mad: float | None
    statistics_step: float | None = None  # mean relative L2 step of the pooled statistics used
    attention_step: float | None = None  # mean total-variation step of the attention weights

    @property
    def ratio(self) -> float | None:
        """Output temporal MAD over HR's: 1 = as steady as the HR clip."""
        if self.output_mad is None or not self.hr_mad:
            return None
        return self.output_mad / self.hr_mad
