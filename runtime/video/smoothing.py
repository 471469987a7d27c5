"""Steady attention across frames: an exponential moving average of the pooled statistics.

The dynamic conv's attention is softmax(MLP(global average pool) / T): per frame by default, so the
kernel mix follows every frame's content, and noise or a small pan can move it. With smoothing,
each dynamic layer's whole-image statistics (the ``pooled_<i>`` the tiling graphs take, computed
exactly over the whole frame by :func:`runtime.tiling.pooled_statistics`) are replaced by

    s_t = strength * s_(t-1) + (1 - strength) * p_t

and the state is reset at a scene cut, detected on the LR frame's grey-level histogram (half the
L1 distance to the previous frame's above ``scene_cut``, in [0, 1]; a pan barely moves it), so a
new shot starts from its own statistics. ``strength`` 0 is smoothing off, and then the video path does not
take the tiling graphs at all: every frame is exactly the per-frame result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError

BINS = 32  # grey-level histogram of the scene-cut test
SAMPLES = 128  # the histogram samples about this many pixels along the longest side


@dataclass(frozen=True)
class SmoothingConfig:
    strength: float = 0.0  # weight of the history, 0 (off) .. < 1
    scene_cut: float = 0.35  # histogram distance (half the L1 distance, 0..1) that starts a new shot

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise UserError(f"--smooth must be in [0, 1) (0 = per-frame statistics); got {self.strength}")
        if not self.scene_cut > 0.0:
            raise UserError(f"--scene-cut must be > 0; got {self.scene_cut}")

    @property
    def enabled(self) -> bool:
        return self.strength > 0.0


def histogram(planes: np.ndarray) -> np.ndarray:
    """Normalised grey-level histogram of float32 3xHxW planes, sampled on a grid: a camera pan
    barely changes it, a cut to another shot does."""
    step = max(1, max(planes.shape[1:]) // SAMPLES)
    grey = planes[:, ::step, ::step].mean(axis=0)
    counts, _ = np.histogram(grey, bins=BINS, range=(0.0, 1.0))
    return counts / max(1, counts.sum())


@dataclass
class PooledSmoother:
    """Per-stream state: call :meth:`next_frame` with each LR frame, then pass :meth:`adjust` to
    :meth:`runtime.Upscaler.upscale_planar` as ``adjust_pooled``. ``raw``/``used`` hold the current
    frame's statistics before/after smoothing (layer by layer), ``cuts`` the frames that reset."""

    config: SmoothingConfig
    state: dict[int, np.ndarray] = field(default_factory=dict)
    raw: dict[int, np.ndarray] = field(default_factory=dict)
    used: dict[int, np.ndarray] = field(default_factory=dict)
    cuts: list[int] = field(default_factory=list)
    frame: int = -1
    _histogram: np.ndarray | None = None

    def next_frame(self, planes: np.ndarray) -> bool:
        """Start a frame; True when it is a scene cut (the state was reset)."""
        self.frame += 1
        counts = histogram(planes)
        cut = self._histogram is None or 0.5 * float(np.abs(counts - self._histogram).sum()) > self.config.scene_cut
        self._histogram = counts
        if cut:
            self.state.clear()
            if self.frame:
                self.cuts.append(self.frame)
        self.raw, self.used = {}, {}
        return cut

    def adjust(self, index: int, pooled: np.ndarray) -> np.ndarray:
        self.raw[index] = pooled
        previous = self.state.get(index)
        strength = np.float32(self.config.strength)
        smoothed = pooled if previous is None else strength * previous + (np.float32(1) - strength) * pooled
        self.state[index] = self.used[index] = smoothed.astype(np.float32, copy=False)
        return self.state[index]


def statistics_vector(statistics: dict[int, np.ndarray]) -> np.ndarray:
    """One frame's statistics (``PooledSmoother.raw`` or ``used``) as one vector, layer by layer."""
    return np.concatenate([v.ravel() for _, v in sorted(statistics.items())])
