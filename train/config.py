"""Training settings: :class:`TrainConfig`, its presets (``PROFILES``) and the one range check that
defaults, profiles, TOML files and command-line flags all go through (``SETTINGS``)."""
from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from runtime.errors import UserError

from .checkpoint import file_errors
from .models import SUPPORTED_SCALES, list_models
from .state import is_int, is_number, shown


@dataclass
class TrainConfig:
    """Everything a run needs; a TOML file and CLI flags fill it, defaults are the paper's."""

    model: str = "dyconvsr"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    scale: int = 2
    # Multi-scale training (DCNN): the scales mixed in one stream; empty = [scale].
    train_scales: list[int] = field(default_factory=list)
    data: list[str] = field(default_factory=list)  # HR folders
    embedded: bool = True  # add the scikit-image training images
    precrop: bool = False  # sliding-window 300x300/150 crops cached under cache_dir
    cache_dir: str = "cache"
    hr_patch: int = 256
    batch_size: int = 64
    iterations: int = 100_000
    optimizer: str = "adamw"  # adamw | adam | sgd
    lr: float = 1e-3
    last_layer_lr: float | None = None  # SRCNN/DCNN recipe: the reconstruction layer's rate
    weight_decay: float = 0.0
    lr_step: int = 20_000  # StepLR period in iterations (paper: 20 of 100 epochs)
    lr_gamma: float = 0.5
    loss: str = "l1"  # l1 | mse
    init_std: float | str | None = None  # Gaussian init: a std (SRCNN paper: 0.001) or "he" (N(0, 2/fan_in))
    # Warm start: a checkpoint whose tensors with the same name and shape replace the fresh ones
    # (e.g. DyConvSR x3 from x2: everything but the two output convs); ignored on --resume.
    init_from: str | None = None
    # Tensor-name prefixes kept fresh in a warm start, e.g. ["spatial_attention"]: a gate copied
    # onto freshly initialised features can saturate (measured: DyConvSR x3 from x2 kept the CBAM
    # conv's x2 weights on a fresh tail, its sigmoid went to 0 and the output stayed the skip).
    init_skip: list[str] = field(default_factory=list)
    temperature_start: float = 30.0
    temperature_end: float = 1.0
    anneal_fraction: float = 0.1
    seed: int = 0
    threads: int = 0  # 0 = torch's default
    # The forward pass in bf16 (torch.autocast; weights, loss and optimizer stay fp32): on CPUs with AMX or
    # AVX512-BF16 (docs/results.md: samples/s per machine kind). "fp32" everywhere else.
    precision: str = "fp32"
    compile: bool = False  # torch.compile the training forward (the saved and validated model is the plain one)
    val_every: int = 1000
    save_every: int = 500
    log_every: int = 10
    out: str = "runs/dyconvsr_x2"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            problem = setting_problem(f.name, value)
            if problem:
                raise UserError(problem)
        if self.compile and self.precision == "bf16":  # measured: loss NaN at step 2 (torch 2.13 inductor, CPU)
            raise UserError("compile and precision 'bf16' together diverge here (NaN at step 2 with torch 2.13's "
                            "inductor); use one of them")
            if f.name in FLOAT_SETTINGS and is_number(value):
                setattr(self, f.name, float(value))  # TOML's ``lr = 1`` is the float 1.0

    @property
    def scales(self) -> list[int]:
        return list(self.train_scales) or [self.scale]


# What every TrainConfig field accepts (a description and a test), checked in __post_init__ so
# defaults, profiles, TOML files and flags all pass through the same checks. Bools are not integers.
def _integer(low: int, high: int | None = None) -> tuple[str, Callable[[Any], bool]]:
    return (f"an integer >= {low}" if high is None else f"an integer in {low}..{high}",
            lambda v: is_int(v) and v >= low and (high is None or v <= high))


def _number(what: str, test: Callable[[float], bool]) -> tuple[str, Callable[[Any], bool]]:
    return f"a number {what}", lambda v: is_number(v) and math.isfinite(v) and test(v)


def _choice(*allowed: str) -> tuple[str, Callable[[Any], bool]]:
    return f"one of {', '.join(map(repr, allowed))}", lambda v: isinstance(v, str) and v in allowed


def _optional(rule: tuple[str, Callable[[Any], bool]]) -> tuple[str, Callable[[Any], bool]]:
    return f"{rule[0]} or unset", lambda v: v is None or rule[1](v)


