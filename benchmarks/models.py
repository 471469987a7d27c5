"""Which networks a benchmark run measures: shipped checkpoints when present, else fresh models."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from runtime.errors import UserError
from train.checkpoint import Checkpoint, load_checkpoint
from train.models import create_model, model_traits
from train.shipped import shipped_checkpoint

# The main network first; the static twin is needed by the export issue's dynamic-cost targets.
DEFAULT_MODELS = ("dyconvsr", "dyconvsr_static", "srcnn", "dcnn")


@dataclass
class BenchModel:
    name: str  # registry name
    scale: int
    checkpoint: Checkpoint
    trained: bool
    source: str  # checkpoint path, or "untrained (freshly initialised)"

    @property
    def model(self) -> nn.Module:
        return self.checkpoint.model

    @property
    def key(self) -> str:
        return f"{self.name}_x{self.scale}"

    @property
    def is_y_network(self) -> bool:
        return model_traits(self.model).y_channel


def find_checkpoint(name: str, scale: int) -> Path | None:
    """The shipped ``<name>_x<scale>``, else ``<name>`` (multi-scale nets such as the DCNN)."""
    return next((p for p in map(shipped_checkpoint, (f"{name}_x{scale}", name)) if p is not None), None)


def load_bench_model(name: str, scale: int) -> BenchModel:
    model_traits(name)  # an unknown name is refused before any file is looked for
    path = find_checkpoint(name, scale)
    if path is not None:
        checkpoint = load_checkpoint(path)
        model = checkpoint.model.eval()
        if int(model.scale) != scale:
            if not model_traits(model).multi_scale:
                raise UserError(f"{path} is an x{model.scale} {name}; it cannot run at x{scale}")
            model.set_scale(scale)
        return BenchModel(name, scale, checkpoint, True, f"shipped {path.stem}")
    try:
        model = create_model(name, scale=scale).eval()
    except UserError as exc:
        raise UserError(f"cannot build {name} at x{scale}: {exc}") from None
    checkpoint = Checkpoint(model, name, {"scale": scale}, {"untrained": True}, None)
    return BenchModel(name, scale, checkpoint, False, "untrained (freshly initialised)")
