"""`python -m train ...`: the model zoo, training and evaluation commands."""
from __future__ import annotations

import click

from runtime.cli_options import NamedPath, Verbosity, verbosity_options
from runtime.errors import UserError, cli_errors

from .checkpoint import checkpoint_paths
from .complexity import human, measure
from .config import PROFILES, config_from
from .evaluate_cli import evaluate_command
from .fit import fit
from .models import SUPPORTED_SCALES, create_model, describe_model, list_models


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, evaluate and inspect the super-resolution models."""


@main.command("models")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=1),
              help="LR input height and width for the MAC count.")
@click.option("--scale", "scales", multiple=True, type=click.Choice([str(s) for s in SUPPORTED_SCALES]),
              help=f"Scales to list (repeatable). Default: {', '.join(map(str, SUPPORTED_SCALES))}.")
@click.option("--all", "include_tiny", is_flag=True, help="Include the tiny test variants.")
@cli_errors
@verbosity_options
def models_command(size: int, scales: tuple[str, ...], include_tiny: bool, verbosity: Verbosity) -> None:
    """List every registered model with its parameters and MACs at a SIZExSIZE LR input (the list
    is what this command prints, -q or not)."""
    scale_values = [int(s) for s in scales] or list(SUPPORTED_SCALES)
    names = list_models(include_tiny=include_tiny)
    click.echo(f"{'model':<18}{'scale':>6}{'params':>12}{'MACs @ ' + f'{size}x{size}':>20}  description")
    for name in names:
        for scale in scale_values:
            c = measure(create_model(name, scale=scale), size, size)
            click.echo(f"{name:<18}{'x' + str(scale):>6}{c.params:>12,}{human(c.macs, 'MAC'):>20}  "
                       f"{describe_model(name)}")


@main.command("fit")
@click.option("--profile", type=click.Choice(sorted(PROFILES)), default=None,
              help="Preset: 'quick' (minutes on a CPU), 'cpu' (the shipped weights' run), "
                   "'paper' (DyConvSR paper), 'srcnn' (dynamic-CNN paper recipe). Default: paper settings.")
@click.option("--config", "config_file", type=NamedPath(dir_okay=False), default=None,
              help="TOML file with TrainConfig keys; flags override it, it overrides the profile.")
@click.option("--model", default=None, help="Registry name (see `python -m train models`). Default: dyconvsr.")
@click.option("--scale", type=int, default=None, help="Upscaling factor: 2, 3 or 4. Default: 2.")
@click.option("--train-scales", default=None, help="Comma-separated scales mixed in one stream (DCNN), e.g. 2,3,4.")
@click.option("--data", multiple=True, type=NamedPath(file_okay=False), help="HR image folder (repeatable).")
@click.option("--embedded/--no-embedded", default=None, help="Also train on the scikit-image photos (default on).")
@click.option("--precrop", is_flag=True, default=None, help="Pre-crop 300x300 windows (step 150), cached on disk.")
# Ranges are checked by TrainConfig (train/fit.py SETTINGS), the same for flags and TOML files.
@click.option("--hr-patch", type=int, default=None, help="HR crop size (>= 8).")
@click.option("--batch-size", type=int, default=None, help="Patches per step (1..4096).")
@click.option("--iterations", type=int, default=None, help="Optimizer steps in total (>= 1).")
@click.option("--lr", type=float, default=None, help="Learning rate (> 0).")
@click.option("--seed", type=int, default=None, help="Seed of the batches and the init (>= 0).")
@click.option("--threads", type=int, default=None, help="torch threads, 0..256 (0 = default).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default=None,
              help="Forward pass precision: bf16 autocasts it (weights, loss, optimizer stay fp32), on CPUs with "
                   "AMX or AVX512-BF16 only. Default: fp32.")
@click.option("--compile/--no-compile", "compile", default=None,
              help="torch.compile the training forward (a minute of compiling first).")
@click.option("--val-every", type=int, default=None, help="Validate every N steps (>= 1).")
@click.option("--out", default=None, help="Run folder (last/best checkpoints, metrics.jsonl).")
@click.option("--init-from", default=None, type=NamedPath(dir_okay=False),
              help="Warm start from a checkpoint: every tensor with the same name and shape is copied "
                   "(e.g. weights/dyconvsr_x2 for an x3 run: all but the output convs). Ignored with --resume.")
@click.option("--init-skip", multiple=True, default=None,
              help="Tensor-name prefix kept fresh in a warm start (repeatable), e.g. spatial_attention: "
                   "a gate copied onto fresh features can saturate.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last saved state.")
@click.option("--stop-at", type=int, default=None,
              help="Stop this invocation after step N >= 1 (state saved; --resume continues).")
@cli_errors
@verbosity_options
def fit_command(profile, config_file, train_scales, resume, stop_at, verbosity: Verbosity, **flags) -> None:
    """Train a model. Run under `torchrun --nproc_per_node N -m train fit ...` for data parallelism."""
    if train_scales is not None:
        try:
            flags["train_scales"] = [int(s) for s in train_scales.split(",")]
        except ValueError:
            raise UserError(f"--train-scales must be comma-separated integers, e.g. 2,3,4; "
                            f"got {train_scales!r}") from None
    flags["data"] = list(flags["data"]) or None
    flags["init_skip"] = list(flags["init_skip"]) or None
    config = config_from(profile, config_file, flags)
    result = fit(config, resume=resume, progress=not verbosity.quiet, stop_at=stop_at)
    best = f"{result.best_psnr:.3f} dB at step {result.best_step}" if result.best_psnr is not None else "n/a"
    written = [str(result.out / n) for n in ("best", "last") if checkpoint_paths(result.out / n)[1].is_file()]
    verbosity.echo(f"trained {result.steps} steps in {result.seconds:.0f} s; best val Y-PSNR {best}; "
                   f"checkpoints: {' and '.join(written) or 'none'}")


main.add_command(evaluate_command)


@main.command("promote")
@click.argument("source")
@click.argument("destination")
@cli_errors
@verbosity_options
def promote_command(source: str, destination: str, verbosity: Verbosity) -> None:
    """Copy checkpoint SOURCE (e.g. runs/x/best) to DESTINATION (e.g. weights/dyconvsr_x2)."""
    from .checkpoint import copy_checkpoint

    path = copy_checkpoint(source, destination, metadata={"promoted_from": str(source)})  # write errors: UserError
    verbosity.echo(f"wrote {path} and its weights")


@main.command("import-checkpoint")
@click.argument("source", type=NamedPath(dir_okay=False))
@click.argument("out")
@click.option("--overwrite", is_flag=True, help="Replace OUT.safetensors / OUT.json if they exist.")
@cli_errors
@verbosity_options
def import_checkpoint_command(source: str, out: str, overwrite: bool, verbosity: Verbosity) -> None:
    """Import SOURCE, written by the DyConvSR authors' trainer (github doantienthongbku/DyConvSR), as
    checkpoint OUT (OUT.safetensors + OUT.json).

    SOURCE is a PyTorch Lightning .ckpt (state_dict keys 'model.*') or a plain state dict (.pth/.pt,
    or .safetensors). It is read with torch.load(weights_only=True): tensors and plain containers
    only; a file that needs arbitrary objects is refused, and so are files over 32 MiB (unpacked)
    and weights that are not float32/float16/bfloat16. The checkpoint is the 'dyconvsr_authors'
    network, which computes the authors' function exactly; then `python -m export OUT -o DIR` and
    `python -m runtime.check DIR`.
    """
    from .authors import import_authors_checkpoint

    result = import_authors_checkpoint(source, out, overwrite=overwrite)
    settings = ", ".join(f"{k}={v}" for k, v in result.kwargs.items())
    verbosity.echo(f"imported {result.tensors} tensors from {source} ({result.kind}) as {result.path}: {settings}")