_BOOL = ("true or false", lambda v: isinstance(v, bool))
_TEXT = ("a non-empty string", lambda v: isinstance(v, str) and v != "")
_TEXTS = ("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
_POSITIVE = _number("> 0", lambda v: v > 0)
MAX_BATCH = 4096  # a larger batch of these small networks only exhausts memory
SETTINGS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "model": (f"a registered model ({', '.join(list_models())})",
              lambda v: isinstance(v, str) and v in list_models()),
    "model_kwargs": ("a table of model arguments",
                     lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v)),
    "scale": _integer(min(SUPPORTED_SCALES), max(SUPPORTED_SCALES)),
    "train_scales": (f"a list of distinct scales in {min(SUPPORTED_SCALES)}..{max(SUPPORTED_SCALES)}",
                     lambda v: isinstance(v, list) and len(set(v)) == len(v)
                     and all(is_int(x) and x in SUPPORTED_SCALES for x in v)),
    "data": _TEXTS,
    "embedded": _BOOL,
    "precrop": _BOOL,
    "cache_dir": _TEXT,
    "hr_patch": _integer(8),
    "batch_size": _integer(1, MAX_BATCH),
    "iterations": _integer(1),
    "optimizer": _choice("adamw", "adam", "sgd"),
    "lr": _POSITIVE,
    "last_layer_lr": _optional(_POSITIVE),
    "weight_decay": _number(">= 0", lambda v: v >= 0),
    "lr_step": _integer(1),
    "lr_gamma": _number("in (0, 1]", lambda v: 0 < v <= 1),
    "loss": _choice("l1", "mse"),
    "init_std": ("a number > 0, 'he' or unset", lambda v: v is None or v == "he" or _POSITIVE[1](v)),
    "init_from": _optional(_TEXT),
    "init_skip": _TEXTS,
    "temperature_start": _POSITIVE,
    "temperature_end": _POSITIVE,
    "anneal_fraction": _number("in [0, 1]", lambda v: 0 <= v <= 1),
    "seed": _integer(0, 2**63 - 1),
    "threads": _integer(0, 256),
    "precision": _choice("fp32", "bf16"),
    "compile": _BOOL,
    "val_every": _integer(1),
    "save_every": _integer(1),
    "log_every": _integer(1),
    "out": _TEXT,
}
FLOAT_SETTINGS = {"lr", "last_layer_lr", "weight_decay", "lr_gamma", "init_std", "temperature_start",
                  "temperature_end", "anneal_fraction"}


def setting_problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be training setting ``name`` (naming both), or None if it can."""
    if name not in SETTINGS:
        return f"unknown training setting {name} = {shown(value)}; known: {', '.join(sorted(SETTINGS))}"
    allowed, test = SETTINGS[name]
    if test(value):
        return None
    return f"training setting {name} must be {allowed}; got {shown(value)} ({type(value).__name__})"


PROFILES: dict[str, dict[str, Any]] = {
    # The DyConvSR paper's recipe (batch 64 of 256x256 HR crops; 100 epochs ~ 100k iterations).
    "paper": {},
    # A usable model on 2 CPU cores in a few minutes, on the embedded images.
    "quick": {"hr_patch": 96, "batch_size": 16, "iterations": 2000, "lr_step": 1500, "val_every": 500,
              "save_every": 250, "anneal_fraction": 0.1, "out": "runs/quick"},
    # The long CPU run behind the shipped weights.
    "cpu": {"hr_patch": 128, "batch_size": 32, "iterations": 40_000, "lr_step": 10_000, "val_every": 1000,
            "save_every": 250, "anneal_fraction": 0.05},
    # The dynamic-CNN paper's recipe (SRCNN-style): MSE, Gaussian init, per-layer rates.
    "srcnn": {"hr_patch": 33, "batch_size": 128, "iterations": 30_000, "optimizer": "adam", "lr": 1e-4,
              "last_layer_lr": 1e-5, "lr_step": 10_000, "loss": "mse", "init_std": 1e-3, "val_every": 1000,
              "save_every": 500},
}


def config_from(profile: str | None, file: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """Defaults <- profile <- TOML file <- flags; unknown keys and values out of range are errors
    naming where they came from, not silently ignored."""
    sources: list[tuple[str, dict[str, Any]]] = []
    if profile is not None:
        if profile not in PROFILES:
            raise UserError(f"unknown profile {profile!r}; available: {', '.join(PROFILES)}")
        sources.append((f"profile {profile!r}", PROFILES[profile]))
    if file is not None:
        if not Path(file).is_file():
            raise UserError(f"config file {file} not found")
        try:
            with file_errors(file, "config file"):
                sources.append((f"config file {file}", tomllib.loads(Path(file).read_text())))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"config file {file} is not valid TOML: {exc}") from None
    sources.append(("flags", {k: v for k, v in overrides.items() if v is not None}))
    values: dict[str, Any] = {}
    for origin, settings in sources:
        for name, value in settings.items():
            problem = setting_problem(name, value)
            if problem:
                raise UserError(f"{origin}: {problem}")
        values.update(settings)
    return TrainConfig(**values)
