"""A small model registry (timm style): names -> constructors, tiny test variants beside real ones.

Every model built here carries ``model.config`` (registry name + constructor arguments), which is
all a checkpoint needs to rebuild it.
"""
from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import dataclass, field, replace
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


TRAINING_RECIPES = ("patch", "subimage")


@dataclass(frozen=True)
class ModelTraits:
    """What the rest of the toolchain needs to know about a registered model, asked of the registry
    (``model_traits``) instead of rediscovered from names or attributes."""

    # "patch": RGB HR crops, LR made online (DyConvSR); "subimage": 33x33 Y sub-images of
    # blurred-subsampled-upscaled inputs, trained through ``forward_y`` (SRCNN, DCNN).
    recipe: str
    # Runs ``forward_y`` on the Y channel of a bicubic-upscaled input (keeps the bicubic Cb/Cr), so
    # it can run at any scale its pre-upscaling is set to.
    y_channel: bool = False
    # One set of weights trained for every scale; ``set_scale`` changes a loaded model's scale.
    multi_scale: bool = False
    # The registered twin with a plain conv in place of the dynamic one (timed beside it).
    static_twin: str | None = None
    # export/fusion.py's one-PixelShuffle(2s) rewrite applies (DyConvSR's shuffle tail).
    fuses_pixel_shuffle: bool = False
    # The attribute holding the reconstruction layer that ``last_layer_lr`` trains (SRCNN recipe).
    last_layer: str | None = None
    # The smallest input height/width it accepts with its registered defaults (a reflect-padded
    # blur needs more than 2 pixels a side once odd sizes are padded to even).
    min_side: int = 1
    # A tiny variant for tests, left out of listings of the real networks.
    tiny: bool = False

    def __post_init__(self) -> None:
        if self.recipe not in TRAINING_RECIPES:
            raise ValueError(f"recipe must be one of {', '.join(TRAINING_RECIPES)}; got {self.recipe!r}")
        if self.recipe == "subimage" and not self.y_channel:
            raise ValueError("the sub-image recipe trains forward_y: only a Y-channel model can use it")


@dataclass(frozen=True)
class ModelEntry:
    builder: type[nn.Module]
    defaults: dict[str, Any]
    description: str
    traits: ModelTraits


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, builder: type[nn.Module], description: str, traits: ModelTraits, **defaults: Any) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model name {name!r} is already registered")
    if traits.static_twin is not None and traits.static_twin not in _REGISTRY:
        raise ValueError(f"static twin {traits.static_twin!r} of {name!r} must be registered first")
    _REGISTRY[name] = ModelEntry(builder, defaults, description, traits)


def list_models(include_tiny: bool = True) -> list[str]:
    return sorted(name for name, entry in _REGISTRY.items() if include_tiny or not entry.traits.tiny)


def describe_model(name: str) -> str:
    return _entry(name).description


def model_config(model: nn.Module) -> ModelConfig:
    """The ``config`` that ``create_model`` gave ``model``; a model built otherwise is refused."""
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise UserError(f"{type(model).__name__} has no .config; build it with train.models.create_model(name, ...)")
    return config


def model_traits(model: str | nn.Module) -> ModelTraits:
    """The traits of a registered model, given by name or as a model built by ``create_model``."""
    return _entry(model if isinstance(model, str) else model_config(model).name).traits


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


# Traits by family; a registration changes only what sets it apart (static twin, min_side, tiny).
_DYCONVSR = ModelTraits(recipe="patch", fuses_pixel_shuffle=True)
_SRCNN = ModelTraits(recipe="subimage", y_channel=True, last_layer="conv3")
_DCNN = ModelTraits(recipe="subimage", y_channel=True, multi_scale=True, last_layer="conv3")

register(
    "dyconvsr_static",
    DyConvSR,
    "DyConvSR's static twin: the same network with a plain conv in place of the dynamic one",
    _DYCONVSR,
    dynamic=False,
)
register("dyconvsr", DyConvSR, "DyConvSR, ~60K params at x2 (dynamic conv, HF branch, spatial attention)",
         replace(_DYCONVSR, static_twin="dyconvsr_static"))
register("dyconvsr_plus_static", DyConvSR, "DyConvSR+'s static twin (plain conv in place of the dynamic one)",
         _DYCONVSR, dynamic=False, head_activation=True)
register("dyconvsr_plus", DyConvSR,
         "DyConvSR+: DyConvSR with a GELU after the head conv (same parameters and MACs; +0.5 dB Set5 x2)",
         replace(_DYCONVSR, static_twin="dyconvsr_plus_static"), head_activation=True)
register(
    "dyconvsr_authors",
    DyConvSR,
    "DyConvSR exactly as the authors' code computes it: interleaved skip, reflect-padded blur, temperature 30",
    replace(_DYCONVSR, min_side=3),
    skip_order="interleaved",
    blur_padding="reflect",
)
register("srcnn", SRCNN, "SRCNN 9-1-5 (64/32) on the Y channel of a bicubic-upscaled input", _SRCNN)
register("dcnn", DCNN, "Multi-scale dynamic CNN: SRCNN stages with generated filters, one net for x2/x3/x4", _DCNN)
register("dyconvsr_tiny", DyConvSR, "Tiny DyConvSR for tests", replace(_DYCONVSR, tiny=True), channels=8,
         num_kernels=2)
register("srcnn_tiny", SRCNN, "Tiny SRCNN for tests", replace(_SRCNN, tiny=True), features=(8, 4),
         kernel_sizes=(3, 1, 3))
register("dcnn_tiny", DCNN, "Tiny DCNN for tests", replace(_DCNN, tiny=True), features=(8, 4),
         kernel_sizes=(3, 1, 3), num_kernels=2)
