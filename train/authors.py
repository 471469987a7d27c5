"""Weights from the DyConvSR authors' trainer (github doantienthongbku/DyConvSR) -> our checkpoints.

Their PyTorch Lightning module keeps the network as ``self.model``, so a ``.ckpt`` holds
``state_dict`` keys ``model.head.0.weight`` ...; a plain ``torch.save(model.state_dict())`` (``.pth``
/ ``.pt``) holds the same keys without the prefix. The key table below is written out from their
``model/arch.py`` layer by layer (not derived by renaming strings); shapes are checked against the
network they build before anything is copied.

The imported network is ``dyconvsr_authors``: their function exactly (no head activation, the
interleaved ``torch.cat((x,) * 4)`` skip, the reflect-padded blur, temperature fixed at 30, which
their ``update_temperature`` never changes).

Files are read with ``torch.load(weights_only=True)``: tensors and plain containers only, never
arbitrary unpickling; a file that needs more is refused (train/foreign.py: bounds, dtypes).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from runtime.errors import UserError

from .checkpoint import checkpoint_paths, save_checkpoint
from .foreign import check_plain_floats, read_foreign_file
from .models import SUPPORTED_SCALES, create_model

MODEL = "dyconvsr_authors"
LIGHTNING_PREFIX = "model."
# The settings that make our DyConvSR compute their function; written into the checkpoint's JSON.
COMPATIBILITY = {"head_activation": False, "skip_order": "interleaved", "blur_padding": "reflect", "temperature": 30.0}
# Their key (model/arch.py, model/modules/*.py) -> ours (train/models/dyconvsr.py).
KEY_MAP = {
    "head.0.weight": "head.weight",
    "head.0.bias": "head.bias",
    "body.0.attention.net.0.weight": "body.attention.fc1.weight",
    "body.0.attention.net.2.weight": "body.attention.fc2.weight",
    "body.0.weight": "body.weight",
    "body.0.bias": "body.bias",
    "tail.0.weight": "tail.weight",
    "tail.0.bias": "tail.bias",
    "hsb.0.weight": "high_frequency.weight",
    "hsb.0.bias": "high_frequency.bias",
    "spatial_attention.conv1.weight": "spatial_attention.conv.weight",
}
# Their channel count and kernel bank size are config values (num_feats, K); read them from the
# tensors, bounded so that a tampered file cannot make us build a huge network.
MAX_CHANNELS = 1024
MAX_KERNELS = 64


@dataclass
class ImportResult:
    path: Path  # the written checkpoint's JSON
    kind: str  # "lightning" or "state_dict"
    kwargs: dict[str, Any]
    tensors: int


def authors_state_dict(document: Any, source: str) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """(their network's state dict, "lightning" | "state_dict", what the Lightning file says of itself)."""
    if not isinstance(document, dict):
        raise UserError(f"{source} holds a {type(document).__name__}; expected a Lightning checkpoint or a state dict")
    if "state_dict" in document:
        state, kind = document["state_dict"], "lightning"
        info = {k: document[k] for k in ("epoch", "global_step", "pytorch-lightning_version")
                if isinstance(document.get(k), (int, str))}
    else:
        state, kind, info = document, "state_dict", {}
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise UserError(f"{source}: the state dict must map names to tensors")
    not_tensors = sorted(k for k, v in state.items() if not torch.is_tensor(v))
    if not_tensors:
        raise UserError(f"{source}: entries that are not tensors: {', '.join(not_tensors[:8])}")
    if kind == "lightning" or any(k.startswith(LIGHTNING_PREFIX) for k in state):
        outside = sorted(k for k in state if not k.startswith(LIGHTNING_PREFIX))
        if outside:
            raise UserError(f"{source}: unexpected keys outside the LightningModule's 'model.': {', '.join(outside)}")
        state = {k[len(LIGHTNING_PREFIX):]: v for k, v in state.items()}
    return state, kind, info


def infer_kwargs(state: dict[str, torch.Tensor], source: str) -> dict[str, Any]:
    """Scale, channels and kernel count of their network, read from the tensor shapes."""
    missing = sorted(k for k in ("head.0.weight", "body.0.weight", "tail.0.weight") if k not in state)
    if missing:
        raise UserError(f"{source}: missing keys {', '.join(missing)} (expected the layout of the authors' "
                        f"model/arch.py: {', '.join(KEY_MAP)})")
    channels = int(state["head.0.weight"].shape[0])
    kernels = int(state["body.0.weight"].shape[0])
    tail = int(state["tail.0.weight"].shape[0])
    scale = round((tail / 12) ** 0.5)
    if 12 * scale**2 != tail or scale not in SUPPORTED_SCALES:
        raise UserError(f"{source}: tail.0.weight has {tail} output channels; "
                        f"expected 12*s^2 for s in {', '.join(map(str, SUPPORTED_SCALES))} (48 at x2)")
    if not 1 <= channels <= MAX_CHANNELS or not 1 <= kernels <= MAX_KERNELS:
        raise UserError(f"{source}: {channels} channels and {kernels} kernels; "
                        f"allowed up to {MAX_CHANNELS} and {MAX_KERNELS}")
    return {"scale": scale, "channels": channels, "num_kernels": kernels, **COMPATIBILITY}


def import_authors_checkpoint(
    source: str | os.PathLike[str], out: str | os.PathLike[str], overwrite: bool = False
) -> ImportResult:
    """Convert the authors' ``.ckpt`` / ``.pth`` at ``source`` to ``out.safetensors`` + ``out.json``."""
    source = Path(source)
    # The very paths save_checkpoint writes (``OUT/`` and ``OUT.json`` name OUT.safetensors + OUT.json too).
    targets = checkpoint_paths(out)
    if any(os.path.lexists(t) and os.path.realpath(t) == os.path.realpath(source) for t in targets):
        raise UserError(f"{source} is the import's own output ({targets[1].name}); choose another OUT")
    if not overwrite and any(os.path.lexists(t) for t in targets):
        raise UserError(f"{targets[1]} or its weights already exist; pass --overwrite to replace them")
    read = read_foreign_file(source)
    state, kind, info = authors_state_dict(read.document, str(source))
    check_plain_floats(state, str(source))
    kwargs = infer_kwargs(state, str(source))
    model = create_model(MODEL, **kwargs)
    own = model.state_dict()
    missing = sorted(k for k in KEY_MAP if k not in state)
    extra = sorted(k for k in state if k not in KEY_MAP)
    if missing or extra:
        raise UserError(f"{source} does not have the authors' DyConvSR layout: missing {', '.join(missing) or 'none'}; "
                        f"unexpected {', '.join(extra) or 'none'}")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(own[KEY_MAP[k]].shape)})"
             for k in KEY_MAP if tuple(state[k].shape) != tuple(own[KEY_MAP[k]].shape)]
    if wrong:
        raise UserError(f"{source}: shapes do not fit a {kwargs['channels']}-channel x{kwargs['scale']} DyConvSR: "
                        + "; ".join(wrong))
    with torch.no_grad():
        for theirs, ours in KEY_MAP.items():
            own[ours].copy_(state[theirs].to(own[ours].dtype))
    if not all(torch.isfinite(own[ours]).all() for ours in KEY_MAP.values()):
        raise UserError(f"{source}: some weights are NaN or infinite")
    metadata = {
        "imported_from": {
            "path": str(source), "sha256": read.sha256, "kind": kind,
            "code": "github.com/doantienthongbku/DyConvSR",
            **info,
        },
        "compatibility": dict(COMPATIBILITY),
    }
    path = save_checkpoint(out, model, metadata=metadata)
    return ImportResult(path, kind, kwargs, len(KEY_MAP))
