"""``python -m benchmarks.isa_table ARTIFACT...``: every INT8 file of the artifacts at every x86 level: the PSNR
and verdict export recorded (``notes.isa_proof``), and its median latency at 640x360 where the level can be
reached for timing (OpenVINO under ``ONEDNN_MAX_CPU_ISA``; ONNX Runtime and LiteRT only on this CPU: an emulated
CPU's time says nothing). Markdown on stdout, for docs/performance.md."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from runtime import cpu
from runtime.backends import for_kind
from runtime.cli_options import NamedPath
from runtime.errors import cli_errors
from runtime.manifest import read_manifest

from .markdown import fmt, md_table

CHILD = """
import json, sys, time
import numpy as np
from runtime.runners import RunnerConfig, make_runner
path, backend, shape = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = RunnerConfig(backend=backend, threads=2, precision="f32" if backend == "openvino" else None)
x = np.random.default_rng(0).random(shape, dtype=np.float32)
with make_runner(path, config) as runner:
    runner.infer(x)
    times = []
    for _ in range(5):
        start = time.perf_counter(); runner.infer(x); times.append((time.perf_counter() - start) * 1e3)
print(json.dumps(float(np.median(times))))
"""
SHAPE = [1, 3, 360, 640]


def median_ms(path: Path, backend: str, shape: list[int], cap: str | None) -> float | None:
    env = {**os.environ}
    env.pop(cpu.CAP_VARIABLE, None)
    if cap:
        env[cpu.CAP_VARIABLE] = cap
    done = subprocess.run([sys.executable, "-I", "-c", CHILD, str(path), backend, json.dumps(shape)],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def rows_of(folder: Path, timing: bool = True) -> list[tuple[str, ...]]:
    manifest = read_manifest(folder)
    rows = []
    native = cpu.native_isa()
    for variant in manifest.variants:
        proof = variant.notes.get("isa_proof")
        if variant.precision != "int8" or not isinstance(proof, dict):
            continue
        backend = for_kind(variant.kind).name
        shape = variant.fixed_input_shape or SHAPE
        quantisation = variant.notes.get("quantisation")
        recipe = (quantisation if isinstance(quantisation, dict) else variant.notes).get("weight_recipe", "-")
        for level in cpu.ISA_LEVELS:
            entry = proof["levels"].get(level)
            if entry is None:
                continue
            timed = timing and (backend == "openvino" or level == native)
            ms = median_ms(folder / variant.file, backend, shape, level if backend == "openvino" else None) \
                if timed else None
            verdict = {True: "pass", False: "FAIL", None: entry.get("reason", "not proven")}[entry["passed"]]
            rows.append((f"{manifest.model_name} x{manifest.scale}", variant.file, recipe, level, entry["how"],
                         fmt(entry.get("psnr_db"), 1), verdict, fmt(ms, 1) if timed else "-"))
        for file, reason in manifest.notes.get("skipped", {}).items():
            if ".int8." in file and file not in [v.file for v in manifest.variants]:
                rows.append((f"{manifest.model_name} x{manifest.scale}", file, "-", "-", "-", "-",
                             f"left out: {reason}", "-"))
    return list(dict.fromkeys(rows))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("artifacts", nargs=-1, required=True, type=NamedPath(file_okay=False, exists=True, path_type=Path))
@click.option("--no-timing", is_flag=True, help="Only what export recorded: no latency column figures.")
@cli_errors
def main(artifacts: tuple[Path, ...], no_timing: bool) -> None:
    """Print the INT8 x ISA table (model, file, recipe, level, how reached, PSNR dB, verdict, median ms)."""
    rows = [row for folder in artifacts for row in rows_of(folder, not no_timing)]
    click.echo(f"Measured on {cpu.describe_isa()}, 2 threads, input {SHAPE[3]}x{SHAPE[2]} (LiteRT: its fixed shape).")
    click.echo("")
    header = ("model", "file", "weights", "ISA level", "reached by", "PSNR dB", "verdict", "median ms")
    click.echo("\n".join(md_table(header, rows)))


if __name__ == "__main__":
    main(sys.argv[1:])
