"""Checkpoints: weights in safetensors plus a JSON config that rebuilds the model.

A checkpoint ``weights/dyconvsr_x2`` is the pair ``dyconvsr_x2.safetensors`` +
``dyconvsr_x2.json``. The JSON holds the registry name, the constructor arguments and training
metadata; loading needs nothing else and never unpickles anything.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from runtime.errors import UserError
from runtime.files import (
    atomic_path,
    atomic_write_bytes,
    file_group,
    read_json_document,
    recover_group,
    sha256_file,
)

from .models import create_model

FORMAT = "dyconvsr-toolchain/checkpoint-v2"
# v1 checkpoints predate the published DyConvSR (no activation after the head conv): their DyConvSR
# networks had a GELU there, so reading one rebuilds that network (``head_activation=True``).
FORMAT_V1 = "dyconvsr-toolchain/checkpoint-v1"
V1_DYCONVSR_MODELS = ("dyconvsr", "dyconvsr_static", "dyconvsr_tiny")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (in eval mode) and what its JSON said."""

    model: nn.Module
    name: str
    kwargs: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def checkpoint_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights, config) paths for a checkpoint given as stem, ``.safetensors`` or ``.json``."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def checkpoint_label(path: str | os.PathLike[str], separator: str = "/") -> str:
    """A checkpoint's display name: its stem, or ``<run>/<best|last>`` for a training run's files
    (``separator`` joins the two; use "_" where the label becomes a folder name)."""
    stem = checkpoint_paths(path)[1].with_suffix("")
    if stem.name in ("best", "last") and stem.parent.name:
        return f"{stem.parent.name}{separator}{stem.name}"
    return stem.name


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Atomic safetensors write of detached, contiguous CPU copies."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def write_checkpoint_files(
    weights_target: Path, config_target: Path, model: nn.Module, weights_name: str,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write a model's safetensors and JSON to the given paths (pending files of a group); the
    JSON names the weights ``weights_name`` and holds their sha256."""
    config = getattr(model, "config", None)
    if config is None:
        raise UserError("model has no .config; build it with train.models.create_model(name, ...)")
    save_tensors(weights_target, model.state_dict(), metadata={"format": FORMAT, "model": config.name})
    document = {
        "format": FORMAT,
        "model": config.to_dict(),
        "weights": weights_name,
        "weights_sha256": sha256_file(weights_target),
        "metadata": metadata or {},
    }
    atomic_write_bytes(config_target, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def save_checkpoint(
    path: str | os.PathLike[str], model: nn.Module, metadata: dict[str, Any] | None = None
) -> Path:
    """Save ``model`` (built by ``create_model``) as ``<path>.safetensors`` + ``<path>.json``.

    Returns the JSON path. Both files are written as one group (runtime.files.file_group): a crash
    leaves the old pair or the new one, never weights that disagree with their JSON.
    """
    weights_path, config_path = checkpoint_paths(path)
    with file_group([weights_path, config_path]) as (weights_tmp, config_tmp):
        write_checkpoint_files(weights_tmp, config_tmp, model, weights_path.name, metadata)
    return config_path


def read_checkpoint_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    _, config_path = checkpoint_paths(path)
    if not config_path.is_file():
        raise UserError(f"checkpoint config {config_path} not found (expected <name>.json beside <name>.safetensors)")
    document = read_json_document(config_path, (FORMAT, FORMAT_V1), "checkpoint config")
    model = document.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(
        model.get("kwargs", {}), dict
    ):
        raise UserError(f"checkpoint config {config_path}: 'model' must be {{'name': str, 'kwargs': dict}}")
    if document["format"] == FORMAT_V1 and model["name"] in V1_DYCONVSR_MODELS:
        model["kwargs"] = {"head_activation": True, **model.get("kwargs", {})}
    return document


def load_checkpoint(path: str | os.PathLike[str], verify: bool = True) -> Checkpoint:
    """Rebuild the model a checkpoint describes and load its weights (eval mode, CPU)."""
    weights_path, config_path = checkpoint_paths(path)
    recover_group([weights_path, config_path])
    document = read_checkpoint_config(path)
    if not weights_path.is_file():
        raise UserError(f"checkpoint weights {weights_path} not found (named by {config_path})")
    if verify and document.get("weights_sha256") not in (None, sha256_file(weights_path)):
        raise UserError(f"checkpoint weights {weights_path} do not match the sha256 in {config_path}")
    name, kwargs = document["model"]["name"], document["model"].get("kwargs", {})
    model = create_model(name, **kwargs)
    state = load_file(str(weights_path), device="cpu")
    missing, unexpected = _state_mismatch(model, state)
    if missing or unexpected:
        raise UserError(
            f"checkpoint {weights_path} does not fit model {name!r} {kwargs}: "
            f"missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[-1].strip()
        raise UserError(f"checkpoint {weights_path} does not fit model {name!r}: {first_line}") from None
    model.eval()
    return Checkpoint(model, name, dict(kwargs), document.get("metadata", {}), config_path)


def _state_mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    expected = set(model.state_dict())
    return sorted(expected - set(state)), sorted(set(state) - expected)


def copy_checkpoint(
    source: str | os.PathLike[str], destination: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> Path:
    """Re-save a checkpoint under a new name (e.g. a run's best as shipped weights), bit-exact,
    with ``metadata`` merged into its own."""
    loaded = load_checkpoint(source)
    return save_checkpoint(destination, loaded.model, metadata={**loaded.metadata, **(metadata or {})})
