"""`python -m export.bench`: latency of every lowering, fusion and precision, same process, interleaved,
and the export issue's performance targets as ratios.

A benchmark, not a test: batch 1, one input size, a fixed thread count; each round runs every
candidate once (so load from other processes hits all of them alike), medians over rounds.
With ``--quality`` (and a trained ``--checkpoint``) the reduced-precision rows also get their
Y-PSNR loss against fp32 on the held-out images (train/evaluate.py's protocol).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from runtime.errors import cli_errors
from train.checkpoint import load_checkpoint
from train.models import create_model, set_formulation

from .fusion import fuse_pixel_shuffle
from .lowering import STRATEGIES, lower
from .onnx_export import export_onnx
from .parity import ort_session
from .precision import to_fp16, to_int8
from .variants import model_spec

Run = Callable[[np.ndarray], np.ndarray]
MAX_PSNR_LOSS_DB = 0.1
GAP_S = 0.05


@dataclass
class Timing:
    name: str
    median_ms: float
    p90_ms: float


def _torch_run(module: torch.nn.Module) -> Run:
    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()
    return run


def _ort_run(path: Path, threads: int) -> Run:
    session = ort_session(path, threads=threads, spin=False)
    return lambda x: session.run(None, {"input": x})[0]


class _OpenVino:
    """OpenVINO CPU on one model, compiled per input shape (static shapes, like a deployment would)."""

    def __init__(self, model, precision: str, threads: int) -> None:  # noqa: ANN001 - path or openvino.Model
        import openvino as ov

        self.core = ov.Core()
        self.model = self.core.read_model(str(model)) if isinstance(model, (str, Path)) else model
        self.config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision,
                       "PERFORMANCE_HINT": "LATENCY"}
        self.requests: dict[tuple[int, ...], object] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape not in self.requests:
            model = self.model.clone()
            model.reshape({model.inputs[0]: list(x.shape)})
            self.requests[x.shape] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return np.array(self.requests[x.shape].infer({0: x})[0])


def candidates(model: torch.nn.Module, static: torch.nn.Module, folder: Path, threads: int,
               openvino: bool = True) -> dict[str, Run]:
    torch.set_num_threads(threads)
    fused, static_fused = fuse_pixel_shuffle(model), fuse_pixel_shuffle(static)
    runs: dict[str, Run] = {
        "torch grouped (as trained)": _torch_run(set_formulation(lower(model, "branches"), "grouped")),
        **{f"torch {name}": _torch_run(lower(model, name)) for name in STRATEGIES},
        "torch aggregate fused": _torch_run(lower(fused, "aggregate")),
        "torch static twin": _torch_run(static.eval()),
    }
    paths: dict[str, Path] = {}
    for name, strategy in STRATEGIES.items():
        for label, source in ((name, model), (f"{name} fused", fused)):
            paths[f"ort {label}"] = folder / f"{label.replace(' ', '.')}.onnx"
            export_onnx(lower(source, name), model_spec(strategy.dynamic_batch, 1), paths[f"ort {label}"])
    for label, source in (("static twin", static), ("static twin fused", static_fused)):
        paths[f"ort {label}"] = folder / f"{label.replace(' ', '.')}.onnx"
        export_onnx(source, model_spec(True, 1), paths[f"ort {label}"])
    paths["ort aggregate fused fp16"] = folder / "aggregate.fused.fp16.onnx"
    to_fp16(paths["ort aggregate fused"], paths["ort aggregate fused fp16"])
    paths["ort stacked fused int8 (QDQ)"] = folder / "stacked.fused.int8.onnx"
    to_int8(paths["ort stacked fused"], paths["ort stacked fused int8 (QDQ)"])
    runs.update({name: _ort_run(path, threads) for name, path in paths.items()})
    if openvino:
        from .openvino_int8 import quantize_openvino

        source = paths["ort aggregate fused"]
        runs["openvino f32 aggregate fused"] = _OpenVino(source, "f32", threads)
        runs["openvino bf16 aggregate fused"] = _OpenVino(source, "bf16", threads)
        runs["openvino int8 (NNCF) aggregate fused"] = _OpenVino(quantize_openvino(source), "f32", threads)
    return runs


def measure(runs: dict[str, Run], x: np.ndarray, rounds: int) -> dict[str, Timing]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up (and OpenVINO's compilation for this shape)
        run(x)
        run(x)
    for _ in range(rounds):
        for name, run in runs.items():
            # Three thread pools (torch, ONNX Runtime, OpenVINO) share two cores: let the last
            # one's threads go idle so they do not steal the next candidate's cores.
            time.sleep(GAP_S)
            start = time.perf_counter()
            run(x)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {n: Timing(n, statistics.median(t), float(np.percentile(t, 90))) for n, t in times.items()}


def y_psnr(run: Run, scale: int) -> float:
    """Mean Y-PSNR on the held-out embedded images, train/evaluate.py's protocol."""
    from runtime.metrics import score_pair
    from train.evaluate import embedded_benchmark, make_lr, modcrop

    scores = []
    for _, hr in embedded_benchmark("val").images:
        hr = modcrop(hr, scale)
        lr = (make_lr(hr, scale).astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        out = run(np.ascontiguousarray(lr))[0].transpose(1, 2, 0).astype(np.float64)
        scores.append(score_pair(np.floor(np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), hr, border=scale).psnr_y)
    return float(np.mean(scores))


# (reduced-precision row, its fp32 partner on the same backend)
REDUCED = (
    ("openvino bf16 aggregate fused", "openvino f32 aggregate fused"),
    ("openvino int8 (NNCF) aggregate fused", "openvino f32 aggregate fused"),
    ("ort stacked fused int8 (QDQ)", "ort stacked fused"),
)


@dataclass
class Target:
    claim: str
    value: float
    threshold: float
    at_most: bool
    detail: str

    @property
    def holds(self) -> bool:
        return self.value <= self.threshold if self.at_most else self.value >= self.threshold


def targets(t: dict[str, Timing], quality: dict[str, float]) -> list[Target]:
    ms = {k: v.median_ms for k, v in t.items()}
    trained = ms["torch grouped (as trained)"]
    eager = min((k for k in ms if k.startswith("torch") and "static twin" not in k), key=ms.get)
    ort = [k for k in ms if k.startswith("ort") and "static twin" not in k]
    ort_fp32 = [k for k in ort if "fp16" not in k and "int8" not in k]
    best, fastest = min(ort_fp32, key=ms.get), min(ort, key=ms.get)
    twin = min(("ort static twin", "ort static twin fused"), key=ms.get)
    safe = min(("ort branches fused", "ort stacked fused"), key=ms.get)
    found = [
        Target("default model.onnx (branches, fused) vs torch as trained", trained / ms["ort branches fused"], 1.5, False,
               "ort branches fused"),
        Target("fastest ORT variant vs torch as trained", trained / ms[fastest], 2.0, False, fastest),
        Target("best ORT fp32 vs fastest eager formulation", ms[eager] / ms[best], 1.3, False, f"{best} vs {eager}"),
        Target("best ORT lowering / ORT static twin", ms[best] / ms[twin], 1.05, True, f"{best} vs {twin}"),
        Target("dynamic-batch TRT-safe lowering / ORT static twin", ms[safe] / ms[twin], 1.2, True, f"{safe} vs {twin}"),
    ]
    for low, base in REDUCED:
        if low in ms and base in ms:
            loss = quality.get(base, float("nan")) - quality.get(low, float("nan"))
            ok = not quality or loss <= MAX_PSNR_LOSS_DB
            loss_text = f", {loss:+.3f} dB Y-PSNR lost" if quality else ", quality not measured (--quality)"
            found.append(Target(f"{low} vs {base}", ms[base] / ms[low], 1.5 if ok else float("inf"), False,
                                f"same backend{loss_text}"))
    return found


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False),
              help="Checkpoint to time (default: a freshly initialised dyconvsr x2; latency does not depend on weights).")
