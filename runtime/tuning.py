"""The fastest proven engine of an artifact on this machine.

``dyconvsr-check ARTIFACT --tune`` proves every variant here, times each one that passed through the
Upscaler (what ``runtime.infer`` runs) at 640x360, and stores the fastest in the user's cache
(``$DYCONVSR_CACHE``, else ``$XDG_CACHE_HOME/dyconvsr``, else ``~/.cache/dyconvsr``), keyed by the
artifact's manifest, the CPU (model, ISA flags, ``ONEDNN_MAX_CPU_ISA``), the GPUs, the engine libraries'
versions and the thread count. ``runtime.infer`` without ``--variant`` takes that record only when every
part of the key still matches; after a change of any of them it runs the manifest's default until the
next ``--tune``.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import cpu
from .errors import UserError
from .files import MAX_JSON_BYTES, atomic_write_bytes, json_bytes, read_json_document
from .manifest import MANIFEST_NAME
from .safefiles import read_regular

FORMAT = "dyconvsr-toolchain/tuning-v1"
TUNE_HW = (360, 640)  # the focus shape: 640x360 in, 720p out at x2
ENGINE_LIBRARIES = ("numpy", "onnxruntime", "onnxruntime-gpu", "openvino", "ai-edge-litert", "tensorrt")


@dataclass
class Tuning:
    """What ``--tune`` measured: the chosen variant, every candidate's median, and the key it holds for."""

    chosen: str
    median_ms: dict[str, float]
    shape: list[int]
    rounds: int
    key: dict
    created: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))

    def summary(self) -> str:
        ranked = sorted(self.median_ms.items(), key=lambda item: item[1])
        timings = ", ".join(f"{name} {ms:.1f} ms" for name, ms in ranked)
        return (f"fastest proven engine here: {self.chosen} (median of {self.rounds} at "
                f"{self.shape[1]}x{self.shape[0]}: {timings})")


def cache_folder() -> Path:
    if os.environ.get("DYCONVSR_CACHE"):
        return Path(os.environ["DYCONVSR_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or (Path(os.environ["HOME"]) / ".cache" if os.environ.get("HOME") else None)
    if base is None:
        raise UserError("no cache folder for the tuning record: set DYCONVSR_CACHE, XDG_CACHE_HOME or HOME")
    return Path(base) / "dyconvsr"


def machine_key(threads: int) -> dict:
    """What a measured choice depends on besides the artifact: CPU, ISA cap, GPUs, engine libraries, threads."""
    from .host import gpu_names, library_versions

    model, flags = cpu.cpu_info()
    return {"cpu": model, "isa": cpu.native_isa(), "flags": sorted(flags), "onednn_cap": cpu.onednn_cap(),
            "gpus": gpu_names(), "libraries": library_versions(ENGINE_LIBRARIES), "threads": threads}


def tuning_key(folder: Path, threads: int) -> dict:
    """Everything a stored choice holds for: the artifact's manifest (hashed once) and :func:`machine_key`."""
    manifest = read_regular(folder / MANIFEST_NAME, str(folder / MANIFEST_NAME), MAX_JSON_BYTES, "a manifest")
    return {"artifact_manifest_sha256": hashlib.sha256(manifest).hexdigest(), **machine_key(threads)}


def record_path(key: dict) -> Path:
    return cache_folder() / f"tuning-{key['artifact_manifest_sha256'][:32]}.json"


def tune(folder: Path, candidates: list[str], config, rounds: int = 5) -> Tuning:  # config: RunnerConfig
    """Time each variant file in ``candidates`` (proven here) through the Upscaler; store and return the choice."""
    from .upscaler import Upscaler

    if not candidates:
        raise UserError(f"{folder}: no variant passed here, nothing to tune")
    image = np.random.default_rng(0).random((*TUNE_HW, 3), dtype=np.float32)
    medians = {}
    for name in candidates:
        # The engine itself: whole at 640x360 (a fixed-shape file through its own fixed tiles). Under runtime.infer an
        # image larger than --tile is tiled by the artifact's fp32 tiling graphs whatever the variant.
        with Upscaler(folder, variant=name, config=config, tile=0) as upscaler:
            upscaler.upscale_array(image)  # warm-up (first-run allocation and compilation)
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                upscaler.upscale_array(image)
                samples.append((time.perf_counter() - start) * 1e3)
        medians[name] = float(np.median(samples))
    chosen = min(medians, key=medians.__getitem__)
    key = tuning_key(folder, config.threads)
    tuning = Tuning(chosen, medians, list(TUNE_HW), rounds, key)
    path = record_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json_bytes({"format": FORMAT, **asdict(tuning)}))
    except OSError as exc:
        raise UserError(f"cannot store the tuning record in {path.parent}: {exc.strerror or exc}") from None
    return tuning


def tuned_variant(folder: Path, threads: int) -> tuple[str | None, str]:
    """(the variant ``--tune`` chose for this artifact on this machine, why) or (None, why not)."""
    try:
        key = tuning_key(folder, threads)
        data = read_json_document(record_path(key), FORMAT, "tuning record")
    except FileNotFoundError:
        return None, "not tuned on this machine (dyconvsr-check ARTIFACT --tune measures it)"
    except (UserError, OSError) as exc:
        return None, f"tuning record unusable ({exc}); run dyconvsr-check ARTIFACT --tune"
    stored = data.get("key")
    if stored != key:
        changed = sorted(k for k in key if not isinstance(stored, dict) or stored.get(k) != key[k])
        return None, f"tuned under another {', '.join(changed)}; run dyconvsr-check ARTIFACT --tune again"
    chosen = data.get("chosen")
    if not isinstance(chosen, str):
        return None, "tuning record names no variant; run dyconvsr-check ARTIFACT --tune"
    return chosen, f"tuned here {data.get('created', '?')}: " + ", ".join(
        f"{name} {ms:.1f} ms" for name, ms in sorted(data.get("median_ms", {}).items(), key=lambda i: i[1])
        if isinstance(ms, (int, float)))
