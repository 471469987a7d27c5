"""Prove an INT8 engine on the x86 levels below this CPU's: the same parity, run in a child
process that sees a smaller CPU.

INT8 kernels differ by ISA (u8 x s8 pairs saturate in 16 bits without VNNI), so a file proven on an AMX
machine may be wrong on an AVX2 laptop. Each engine family is lowered the way it honours:

- OpenVINO (oneDNN): ``ONEDNN_MAX_CPU_ISA=<level>`` for every level from AVX2 up to this CPU's.
- ONNX Runtime (MLAS) and LiteRT (XNNPACK) ignore that cap and read CPUID, so they are run under
  qemu-user emulating a Haswell (AVX2, FMA, no AVX-512, no VNNI) where ``qemu-x86_64`` is installed
  (Debian: ``apt install qemu-user``); qemu's TCG has no AVX-512, so AVX-512 without VNNI cannot be
  emulated for them. Where qemu is absent that level is recorded as not proven, with the reason.

Every child is isolated (``python -I``: neither the working folder nor PYTHONPATH comes first on its path)
and is given the engine, its references and its tolerance on stdin as JSON; it answers with the parity.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import cpu
from .manifest import Parity
from .parity import engine_parity
from .runners import RunnerConfig

EMULATED_CPU = ("Haswell-v4", "AVX2")  # qemu -cpu model, the level it stands for
CHILD_TIMEOUT_S = 600


@dataclass
class LevelProof:
    """One engine at one ISA level: how the level was reached, and the parity there (None: not proven)."""

    level: str
    how: str
    parity: dict | None = None
    reason: str = ""

    @property
    def passed(self) -> bool | None:
        return None if self.parity is None else bool(self.parity["passed"])


def qemu() -> str | None:
    """The qemu-user binary that can emulate a smaller x86 CPU for this process, or None."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    return shutil.which("qemu-x86_64")


def top_level(backend: str) -> str | None:
    """The level ``backend`` runs at in this process: oneDNN's (cap included) for OpenVINO, else the CPU's."""
    return cpu.onednn_isa() if backend == "openvino" else cpu.native_isa()


def plan(backend: str) -> list[tuple[str, str, list[str], dict[str, str]]]:
    """(level, how, command prefix, extra environment) for every level below this CPU's that ``backend`` can be
    run at here; this CPU's own level is the parent's own parity and is not repeated."""
    below = cpu.levels_up_to(top_level(backend))[:-1]
    child = [sys.executable, "-I", "-m", "runtime.isa_proof"]
    if backend == "openvino":
        return [(level, f"{cpu.CAP_VARIABLE}={level}", child, {cpu.CAP_VARIABLE: level}) for level in below]
    emulator = qemu()
    level = EMULATED_CPU[1]
    if level not in below:
        return []
    if emulator is None:
        return [(level, "qemu-user (not installed: apt install qemu-user)", [], {})]
    return [(level, f"qemu-x86_64 -cpu {EMULATED_CPU[0]}", [emulator, "-cpu", EMULATED_CPU[0], *child], {})]


def prove_levels(engine: str | Path, backend: str, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
                 tolerance: dict[str, float], batch: int | None, config: RunnerConfig) -> list[LevelProof]:
    """The parity of ``engine`` at every level :func:`plan` reaches for ``backend``, on these references."""
    steps = plan(backend)
    if not any(command for _, _, command, _ in steps):
        return [_prove_one(level, how, command, extra, {}) for level, how, command, extra in steps]
    with tempfile.TemporaryDirectory(prefix="isa-proof-") as tmp:
        references = []
        for j, (x, y) in enumerate(zip(inputs, outputs, strict=True)):
            pair = [str(Path(tmp) / f"input_{j}.npy"), str(Path(tmp) / f"output_{j}.npy")]
            np.save(pair[0], x)
            np.save(pair[1], y)
            references.append(pair)
        request = {"engine": str(Path(engine).resolve()), "references": references, "tolerance": tolerance,
                   "batch": batch,
                   "config": {"backend": config.backend, "provider": config.provider, "strict": config.strict,
                              "threads": config.threads, "precision": config.precision}}
        return [_prove_one(level, how, command, extra, request) for level, how, command, extra in steps]


def _prove_one(level: str, how: str, command: list[str], extra: dict[str, str], request: dict) -> LevelProof:
    if not command:
        return LevelProof(level, how, reason="not proven: the emulator is not installed")
    env = {**os.environ, **extra}
    env.pop("PYTHONPATH", None)
    try:
        done = subprocess.run(command, input=json.dumps(request), capture_output=True, text=True, env=env,
                              timeout=CHILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return LevelProof(level, how, reason=f"not proven: no answer within {CHILD_TIMEOUT_S} s")
    answer = _last_json_line(done.stdout)
    if done.returncode != 0 or answer is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return LevelProof(level, how, reason=f"not proven: the child failed ({tail[:200]})")
    if "error" in answer:
        return LevelProof(level, how, reason=f"not proven: {answer['error']}")
    return LevelProof(level, how, parity=answer["parity"])


def record(native: Parity, proofs: Sequence[LevelProof], backend: str) -> dict[str, object]:
    """The manifest's ``notes["isa_proof"]``: the parity per level (this CPU's own included), and how reached."""
    levels: dict[str, object] = {}
    level = top_level(backend)
    if level is not None:
        levels[level] = {"how": "this CPU", "psnr_db": native.psnr_db, "max_abs_diff": native.max_abs_diff,
                         "passed": bool(native)}
    for proof in proofs:
        p = proof.parity
        levels[proof.level] = ({"how": proof.how, "reason": proof.reason, "passed": None} if p is None else
                               {"how": proof.how, "psnr_db": p["psnr_db"], "max_abs_diff": p["max_abs_diff"],
                                "passed": p["passed"]})
    return {"cpu": cpu.cpu_info()[0], "levels": levels}


def failure(proofs: Sequence[LevelProof]) -> str | None:
    """Why the engine does not hold on every level it was run at (one line), or None when it does."""
    failed = [proof for proof in proofs if proof.passed is False]
    if not failed:
        return None
    return "; ".join(f"{p.level} ({p.how}): PSNR {_db(p.parity['psnr_db'])} dB, max|diff| "
                     f"{p.parity['max_abs_diff']:.2e}" for p in failed if p.parity is not None)


def _db(value: float | None) -> str:
    return "inf" if value is None else f"{value:.1f}"


def _last_json_line(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _child() -> None:
    """Read one request on stdin, print one JSON line: {"parity": ...} or {"error": ...}."""
    from .errors import UserError, quiet_libraries

    request = json.loads(sys.stdin.read())
    try:
        inputs = [np.load(a, allow_pickle=False) for a, _ in request["references"]]
        outputs = [np.load(b, allow_pickle=False) for _, b in request["references"]]
        with quiet_libraries():
            parity = engine_parity(request["engine"], inputs, outputs, request["tolerance"], request["batch"],
                                   RunnerConfig(**request["config"]))
    except UserError as exc:
        print(json.dumps({"error": str(exc).splitlines()[0]}))
        return
    result = asdict(parity)
    result["passed"] = bool(parity)
    print(json.dumps({"parity": result}, default=float), flush=True)


if __name__ == "__main__":
    _child()
