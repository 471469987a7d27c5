"""Checkpoints: weights in safetensors plus a JSON config that rebuilds the model.

A checkpoint ``weights/dyconvsr_x2`` is the pair ``dyconvsr_x2.safetensors`` +
``dyconvsr_x2.json``. The JSON holds the registry name, the constructor arguments and training
metadata; loading needs nothing else and never unpickles anything.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch import nn

from runtime.errors import UserError
from runtime.files import (
    atomic_write_bytes,
    file_group,
    read_json_document,
    recover_group,
    sha256_file,
)
from runtime.safefiles import check_regular, read_regular, writing_output

from .models import create_model, model_config

FORMAT = "dyconvsr-toolchain/checkpoint-v2"
# v1 checkpoints predate the published DyConvSR (no activation after the head conv): their DyConvSR
# networks had a GELU there, so reading one rebuilds that network (``head_activation=True``).
FORMAT_V1 = "dyconvsr-toolchain/checkpoint-v1"
V1_DYCONVSR_MODELS = ("dyconvsr", "dyconvsr_static", "dyconvsr_tiny")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model (in eval mode) and what its JSON said.

    ``config_sha256`` is the sha256 of the JSON file, ``weights_sha256`` the one the JSON records
    for the safetensors (checked against the file when loaded); both None for an untrained model.
    """

    model: nn.Module
    name: str
    kwargs: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    config_sha256: str | None = None
    weights_sha256: str | None = None


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
    # Serialised here and written into atomic_write_bytes' temp file: safetensors' save_file
    # replaces the file it is given with a private (0600) one of its own.
    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    atomic_write_bytes(path, data)


def write_checkpoint_files(
    weights_target: Path, config_target: Path, model: nn.Module, weights_name: str,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write a model's safetensors and JSON to the given paths (pending files of a group); the
    JSON names the weights ``weights_name`` and holds their sha256."""
    config = model_config(model)
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
    with writing_output(config_path.with_suffix(""), "checkpoint"), \
            file_group([weights_path, config_path]) as (weights_tmp, config_tmp):
        write_checkpoint_files(weights_tmp, config_tmp, model, weights_path.name, metadata)
    return config_path


@contextlib.contextmanager
def file_errors(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Turn what reading a hostile or broken JSON (or TOML) file raises into :class:`UserError`
    naming ``what`` and ``path``: bytes that are not UTF-8, nesting deeper than Python's stack,
    invalid JSON, a file that cannot be opened."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except RecursionError:
        raise UserError(f"{what} {path} nests deeper than the parser can follow") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def read_document(
    path: str | os.PathLike[str], expected_format: str | tuple[str, ...], what: str
) -> dict[str, Any]:
    """:func:`runtime.files.read_json_document`, with a file that cannot be opened (permissions) a
    UserError too, and a FIFO or device in its place refused rather than waited on."""
    with file_errors(path, what):
        check_regular(path, f"{what} {path}")
        return read_json_document(path, expected_format, what)


def read_checkpoint_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    _, config_path = checkpoint_paths(path)
    if not check_regular(config_path, f"checkpoint config {config_path}"):
        raise UserError(f"checkpoint config {config_path} not found (expected <name>.json beside <name>.safetensors)")
    document = read_document(config_path, (FORMAT, FORMAT_V1), "checkpoint config")
    model = document.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not isinstance(
        model.get("kwargs", {}), dict
    ):
        raise UserError(f"checkpoint config {config_path}: 'model' must be {{'name': str, 'kwargs': dict}}")
    for key, kind in (("metadata", dict), ("weights_sha256", str)):
        if key in document and not isinstance(document[key], kind):
            raise UserError(f"checkpoint config {config_path}: {key!r} must be a {kind.__name__}; "
                            f"got {type(document[key]).__name__}")
    if document["format"] == FORMAT_V1 and model["name"] in V1_DYCONVSR_MODELS:
        model["kwargs"] = {"head_activation": True, **model.get("kwargs", {})}
    return document


# Room for a safetensors header beside the tensor bytes (a few hundred bytes a tensor in practice).
HEADER_ALLOWANCE = 1 << 20


def tensor_bytes(tensors: Mapping[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def read_tensor_file(path: Path, expected_bytes: int, what: str) -> tuple[dict[str, torch.Tensor], str]:
    """A safetensors file's tensors (CPU) and its sha256, from one read of a regular file (a FIFO
    or folder in its place is refused without blocking, a file far larger than ``expected_bytes``
    unread); a bad header, offsets or dtype is a UserError. Hashed and parsed from the same bytes,
    so the file cannot change between its sha256 check and its loading."""
    data = read_regular(path, f"{what} {path}", expected_bytes + HEADER_ALLOWANCE, "what it should hold")
    try:
        return load(data), hashlib.sha256(data).hexdigest()
    except (SafetensorError, ValueError, RuntimeError, TypeError) as exc:
        raise UserError(f"{what} {path} is not a valid safetensors file: {exc}") from None


def tensor_mismatch(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> str | None:
    """What differs between tensors ``got`` and ``expected`` (names, shapes, dtypes), or None."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = [f"{k} ({_described(got[k])}, expected {_described(expected[k])})"
             for k in sorted(set(expected) & set(got))
             if got[k].shape != expected[k].shape or got[k].dtype != expected[k].dtype]
    problems = (("missing", missing), ("unexpected", unexpected), ("wrong shape or dtype", wrong))
    return "; ".join(f"{label} {_first(names)}" for label, names in problems if names) or None


def _described(tensor: torch.Tensor) -> str:
    return f"{tensor.dtype} {list(tensor.shape)}"


def _first(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f", ... ({len(names)} in all)" if len(names) > shown else "")


def load_checkpoint(path: str | os.PathLike[str], verify: bool = True) -> Checkpoint:
    """Rebuild the model a checkpoint describes and load its weights (eval mode, CPU).

    The model is built first (``create_model`` refuses implausible arguments without allocating),
    so a weights file far larger than that model is refused unread.
    """
    weights_path, config_path = checkpoint_paths(path)
    recover_group([weights_path, config_path])
    document = read_checkpoint_config(path)
    if not check_regular(weights_path, f"checkpoint weights {weights_path}"):
        raise UserError(f"checkpoint weights {weights_path} not found (named by {config_path})")
    name, kwargs = document["model"]["name"], document["model"].get("kwargs", {})
    model = create_model(name, **kwargs)
    own = model.state_dict()
    if verify and "weights_sha256" not in document:
        raise UserError(f"checkpoint config {config_path} has no weights_sha256 to check {weights_path} by")
    state, sha256 = read_tensor_file(weights_path, tensor_bytes(own), "checkpoint weights")
    if verify and document["weights_sha256"] != sha256:
        raise UserError(f"checkpoint weights {weights_path} do not match the sha256 in {config_path}")
    mismatch = tensor_mismatch(own, state)
    if mismatch:
        raise UserError(f"checkpoint {weights_path} does not fit model {name!r} {kwargs}: {mismatch}")
    model.load_state_dict(state, strict=True)
    model.eval()
    return Checkpoint(model, name, dict(kwargs), document.get("metadata", {}), config_path,
                      config_sha256=sha256_file(config_path), weights_sha256=document.get("weights_sha256"))


def copy_checkpoint(
    source: str | os.PathLike[str], destination: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> Path:
    """Re-save a checkpoint under a new name (e.g. a run's best as shipped weights), bit-exact,
    with ``metadata`` merged into its own."""
    loaded = load_checkpoint(source)
    return save_checkpoint(destination, loaded.model, metadata={**loaded.metadata, **(metadata or {})})
