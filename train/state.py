"""Training state that survives an interruption: model checkpoint + optimizer + scheduler + step.

``<run>/last`` is an ordinary checkpoint (``load_checkpoint`` reads it); beside it
``last.optim.safetensors`` holds the optimizer's tensors and ``last.state.json`` the rest
(step, scheduler, optimizer hyper-parameters, best score). Nothing is pickled. The JSON is
written last, so a state whose JSON exists is complete.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from runtime.errors import UserError
from runtime.files import atomic_write_bytes, file_group, read_json_document, recover_group

from .checkpoint import checkpoint_paths, load_checkpoint, save_tensors, write_checkpoint_files

STATE_FORMAT = "dyconvsr-toolchain/train-state-v1"


@dataclass
class TrainingState:
    step: int
    best_score: float | None
    best_step: int | None
    extra: dict[str, Any]


def _paths(stem: Path) -> tuple[Path, Path]:
    return stem.with_name(stem.name + ".optim.safetensors"), stem.with_name(stem.name + ".state.json")


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    tensors = {}
    for param_id, values in state["state"].items():
        for name, value in values.items():
            tensors[f"state.{param_id}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, state["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, param_id, name = key.split(".", 2)
        state.setdefault(int(param_id), {})[name] = value
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


def _group(stem: Path) -> list[Path]:
    """The files of one saved state, the state JSON last (it marks a complete group)."""
    weights, config = checkpoint_paths(stem)
    optim_path, state_path = _paths(stem)
    return [weights, config, optim_path, state_path]


def save_training_state(
    stem: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainingState,
    metadata: dict[str, Any],
) -> None:
    """Write model, optimizer and state as one group: a kill at any moment leaves the previous
    state or this one (see runtime.files.file_group), so ``--resume`` always finds a whole state."""
    stem = Path(stem)
    files = _group(stem)
    tensors, groups = _flatten_optimizer(optimizer.state_dict())
    document = {
        "format": STATE_FORMAT,
        "step": state.step,
        "best_score": state.best_score,
        "best_step": state.best_step,
        "extra": state.extra,
        "optimizer_param_groups": groups,
        "scheduler": scheduler.state_dict(),
    }
    with file_group(files) as (weights_tmp, config_tmp, optim_tmp, state_tmp):
        write_checkpoint_files(weights_tmp, config_tmp, model, files[0].name, {**metadata, "step": state.step})
        save_tensors(optim_tmp, tensors)
        atomic_write_bytes(state_tmp, (json.dumps(document, indent=2) + "\n").encode())


def has_training_state(stem: str | os.PathLike[str]) -> bool:
    files = _group(Path(stem))
    recover_group(files)
    return files[-1].is_file()


def load_training_state(
    stem: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainingState:
    """Restore model weights, optimizer and scheduler in place; return the step and scores."""
    stem = Path(stem)
    recover_group(_group(stem))
    optim_path, state_path = _paths(stem)
    if not state_path.is_file():
        raise UserError(f"no training state at {state_path}")
    document = read_json_document(state_path, STATE_FORMAT, "training state")
    saved = load_checkpoint(stem).model
    if type(saved) is not type(model) or saved.state_dict().keys() != model.state_dict().keys():
        raise UserError(f"training state {stem} was saved for a different model ({type(saved).__name__})")
    model.load_state_dict(saved.state_dict())
    optimizer.load_state_dict(_unflatten_optimizer(load_file(str(optim_path)), document["optimizer_param_groups"]))
    scheduler.load_state_dict(document["scheduler"])
    return TrainingState(document["step"], document["best_score"], document["best_step"], document.get("extra", {}))
