"""The training loop: both papers' recipes, resumable, seeded, optionally data-parallel.

- DyConvSR family (``dyconvsr``, ``dyconvsr_static``): random HR crops with rotations/flips, LR
  made online, AdamW (0.9, 0.999), lr 1e-3, StepLR x0.5, L1 loss, temperature annealed 30 -> 1.
- SRCNN / DCNN: 33x33 Y sub-images of blurred-subsampled-upscaled inputs (x2/x3/x4 mixed for the
  DCNN, one scale for the static SRCNN), Gaussian init (std 0.001), MSE, per-layer learning rates
  (first two layers vs the last; the paper's 1e-4 / 1e-5 with SGD, here with Adam by default so
  CPU budgets converge; ``optimizer = "sgd"`` restores the paper's).

Training runs for a number of iterations (one batch each); batches are a pure function of
(seed, step, rank), so a resumed run continues exactly where an uninterrupted one would be.
Under ``torchrun`` (WORLD_SIZE > 1) it trains with DistributedDataParallel on the gloo backend.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from runtime.errors import UserError
from runtime.progress import progress_bar, status

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import NamedImage, PatchSampler, SubImageSampler, embedded_images, folder_images, precrop
from .models import (
    create_model,
    dynamic_convs,
    model_traits,
    set_formulation,
    set_temperature,
    temperature_schedule,
)
from .run_files import (
    SETTINGS,
    append_record,
    check_run_files,
    read_settings,
    uncommitted_undone,
    write_settings,
)
from .state import (
    TrainingState,
    has_training_state,
    is_int,
    load_training_state,
    save_training_state,
    shown,
)
from .validate import validation_psnr, validation_set


@dataclass
class FitResult:
    out: Path
    steps: int
    best_psnr: float | None
    best_step: int | None
    last_loss: float
    seconds: float


# ---- set-up helpers -----------------------------------------------------------------------------
def _training_images(config: TrainConfig) -> list[NamedImage]:
    images: list[NamedImage] = embedded_images("train") if config.embedded else []
    for folder in config.data:
        images.extend(folder_images(folder))
    if not images:
        raise UserError("no training images: give --data FOLDER or keep the embedded images")
    if config.precrop:
        images = precrop(images, config.cache_dir)
    return images


def _build_model(config: TrainConfig) -> nn.Module:
    kwargs = dict(config.model_kwargs)
    kwargs.setdefault("scale", config.scale)
    if config.init_std is not None:
        kwargs.setdefault("init_std", config.init_std)
    model = create_model(config.model, **kwargs)
    set_temperature(model, config.temperature_start)
    return model


def warm_start(model: nn.Module, source: str, skip: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """Copy into ``model`` every tensor of checkpoint ``source`` with the same name and shape,
    except those whose name starts with a prefix in ``skip``.

    Returns (copied, kept fresh). Raises when nothing matches: a warm start from an unrelated
    network would silently train from scratch.
    """
    donor = load_checkpoint(source).model.state_dict()
    own = model.state_dict()
    copied = [name for name, tensor in own.items() if name in donor and donor[name].shape == tensor.shape
              and not any(name.startswith(prefix) for prefix in skip)]
    if not copied:
        raise UserError(f"--init-from {source}: no tensor matches {type(model).__name__} by name and shape")
    with torch.no_grad():
        for name in copied:
            own[name].copy_(donor[name])
    return copied, [name for name in own if name not in copied]


def _parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    layer = model_traits(model).last_layer
    if config.last_layer_lr is None or layer is None:
        return [{"params": list(model.parameters()), "lr": config.lr}]
    last_params = list(getattr(model, layer).parameters())
    last = set(id(p) for p in last_params)
    return [
        {"params": [p for p in model.parameters() if id(p) not in last], "lr": config.lr},
        {"params": last_params, "lr": config.last_layer_lr},
    ]


def _sampler(config: TrainConfig, images: list[NamedImage], rank: int) -> PatchSampler | SubImageSampler:
    """The training batches of the model's recipe (its registry traits)."""
    if model_traits(config.model).recipe == "subimage":
        return SubImageSampler(images, config.scales, config.batch_size, size=config.hr_patch, seed=config.seed,
                               rank=rank)
    return PatchSampler(images, config.scale, config.hr_patch, config.batch_size, seed=config.seed, rank=rank)


def _autocast(precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    """The context the forward pass runs in: bf16 autocast where asked and the CPU computes bf16 natively."""
    if precision == "fp32":
        return contextlib.nullcontext
    from runtime.cpu import cpu_info

    flags = cpu_info()[1]
    if not ({"amx_bf16", "avx512_bf16"} & flags):
        raise UserError("precision 'bf16' needs a CPU with AMX or AVX512-BF16 (emulated bf16 is slower than fp32); "
                        "this one has neither: use precision 'fp32'")
    return lambda: torch.autocast("cpu", dtype=torch.bfloat16)


def _trained_network(model: nn.Module) -> nn.Module:
    """What the training batches are fed to: ``forward_y`` for the sub-image recipe, else the model."""
    return _YOnly(model) if model_traits(model).recipe == "subimage" else model


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = _parameter_groups(model, config)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, betas=(0.9, 0.999), weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, betas=(0.9, 0.999), weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=0.9, weight_decay=config.weight_decay)
    raise UserError(f"optimizer must be one of adamw, adam, sgd; got {config.optimizer!r}")


def _loss(config: TrainConfig):
    if config.loss == "l1":
        return F.l1_loss
    if config.loss == "mse":
        return F.mse_loss
    raise UserError(f"loss must be l1 or mse; got {config.loss!r}")


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


