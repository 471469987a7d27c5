"""What a benchmark run measures; every field has a default that finishes in minutes on 2 cores."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtime.backends import BENCH_BACKENDS
from runtime.bench.protocol import Protocol
from runtime.errors import UserError

from .models import DEFAULT_MODELS

# What a benchmark run can measure (not runtime.runners.BACKENDS, the engines a runner can load).
# The artifact's engines run through runtime.bench (runtime.backends.BENCH_BACKENDS); the others in PyTorch/Pillow.
ARTIFACT_BACKENDS = set(BENCH_BACKENDS)
MEASURED_BACKENDS = ("pytorch", "torch.compile", *BENCH_BACKENDS, "bicubic")
DEFAULT_BACKENDS = MEASURED_BACKENDS


@dataclass
class RunConfig:
    models: tuple[str, ...] = DEFAULT_MODELS
    scales: tuple[int, ...] = (2,)
    resolutions: tuple[str, ...] = ("lr256", "720p")
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    # torch.compile takes about a minute per model and size on two busy cores: the main network only.
    compile_models: tuple[str, ...] = ("dyconvsr",)
    # Models measured on every engine variant; the others (baselines, the static twin) run as
    # PyTorch eager as trained, ONNX Runtime model.onnx and bicubic, which is what they are compared on.
    full_models: tuple[str, ...] = ("dyconvsr", "dyconvsr_tiny")
    openvino_all: bool = True  # OpenVINO on every fp32 lowering, not only model.onnx (and the INT8 file)
    threads: int = 2
    rounds: int = 6
    warmup: int = 2
    settle: int = 1
    batch: int = 1
    out: Path = Path("reports")
    artifacts: Path = Path("artifacts")
    rebuild_artifacts: bool = False
    quality: bool = True
    quality_folder: Path | None = None  # None: the held-out embedded images (no download)
    quality_protocol: str = "standard"  # a key of runtime.quality.PROTOCOLS ("authors": the DyConvSR paper's)
    figures: bool = True
    machine_name: str | None = None
    quiet: bool = False
    extra_notes: list[str] = field(default_factory=list)
    video_frames: int = 0  # > 0: video throughput rows (runtime/video/bench.py) for the fully measured models

    def __post_init__(self) -> None:
        unknown = sorted(set(self.backends) - set(MEASURED_BACKENDS))
        if unknown:
            raise UserError(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(MEASURED_BACKENDS)}")
        if not self.models:
            raise UserError("no model to benchmark; pass --model NAME")

    @property
    def protocol(self) -> Protocol:
        return Protocol(self.rounds, self.warmup, self.settle)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}
