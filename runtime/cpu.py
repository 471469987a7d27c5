"""What this CPU computes with: its model name and flags, its x86 ISA level, and the level each engine
really uses once ``ONEDNN_MAX_CPU_ISA`` caps it.

Which engines honour the cap (measured, docs/performance.md "INT8 across ISAs"): OpenVINO's CPU plugin
(oneDNN) does; ONNX Runtime's CPU EP (MLAS) and LiteRT's XNNPACK do not: they read CPUID themselves,
so a lower ISA is reached for them only by emulating a CPU (``runtime.isa_proof``, qemu-user).
"""
from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path

# x86 levels that decide which fp32/bf16/int8 kernels an engine picks, lowest first, spelled as oneDNN's
# ONEDNN_MAX_CPU_ISA values. AVX2 and AVX512_CORE multiply u8 x s8 pairs in 16 bits (vpmaddubsw, which
# saturates); VNNI and AMX accumulate in 32 bits.
ISA_LEVELS = ("AVX2", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16", "AVX512_CORE_AMX")
# oneDNN's other spellings of the same caps (newer releases name the AVX10 levels).
_CAP_ALIASES = {"AVX2_VNNI": "AVX2", "AVX2_VNNI_2": "AVX2", "AVX512_CORE_FP16": "AVX512_CORE_BF16",
                "AVX10_1_512": "AVX512_CORE_BF16", "AVX10_1_512_AMX": "AVX512_CORE_AMX",
                "AVX10_1_512_AMX_FP16": "AVX512_CORE_AMX", "AVX10_2_512": "AVX512_CORE_BF16",
                "AVX10_2_512_AMX_2": "AVX512_CORE_AMX", "ALL": "AVX512_CORE_AMX"}
CAP_VARIABLE = "ONEDNN_MAX_CPU_ISA"
BF16_LEVEL = "AVX512_CORE_BF16"


@cache
def cpu_info() -> tuple[str, frozenset[str]]:
    """(model name, flags) from /proc/cpuinfo; (the machine's architecture, no flags) where it cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    model, flags = platform.machine(), set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Hardware", "Model") and model == platform.machine():
            model = value.strip()
        elif key in ("flags", "Features"):
            flags.update(value.split())
    return model, frozenset(flags)


def native_isa(flags: frozenset[str] | None = None) -> str | None:
    """The highest of :data:`ISA_LEVELS` this CPU has; None on a CPU below AVX2 or not x86."""
    flags = cpu_info()[1] if flags is None else flags
    if {"amx_tile", "amx_int8", "amx_bf16"} <= flags:
        return "AVX512_CORE_AMX"
    if "avx512f" in flags and "avx512_bf16" in flags and "avx512_vnni" in flags:
        return "AVX512_CORE_BF16"
    if "avx512f" in flags and "avx512_vnni" in flags:
        return "AVX512_CORE_VNNI"
    if "avx512f" in flags:
        return "AVX512_CORE"
    return "AVX2" if "avx2" in flags else None


def onednn_cap() -> str | None:
    """``ONEDNN_MAX_CPU_ISA`` (or its older name DNNL_MAX_CPU_ISA) as one of :data:`ISA_LEVELS`; None when unset.
    A value below AVX2 counts as AVX2 (the lowest level this project tells apart)."""
    value = (os.environ.get(CAP_VARIABLE) or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    if not value:
        return None
    value = _CAP_ALIASES.get(value, value)
    return value if value in ISA_LEVELS else "AVX2"


def onednn_isa() -> str | None:
    """The level oneDNN-based engines (OpenVINO CPU) run at here: this CPU's, lowered by the cap."""
    native, cap = native_isa(), onednn_cap()
    if native is None or cap is None:
        return native
    return min(native, cap, key=ISA_LEVELS.index)


def at_least(level: str | None, wanted: str) -> bool:
    return level is not None and ISA_LEVELS.index(level) >= ISA_LEVELS.index(wanted)


def levels_up_to(level: str | None) -> list[str]:
    """Every level from AVX2 up to ``level`` (what this CPU can stand in for under the cap)."""
    return [] if level is None else list(ISA_LEVELS[: ISA_LEVELS.index(level) + 1])


def describe_isa() -> str:
    """One line: the CPU, its level, and the level oneDNN runs at when the cap lowers it."""
    model, _ = cpu_info()
    native, effective = native_isa(), onednn_isa()
    text = f"{model}, ISA {native or 'below AVX2'}"
    if effective != native:
        text += f" (oneDNN capped to {effective} by {CAP_VARIABLE}; ONNX Runtime and LiteRT ignore the cap)"
    return text


_ISA_TAGS = {"AVX512_CORE_AMX": "amx", "AVX512_CORE_BF16": "avx512-vnni-bf16", "AVX512_CORE_VNNI": "avx512-vnni",
             "AVX512_CORE": "avx512", "AVX2": "avx2"}
_FAMILIES = ("xeon", "epyc", "core", "ryzen", "threadripper", "graviton", "neoverse", "cortex", "apple")


def machine_kind(model: str | None = None, flags: frozenset[str] | None = None) -> str:
    """A short stable name of this kind of CPU for per-machine reports: vendor, family, ISA level
    ("intel-xeon-amx", "amd-epyc-avx512-vnni-bf16"); the architecture where the model says nothing."""
    info_model, info_flags = cpu_info()
    model = (info_model if model is None else model).lower()
    flags = info_flags if flags is None else flags
    vendor = next((v for v in ("intel", "amd", "arm", "apple", "ampere") if v in model), platform.machine().lower())
    family = next((f for f in _FAMILIES if f in model), "")
    level = native_isa(flags)
    return "-".join(part for part in (vendor, family, _ISA_TAGS.get(level or "", "")) if part)
