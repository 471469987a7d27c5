"""`python -m export.bench`: latency of every lowering and precision, same process, interleaved.

A benchmark, not a test: batch 1, one input size, a fixed thread count; each round runs every
candidate once (so load from other processes hits all of them alike), medians over rounds.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np
import torch

from runtime.errors import cli_errors
from train.checkpoint import load_checkpoint
from train.models import create_model, set_formulation

from .lowering import STRATEGIES, lower
from .onnx_export import export_onnx
from .parity import ort_session
from .precision import to_fp16, to_int8
from .variants import model_spec


def candidates(model: torch.nn.Module, static: torch.nn.Module, folder: Path, threads: int,
               x: np.ndarray) -> dict[str, Callable[[], object]]:
    torch.set_num_threads(threads)
    tx = torch.from_numpy(x)
    runs: dict[str, Callable[[], object]] = {}
    for name, module in [
        ("torch grouped (as trained)", set_formulation(lower(model, "branches"), "grouped")),
        ("torch branches", lower(model, "branches")),
        ("torch stacked", lower(model, "stacked")),
        ("torch aggregate", lower(model, "aggregate")),
        ("torch static twin", static.eval()),
    ]:
        runs[name] = (lambda m: lambda: m(tx))(module)
    paths = {}
    for name, strategy in STRATEGIES.items():
        paths[f"ort {name}"] = folder / f"{name}.onnx"
        export_onnx(lower(model, name), model_spec(strategy.dynamic_batch, 1), paths[f"ort {name}"])
    paths["ort static twin"] = folder / "static.onnx"
    export_onnx(static, model_spec(True, 1), paths["ort static twin"])
    for base in ("stacked", "aggregate"):
        paths[f"ort {base} fp16"] = folder / f"{base}.fp16.onnx"
        to_fp16(paths[f"ort {base}"], paths[f"ort {base} fp16"])
    paths["ort stacked int8 (QDQ)"] = folder / "stacked.int8.onnx"
    to_int8(paths["ort stacked"], paths["ort stacked int8 (QDQ)"])
    for name, path in paths.items():
        session = ort_session(path, threads=threads)
        runs[name] = (lambda s: lambda: s.run(None, {"input": x}))(session)
    return runs


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False),
              help="Checkpoint to time (default: a freshly initialised dyconvsr x2; latency does not depend on weights).")
@click.option("--height", default=360, show_default=True)
@click.option("--width", default=640, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--rounds", default=15, show_default=True)
@cli_errors
def main(checkpoint: str | None, height: int, width: int, threads: int, rounds: int) -> None:
    """Median latency of PyTorch eager vs each ONNX Runtime lowering/precision vs the static twin."""
    torch.manual_seed(0)
    model = load_checkpoint(checkpoint).model if checkpoint else create_model("dyconvsr", scale=2)
    kwargs = {k: v for k, v in model.config.kwargs.items() if k != "dynamic"}
    static = create_model("dyconvsr_static", **kwargs) if model.config.name.startswith("dyconvsr") else None
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        runs = candidates(model, static, Path(tmp), threads, x)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for fn in runs.values():  # warm-up
            fn()
            fn()
        for _ in range(rounds):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - start) * 1e3)
    medians = {name: statistics.median(t) for name, t in times.items()}
    trained = medians["torch grouped (as trained)"]
    click.echo(f"batch 1, {width}x{height} -> x{model.scale}, {threads} threads, {rounds} interleaved rounds, medians")
    click.echo(f"{'candidate':<30}{'median ms':>10}{'p90 ms':>9}{'vs torch as trained':>21}")
    for name, median in medians.items():
        p90 = float(np.percentile(times[name], 90))
        click.echo(f"{name:<30}{median:>10.1f}{p90:>9.1f}{trained / median:>20.2f}x")


if __name__ == "__main__":
    main()