@click.option("--height", default=360, show_default=True)
@click.option("--width", default=640, show_default=True)
@click.option("--threads", default=2, show_default=True)
@click.option("--rounds", default=15, show_default=True)
@click.option("--openvino/--no-openvino", default=True, show_default=True, help="Time the OpenVINO rows too.")
@click.option("--quality", is_flag=True, help="Y-PSNR of the reduced-precision rows and their fp32 partners "
              "on the held-out images (use a trained --checkpoint).")
@cli_errors
def main(checkpoint: str | None, height: int, width: int, threads: int, rounds: int, openvino: bool,
         quality: bool) -> None:
    """Median latency of PyTorch eager vs each ONNX Runtime / OpenVINO lowering, fusion and precision."""
    torch.manual_seed(0)
    model = load_checkpoint(checkpoint).model if checkpoint else create_model("dyconvsr", scale=2)
    kwargs = {k: v for k, v in model.config.kwargs.items() if k != "dynamic"}
    static = create_model("dyconvsr_static", **kwargs)
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        runs = candidates(model.eval(), static, Path(tmp), threads, openvino)
        scores = {n: y_psnr(runs[n], model.scale) for pair in REDUCED for n in pair if n in runs} if quality else {}
        timings = measure(runs, x, rounds)
    trained = timings["torch grouped (as trained)"].median_ms
    click.echo(f"batch 1, {width}x{height} -> x{model.scale}, {threads} threads, {rounds} interleaved rounds, medians")
    click.echo(f"{'candidate':<40}{'median ms':>10}{'p90 ms':>9}{'vs torch as trained':>21}{'Y-PSNR':>9}")
    for name, t in timings.items():
        psnr = f"{scores[name]:9.3f}" if name in scores else ""
        click.echo(f"{name:<40}{t.median_ms:>10.1f}{t.p90_ms:>9.1f}{trained / t.median_ms:>20.2f}x{psnr}")
    click.echo("\ntargets (ratios of medians from the interleaved rounds above)")
    for target in targets(timings, scores):
        sign = "<=" if target.at_most else ">="
        verdict = "holds" if target.holds else "NOT met"
        click.echo(f"  {target.claim:<62}{target.value:6.2f}x ({sign} {target.threshold:g})  {verdict}  [{target.detail}]")


if __name__ == "__main__":
    main()
