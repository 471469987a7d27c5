"""Training state that survives an interruption: model checkpoint + optimizer + scheduler + step.

``<run>/last`` is an ordinary checkpoint (``load_checkpoint`` reads it); beside it
``last.optim.safetensors`` holds the optimizer's tensors and ``last.state.json`` the rest
(step, scheduler, optimizer hyper-parameters, best score, the optimizer file's sha256). Nothing
is pickled. The JSON is written last, so a state whose JSON exists is complete.
"""
from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runtime.errors import UserError, first_line
from runtime.files import atomic_write_bytes, file_group, recover_group, sha256_file
from runtime.safefiles import check_regular, writing_output

from .checkpoint import (
    checkpoint_paths,
    load_checkpoint,
    read_document,
    read_tensor_file,
    save_tensors,
    tensor_bytes,
    tensor_mismatch,
    write_checkpoint_files,
)

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


def state_files(stem: Path) -> list[Path]:
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
    files = state_files(stem)
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
    with writing_output(stem, "training state"), \
            file_group(files) as (weights_tmp, config_tmp, optim_tmp, state_tmp):
        write_checkpoint_files(weights_tmp, config_tmp, model, files[0].name, {**metadata, "step": state.step})
        save_tensors(optim_tmp, tensors)
        document["optimizer_sha256"] = sha256_file(optim_tmp)
        atomic_write_bytes(state_tmp, (json.dumps(document, indent=2) + "\n").encode())


def has_training_state(stem: str | os.PathLike[str]) -> bool:
    files = state_files(Path(stem))
    recover_group(files)
    return files[-1].is_file()