# ---- the loop -----------------------------------------------------------------------------------
def fit(
    config: TrainConfig, resume: bool = False, progress: bool = True, stop_at: int | None = None
) -> FitResult:
    """Train per ``config``; writes ``<out>/last``, ``<out>/best``, ``metrics.jsonl``, ``config.json``.

    ``stop_at`` ends this invocation after that step (state saved), e.g. to fit a time-boxed
    session; ``resume=True`` later continues exactly where it stopped.
    """
    if stop_at is not None and not (is_int(stop_at) and stop_at >= 1):
        raise UserError(f"stop_at must be an integer >= 1; got {shown(stop_at)}")
    rank, world = _distributed()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    last, best = out / "last", out / "best"
    check_run_files(out)
    if has_training_state(last) and not resume:
        raise UserError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not has_training_state(last):
        raise UserError(f"nothing to resume in {out} (no last.state.json)")

    torch.manual_seed(config.seed)
    model = _build_model(config)
    set_formulation(model, "grouped")
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    state = TrainingState(0, None, None, {})
    if resume:
        _check_same_run(out / SETTINGS, config)
        state = load_training_state(last, model, optimizer, scheduler)
        if state.step > config.iterations:
            raise UserError(f"the run in {out} is at step {state.step}, beyond iterations = "
                            f"{config.iterations}; resume with iterations >= {state.step}")
    elif config.init_from:
        copied, fresh = warm_start(model, config.init_from, config.init_skip)
        if rank == 0:
            status(f"initialised {len(copied)} of {len(copied) + len(fresh)} tensors from {config.init_from}"
                   + (f"; fresh: {', '.join(fresh)}" if fresh else ""))

    sampler = _sampler(config, _training_images(config), rank)
    val_data = validation_set(embedded_images("val"), config.scale)
    loss_fn = _loss(config)
    has_dynamic = bool(dynamic_convs(model))
    network = _trained_network(model)
    if world > 1:
        network = nn.parallel.DistributedDataParallel(network)
    if config.compile:
        network = torch.compile(network)
    autocast = _autocast(config.precision)
    metadata = {"train_config": asdict(config), "world_size": world}
    # Created only now: a run refused while setting up (model, resume state, data) leaves nothing; one
    # that fails later (no space left) takes back what it wrote past its last saved state.
    with uncommitted_undone(out, resume, active=rank == 0) as state_saved:
        if rank == 0:
            write_settings(out, asdict(config))
        else:
            out.mkdir(parents=True, exist_ok=True)

        start = time.perf_counter()
        last_loss = math.nan
        bar = progress_bar(
            total=config.iterations, initial=state.step, quiet=not progress or rank != 0, unit="it", dynamic_ncols=True
        )
        pixels = 0
        tick = time.perf_counter()
        model.train()
        end = config.iterations if stop_at is None else min(stop_at, config.iterations)
        while state.step < end:
            if has_dynamic:
                set_temperature(
                    model,
                    temperature_schedule(
                        state.step / config.iterations, config.anneal_fraction,
                        config.temperature_start, config.temperature_end,
                    ),
                )
            inputs, targets = sampler.batch(state.step)
            with autocast():
                output = network(inputs)
            loss = loss_fn(output.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            state.step += 1
            last_loss = float(loss.detach())
            if not math.isfinite(last_loss):
                raise UserError(f"loss became {last_loss} at step {state.step}; lower the learning rate (--lr)")
            pixels += targets.numel() // targets.shape[1]
            if rank == 0:
                now = time.perf_counter()
                bar.set_postfix(loss=f"{last_loss:.4f}", mpx_s=f"{pixels / max(now - tick, 1e-9) / 1e6:.2f}")
                bar.update(1)
                record: dict[str, Any] = {"step": state.step, "loss": last_loss, "lr": scheduler.get_last_lr()[0]}
                if has_dynamic:
                    record["temperature"] = float(dynamic_convs(model)[0].attention.temperature)
                if state.step % config.val_every == 0 or state.step == config.iterations:
                    psnr = validation_psnr(model, val_data)
                    model.train()
                    record["val_psnr_y"] = psnr
                    if state.best_score is None or psnr > state.best_score:
                        state.best_score, state.best_step = psnr, state.step
                        save_checkpoint(best, model, metadata={**metadata, "step": state.step, "val_psnr_y": psnr})
                    bar.write(f"step {state.step}: loss {last_loss:.4f}, "
                              f"val Y-PSNR {psnr:.3f} dB (best {state.best_score:.3f})")
                if state.step % config.log_every == 0 or "val_psnr_y" in record:
                    append_record(out, record)
                if state.step % config.save_every == 0 or state.step == end:
                    save_training_state(last, model, optimizer, scheduler, state, metadata)
                    state_saved()
        bar.close()
    if world > 1:
        dist.barrier()
    return FitResult(out, state.step, state.best_score, state.best_step, last_loss, time.perf_counter() - start)


# Settings a resumed run may change; any other difference would silently train something else.
RESUMABLE_CHANGES = {"iterations", "val_every", "save_every", "log_every", "threads", "out", "init_from", "init_skip"}


def _check_same_run(saved_path: Path, config: TrainConfig) -> None:
    saved = read_settings(saved_path)
    if saved is None:
        return
    if not isinstance(saved, dict):
        raise UserError(f"run settings {saved_path} must be a JSON object; got {type(saved).__name__}")
    current = json.loads(json.dumps(asdict(config)))
    # A setting the saved run does not record was added to TrainConfig after the run started: it ran with its default.
    defaults = json.loads(json.dumps(asdict(TrainConfig())))
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise UserError(f"--resume with settings that differ from the run in {saved_path.parent}: {details}")


class _YOnly(nn.Module):
    """Runs a Y-channel model's ``forward_y`` as ``forward``, so DDP's hooks see the call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.model.forward_y(y)
