"""A small model registry (timm style): names -> constructors, tiny test variants beside real ones.

Every model built here carries ``model.config`` (registry name + constructor arguments), which is
all a checkpoint needs to rebuild it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from runtime.errors import UserError

from .dcnn import DCNN
from .dyconvsr import DyConvSR
from .srcnn import SRCNN


@dataclass(frozen=True)
class ModelConfig:
    """What rebuilds a model: its registry name and the arguments given to ``create_model``."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kwargs": dict(self.kwargs)}


@dataclass(frozen=True)
class ModelEntry:
    builder: type[nn.Module]
    defaults: dict[str, Any]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, builder: type[nn.Module], description: str, **defaults: Any) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model name {name!r} is already registered")
    _REGISTRY[name] = ModelEntry(builder, defaults, description)


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def describe_model(name: str) -> str:
    return _entry(name).description


def _entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown names and bad arguments raise :class:`UserError`."""
    entry = _entry(name)
    accepted = inspect.signature(entry.builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UserError(
            f"model {name!r} got unknown argument(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    arguments = {**entry.defaults, **kwargs}
    try:
        model = entry.builder(**_as_constructor_types(arguments))
    except (ValueError, TypeError) as exc:
        raise UserError(f"model {name!r} with {arguments}: {exc}") from None
    model.config = ModelConfig(name, dict(kwargs))
    return model


def _as_constructor_types(arguments: dict[str, Any]) -> dict[str, Any]:
    # JSON has no tuples; constructors take tuples for fixed-length settings.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in arguments.items()}


register("dyconvsr", DyConvSR, "DyConvSR, ~60K params at x2 (dynamic conv, HF branch, spatial attention)")
register(
    "dyconvsr_static",
    DyConvSR,
    "DyConvSR's static twin: the same network with a plain conv in place of the dynamic one",
    dynamic=False,
)
register(
    "dyconvsr_authors",
    DyConvSR,
    "DyConvSR exactly as the authors' code computes it: interleaved skip, reflect-padded blur, temperature 30",
    skip_order="interleaved",
    blur_padding="reflect",
)
register("srcnn", SRCNN, "SRCNN 9-1-5 (64/32) on the Y channel of a bicubic-upscaled input")
register("dcnn", DCNN, "Multi-scale dynamic CNN: SRCNN stages with generated filters, one net for x2/x3/x4")
register("dyconvsr_tiny", DyConvSR, "Tiny DyConvSR for tests", channels=8, num_kernels=2)
register("srcnn_tiny", SRCNN, "Tiny SRCNN for tests", features=(8, 4), kernel_sizes=(3, 1, 3))
register("dcnn_tiny", DCNN, "Tiny DCNN for tests", features=(8, 4), kernel_sizes=(3, 1, 3), num_kernels=2)