def load_training_state(
    stem: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> TrainingState:
    """Restore model weights, optimizer and scheduler in place; return the step and scores.

    Every file is checked against what ``model``, ``optimizer`` and ``scheduler`` (built from the
    run's settings) hold before any of them is touched: a state that does not fit raises
    :class:`UserError` naming what is wrong, and leaves all three as they were.
    """
    stem = Path(stem)
    recover_group(state_files(stem))
    optim_path, state_path = _paths(stem)
    if not check_regular(state_path, f"training state {state_path}"):
        raise UserError(f"no training state at {state_path}")
    document = read_document(state_path, STATE_FORMAT, "training state")
    state = _state_fields(document, state_path)
    saved = load_checkpoint(stem)
    mismatch = tensor_mismatch(model.state_dict(), saved.model.state_dict())
    if type(saved.model) is not type(model) or mismatch:
        raise UserError(f"training state {stem} was saved for a different model "
                        f"({saved.name} {saved.kwargs}): {mismatch or type(saved.model).__name__}")
    if saved.metadata.get("step", state.step) != state.step:
        raise UserError(f"training state {state_path} says step {state.step}; "
                        f"its weights {saved.path} were saved at step {saved.metadata['step']}")
    groups = _checked_groups(document.get("optimizer_param_groups"), optimizer, state_path)
    tensors = _optimizer_tensors(optim_path, document.get("optimizer_sha256"), optimizer, groups)
    _check_like(document.get("scheduler"), scheduler.state_dict(), f"training state {state_path}: scheduler")
    _check_scheduler(document["scheduler"], scheduler, state_path)
    if document["scheduler"].get("last_epoch", state.step) != state.step:
        raise UserError(f"training state {state_path}: scheduler is at step "
                        f"{document['scheduler']['last_epoch']}, the state at step {state.step}")
    model.load_state_dict(saved.model.state_dict())
    optimizer.load_state_dict(_unflatten_optimizer(tensors, groups))
    scheduler.load_state_dict(document["scheduler"])
    return state


def _state_fields(document: dict[str, Any], path: Path) -> TrainingState:
    step, score, best_step, extra = (document.get(k) for k in ("step", "best_score", "best_step", "extra"))
    if not is_int(step) or step < 0:
        raise UserError(f"training state {path}: step must be an integer >= 0; got {shown(step)}")
    if score is not None and not (is_number(score) and math.isfinite(score)):
        raise UserError(f"training state {path}: best_score must be a finite number or null; "
                        f"got {shown(score)}")
    if (score is None) != (best_step is None) or (
        best_step is not None and not (is_int(best_step) and 1 <= best_step <= step)
    ):
        raise UserError(f"training state {path}: best_step must be an integer in 1..{step} beside a "
                        f"best_score, or null beside a null one; got {shown(best_step)} "
                        f"(best_score {shown(score)})")
    if extra is not None and not isinstance(extra, dict):
        raise UserError(f"training state {path}: extra must be an object; got {shown(extra)}")
    return TrainingState(step, None if score is None else float(score), best_step, extra or {})


def _checked_groups(saved: Any, optimizer: torch.optim.Optimizer, path: Path) -> list[dict[str, Any]]:
    """The saved param groups, refused unless they have the current optimizer's keys, value types
    and parameters (same count per group, ids as the optimizer numbers them)."""
    fresh = optimizer.state_dict()["param_groups"]
    where = f"training state {path}: optimizer_param_groups"
    if not isinstance(saved, list) or len(saved) != len(fresh):
        raise UserError(f"{where} must be a list of {len(fresh)} group(s), as the model's optimizer has; "
                        f"got {shown(saved)}")
    for index, (group, own) in enumerate(zip(saved, fresh, strict=True)):
        if not isinstance(group, dict) or group.get("params") != own["params"]:
            params = group.get("params") if isinstance(group, dict) else group
            raise UserError(f"{where}[{index}] must list parameters {shown(own['params'])} "
                            f"({len(own['params'])} of the model's); got {shown(params)}")
        _check_like({k: v for k, v in group.items() if k != "params"},
                    {k: v for k, v in own.items() if k != "params"}, f"{where}[{index}]")
        _check_settings(group, optimizer, f"{where}[{index}]")
    return saved


def _check_settings(group: dict[str, Any], optimizer: torch.optim.Optimizer, where: str) -> None:
    """Refuse a group whose values the optimizer's own constructor refuses (betas [2, 2], a
    negative eps): a twin is built with them, so torch's rules decide, for any optimizer."""
    accepted = inspect.signature(type(optimizer)).parameters
    settings = {k: v for k, v in group.items() if k in accepted and k != "params"}
    try:
        type(optimizer)([nn.Parameter(torch.zeros(1))], **settings)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise UserError(f"{where}: {type(optimizer).__name__} refuses these settings: {first_line(exc)}") from None


# The scheduler's settings, fixed by the run's (lr_step, lr_gamma, lr: --resume refuses changes to
# them); the rest of its state is progress (last_epoch, _last_lr, ...).
SCHEDULER_SETTINGS = ("step_size", "gamma", "base_lrs")


def _check_scheduler(saved: dict[str, Any], scheduler: torch.optim.lr_scheduler.LRScheduler, path: Path) -> None:
    own = scheduler.state_dict()
    for key in (k for k in SCHEDULER_SETTINGS if k in own):
        if saved[key] != own[key]:
            raise UserError(f"training state {path}: scheduler.{key} is {shown(saved[key])}; "
                            f"the run's settings give {shown(own[key])}")


def _optimizer_tensors(
    path: Path, sha256: Any, optimizer: torch.optim.Optimizer, groups: list[dict[str, Any]]
) -> dict[str, torch.Tensor]:
    """The optimizer's saved tensors, refused unless they are exactly the names, shapes and dtypes
    this optimizer keeps for these parameters."""
    if not check_regular(path, f"optimizer state {path}"):
        raise UserError(f"optimizer state {path} not found (the training state beside it names it)")
    expected = _expected_optimizer_tensors(optimizer, groups)
    tensors, digest = read_tensor_file(path, tensor_bytes(expected), "optimizer state")
    if sha256 is not None and sha256 != digest:
        raise UserError(f"optimizer state {path} does not match the sha256 in its training state")
    mismatch = tensor_mismatch(expected, tensors)
    if mismatch:
        raise UserError(f"optimizer state {path} does not fit the model's {type(optimizer).__name__}: "
                        f"{mismatch}")
    return tensors


def _expected_optimizer_tensors(
    optimizer: torch.optim.Optimizer, groups: list[dict[str, Any]]
) -> dict[str, torch.Tensor]:
    # What this optimizer keeps per parameter, learnt from one step of a twin on a 2-element probe:
    # a state tensor shaped like the probe is shaped like its parameter (exp_avg), others are
    # fixed (step). Meta tensors: only shapes and dtypes are compared.
    probe = nn.Parameter(torch.zeros(2))
    accepted = inspect.signature(type(optimizer)).parameters
    twin = type(optimizer)([probe], **{k: v for k, v in optimizer.defaults.items() if k in accepted})
    probe.grad = torch.zeros(2)
    twin.step()
    kept = {name: value for name, value in twin.state[probe].items() if torch.is_tensor(value)}
    params = chain.from_iterable(g["params"] for g in optimizer.param_groups)
    ids = chain.from_iterable(g["params"] for g in groups)
    return {
        f"state.{param_id}.{name}": torch.empty(param.shape if value.shape == probe.shape else value.shape,
                                                dtype=value.dtype, device="meta")
        for param_id, param in zip(ids, params, strict=True) for name, value in kept.items()
    }


def _check_like(saved: Any, fresh: Any, where: str) -> None:
    """Refuse ``saved`` (read from JSON) unless it has the structure of ``fresh`` (what the object
    it will be loaded into holds now): the same keys, list lengths and kinds of value."""
    if isinstance(fresh, dict):
        if not isinstance(saved, dict) or set(saved) != set(fresh):
            got = sorted(saved) if isinstance(saved, dict) else shown(saved)
            raise UserError(f"{where} must have the keys {sorted(fresh)}; got {got}")
        for key, value in fresh.items():
            _check_like(saved[key], value, f"{where}.{key}")
    elif isinstance(fresh, (list, tuple)):
        if not isinstance(saved, list) or len(saved) != len(fresh):
            raise UserError(f"{where} must be a list of {len(fresh)}; got {shown(saved)}")
        for index, (item, value) in enumerate(zip(saved, fresh, strict=True)):
            _check_like(item, value, f"{where}[{index}]")
    elif not _same_kind(saved, fresh):
        raise UserError(f"{where} must be {_kind(fresh)}; got {shown(saved)}")


def _same_kind(saved: Any, fresh: Any) -> bool:
    if isinstance(fresh, bool) or fresh is None:  # None: an option torch decides (foreach, fused)
        return isinstance(saved, bool) or saved is fresh
    if isinstance(fresh, int):
        return is_int(saved) and saved >= 0
    if isinstance(fresh, float):
        return is_number(saved) and math.isfinite(saved) and saved >= 0
    return type(saved) is type(fresh)


def _kind(fresh: Any) -> str:
    if isinstance(fresh, bool) or fresh is None:
        return "true, false or null" if fresh is None else "true or false"
    if isinstance(fresh, (int, float)):
        return f"{'an integer' if isinstance(fresh, int) else 'a finite number'} >= 0"
    return f"a {type(fresh).__name__}"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shown(value: Any, limit: int = 80) -> str:
    """``repr`` (escapes included) cut to ``limit`` characters, for values named in one-line errors."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
