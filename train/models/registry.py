"""A small model registry (timm style): names -> constructors, tiny test variants beside real ones.

Every model built here carries ``model.config`` (registry name + constructor arguments), which is
all a checkpoint needs to rebuild it.
"""
from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import torch
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


# These are lightweight networks (the largest registered default has ~60K parameters); a checkpoint
# asking for more than this is a typo or an attack (one with ``channels: 10**9`` tried to allocate 432 GB).
MAX_PARAMETERS = 50_000_000


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown names and bad arguments raise :class:`UserError`.

    Arguments are checked against the constructor's type hints (a bool is not an int, a float is
    not an int; an int may stand for a float), integers must be >= 1 and floats finite, and the
    network is first built on the ``meta`` device, which allocates nothing, so one above
    :data:`MAX_PARAMETERS` is refused before any memory is taken.
    """
    entry = _entry(name)
    accepted = inspect.signature(entry.builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UserError(
            f"model {name!r} got unknown argument(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(accepted)}"
        )
    arguments = {**entry.defaults, **kwargs}
    hints = typing.get_type_hints(entry.builder.__init__)
    for key, value in arguments.items():
        _check_argument(name, key, value, hints.get(key, Any))
    count = _parameter_count(name, entry, arguments)
    if count is None or count > MAX_PARAMETERS:
        settings = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        size = "more parameters than torch can address" if count is None else f"{count:,} parameters"
        raise UserError(
            f"model {name!r} with {settings or 'its defaults'} would have {size}; "
            f"at most {MAX_PARAMETERS:,} are allowed for these lightweight networks"
        )
    model = _build(name, entry, arguments)
    model.config = ModelConfig(name, dict(kwargs))
    return model


def _parameter_count(name: str, entry: ModelEntry, arguments: dict[str, Any]) -> int | None:
    """The network's parameter count, from a build on the meta device (shapes only, no memory);
    None when a tensor is too large for torch even to describe."""
    try:
        with torch.device("meta"):
            skeleton = _build(name, entry, arguments)
    except RuntimeError:  # "Storage size calculation overflowed"
        return None
    return sum(p.numel() for p in skeleton.parameters())


def _build(name: str, entry: ModelEntry, arguments: dict[str, Any]) -> nn.Module:
    try:
        return entry.builder(**_as_constructor_types(arguments))
    except (ValueError, TypeError) as exc:
        raise UserError(f"model {name!r} with {arguments}: {exc}") from None


def _check_argument(name: str, key: str, value: Any, hint: Any) -> None:
    if not _matches(value, hint):
        raise UserError(f"model {name!r} argument {key}={value!r} is a {type(value).__name__}; "
                        f"expected {_hint_name(hint)}")
    numbers = _numbers(value)
    # Every integer argument of these models is a size or a count (scale included).
    if any(isinstance(n, int) and n < 1 for n in numbers):
        raise UserError(f"model {name!r}: {key} must be >= 1{' in every entry' if len(numbers) > 1 else ''}, "
                        f"got {value!r}")
    if not all(math.isfinite(n) for n in numbers):
        raise UserError(f"model {name!r}: {key} must be finite, got {value!r}")


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON/TOML value fits a constructor's type hint (a list stands for a tuple)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return len(items) == len(value) and all(_matches(v, a) for v, a in zip(value, items, strict=True))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True  # any other hint: the constructor checks its own argument


def _hint_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


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
