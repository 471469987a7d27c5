"""Tensor files written elsewhere (the authors' ``.ckpt`` / ``.pth``, or a ``.safetensors``), read
within bounds and refused unless every tensor is plain data of a float type the network holds.

``torch.load`` allocates what a file's zip entries say they unpack to before a single key can be
checked: a 2 MB deflated entry asks for gigabytes. So the file is read once, whole, as a regular
file of at most :data:`MAX_FOREIGN_BYTES` (a FIFO is refused, not waited on), and a zip's
central directory (what each entry unpacks to) is summed against the same limit before
``torch.load`` sees it. The networks imported are tiny (the authors' x4 DyConvSR and its
optimizer state take under 2 MB), so the limit is far above any real file and far below harm.
A ``.safetensors`` file is parsed by safetensors from those bytes (its header cannot claim more
than the file holds); torch's legacy non-zip format (before torch 1.6) is refused, since its
pickle states storage sizes that are allocated before they are read.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load

from runtime.errors import UserError, first_line
from runtime.safefiles import read_regular

MAX_FOREIGN_BYTES = 32 << 20  # 32 MiB
ZIP_MAGIC = b"PK\x03\x04"  # what torch.load looks for to read a file as a zip (torch.save's format)
# What the imported network holds (float32); these cast to it exactly or as rounding only.
FLOAT_TYPES = (torch.float32, torch.float16, torch.bfloat16)


@dataclass
class ForeignFile:
    document: Any  # what torch.load (or safetensors) returned
    sha256: str  # of the bytes read


def read_foreign_file(path: str | os.PathLike[str]) -> ForeignFile:
    """``path``'s contents: a torch zip through ``torch.load(weights_only=True)`` (tensors and plain
    containers only), a ``.safetensors`` file through safetensors; both within :data:`MAX_FOREIGN_BYTES`."""
    source = Path(path)
    try:
        data = read_regular(source, str(source), MAX_FOREIGN_BYTES, "any checkpoint of these networks")
    except FileNotFoundError:
        raise UserError(f"{source}: no such file") from None
    digest = hashlib.sha256(data).hexdigest()
    if source.suffix == ".safetensors":
        try:
            return ForeignFile(load(data), digest)
        except (SafetensorError, ValueError, RuntimeError, TypeError) as exc:
            raise UserError(f"{source} is not a valid safetensors file: {first_line(exc)}") from None
    if not data.startswith(ZIP_MAGIC):
        raise UserError(f"{source} is not a PyTorch checkpoint torch.load can read (not the zip format "
                        "torch.save writes since torch 1.6; the legacy format is not read)")
    _check_unpacked_size(data, source)
    return ForeignFile(_torch_load(data, source), digest)


def _check_unpacked_size(data: bytes, source: Path) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise UserError(f"{source} is not a PyTorch checkpoint torch.load can read "
                        f"(its zip directory is broken: {first_line(exc)})") from None
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > MAX_FOREIGN_BYTES:
        raise UserError(f"{source} unpacks to {unpacked:,} bytes ({len(entries)} zip entries); "
                        f"any checkpoint of these networks fits in {MAX_FOREIGN_BYTES:,} bytes")


def _torch_load(data: bytes, source: Path) -> Any:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        needed = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if needed:
            raise UserError(f"{source} needs {needed.group(1)} to load, more than tensors and plain containers; "
                            "refusing to unpickle arbitrary objects") from None
        detail = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
        raise UserError(f"{source} is not a PyTorch checkpoint torch.load can read"
                        + (f" ({detail.group(1).strip()})" if detail else "")) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise UserError(f"{source} is not a PyTorch checkpoint torch.load can read: {first_line(exc)}") from None


def check_plain_floats(state: dict[str, torch.Tensor], source: str) -> None:
    """Refuse a tensor that is not dense data on the CPU (sparse, meta, quantised) or whose dtype is
    not one of :data:`FLOAT_TYPES` (bool, integers, complex, float64, float8 would be cast silently)."""
    allowed = ", ".join(str(t).removeprefix("torch.") for t in FLOAT_TYPES)
    for key, tensor in state.items():
        if tensor.is_quantized:
            problem = f"a quantised tensor ({tensor.dtype})"
        elif tensor.layout != torch.strided:
            problem = f"a {str(tensor.layout).removeprefix('torch.')} tensor, not a dense one"
        elif tensor.device.type != "cpu":
            problem = f"a {tensor.device.type} tensor without data" if tensor.is_meta else f"on {tensor.device}"
        elif tensor.dtype not in FLOAT_TYPES:
            problem = f"{str(tensor.dtype).removeprefix('torch.')}"
        else:
            continue
        raise UserError(f"{source}: {key} is {problem}; allowed: dense tensors of {allowed} "
                        "(cast to the network's float32)")
