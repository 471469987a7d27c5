"""`python -m export [CHECKPOINT...]`: checkpoints -> artifact folders, with a one-screen summary."""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import click

from runtime.catalogue import OPENVINO_PRECISIONS, REDUCED_ONNX_PRECISIONS
from runtime.cli_options import NamedPath, Verbosity, verbosity_options
from runtime.errors import UserError, cli_errors, display, printable
from runtime.manifest import Manifest
from runtime.progress import status
from train.checkpoint import checkpoint_paths
from train.shipped import shipped_checkpoint, shipped_checkpoints

from .artifact import ExportOptions, artifact_name, export_artifact, resolve_source
from .lowering import STRATEGIES, STRATEGY_CHOICES
from .mobile import check_mobile_shape
from .recipe import MAX_OPSET, MIN_OPSET
from .references import REFERENCE_SPECS

# Option ranges, checked in main() so a bad value is one line like every other error.
MAX_BATCH = 64
MAX_FIXED_SIDE = 4096
# The export recipe: every option left out keeps its field of this.
RECIPE = ExportOptions()


def _check_range(option: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise UserError(f"{option} must be {low}..{high}; got {value}")


def check_options(
    batch: int, fixed_shapes: tuple[tuple[int, int], ...], opset: int, strategies: list[str]
) -> None:
    """Refuse option values no export can succeed with, before any checkpoint is read."""
    _check_range("--batch", batch, 1, MAX_BATCH)
    _check_range("--opset", opset, MIN_OPSET, MAX_OPSET)
    for height, width in fixed_shapes:
        _check_range("--fixed H", height, 1, MAX_FIXED_SIDE)
        _check_range("--fixed W", width, 1, MAX_FIXED_SIDE)
    # A fixed-batch lowering (aggregate, perhaps chosen by auto) is proven on reference inputs
    # whose batch is a multiple of --batch: with none, parity would have nothing to run.
    fixed_batch = any(s == "auto" or not STRATEGIES[s].dynamic_batch for s in strategies)
    batches = sorted({len(spec.images) for spec in REFERENCE_SPECS})
    if fixed_batch and not fixed_shapes and all(b % batch for b in batches):
        raise UserError(f"--batch {batch}: the reference inputs have batch "
                        f"{' and '.join(map(str, batches))}, none a multiple of {batch}; give --fixed H W "
                        f"(a batch-{batch} reference) or a batch dividing {max(batches)}")


def checkpoint_sources(arguments: tuple[str, ...]) -> list[Path]:
    """CHECKPOINT arguments as paths: a checkpoint on disk as given, else the name of a shipped
    one (``dyconvsr_x2``); with none, every shipped checkpoint (train/shipped.py: from the
    installed package, wherever the command runs)."""
    if not arguments:
        return shipped_checkpoints()
    sources = []
    for argument in arguments:
        shipped = None if checkpoint_paths(argument)[1].is_file() else shipped_checkpoint(argument)
        sources.append(shipped or Path(argument))
    return sources


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("checkpoints", nargs=-1, type=NamedPath(dir_okay=False))
@click.option("-o", "--out", "out_root", default="artifacts", show_default=True, type=NamedPath(file_okay=False),
              help="Folder that receives one artifact folder per checkpoint.")
@click.option("--strategy", default=RECIPE.strategy, show_default=True, type=click.Choice(list(STRATEGY_CHOICES)),
              help="Lowering of the dynamic conv used for model.onnx; 'auto' times every lowering that "
                   f"passes parity on ONNX Runtime CPU (batch {RECIPE.auto_shape[0]}, "
                   f"{RECIPE.auto_shape[3]}x{RECIPE.auto_shape[2]}, {RECIPE.auto_threads} threads) and keeps the "
                   "fastest (usually 'aggregate': computed kernel, batch 1). Pass 'branches' for a dynamic-batch, "
                   "constant-weight model.onnx (TensorRT < 8.5, INT8). INT8 and TensorRT plans are always "
                   "built from a constant-weight lowering.")
@click.option("--also", "extra", multiple=True, type=click.Choice(list(STRATEGIES)),
              help="Further strategies written as model.<strategy>.onnx (repeatable). "
                   f"Default: {', '.join(RECIPE.extra_strategies)} (besides the one in model.onnx).")
@click.option("--only-default", is_flag=True, help="Write no model.<strategy>.onnx besides model.onnx.")
@click.option("--batch", default=RECIPE.batch, show_default=True, type=int,
              help=f"Fixed batch (1..{MAX_BATCH}) of the strategies without a dynamic batch (aggregate).")
@click.option("--fixed", "fixed_shapes", multiple=True, type=(int, int), metavar="H W",
              help=f"Also write a fixed-shape variant for an H x W input, each 1..{MAX_FIXED_SIDE} "
                   "(repeatable).")
@click.option("--precision", "precisions", multiple=True, type=click.Choice(list(REDUCED_ONNX_PRECISIONS)),
              help=f"Reduced-precision ONNX variants (repeatable). Default: {', '.join(RECIPE.precisions)}.")
@click.option("--no-reduced", is_flag=True, help="No fp16/int8 variants.")
@click.option("--no-ort", is_flag=True, help="No model.ort (ONNX Runtime Mobile format).")
@click.option("--no-tensorrt", is_flag=True, help="Do not try to build TensorRT plans.")
@click.option("--mobile-shape", type=(int, int), default=None, metavar="H W",
              help="The fixed LR tile shape (even H and W) of the mobile-lowering files: the LiteRT .tflite "
                   "files (fp32, fp16, int8) and their fixed-size tiling graphs, the ORT Mobile .ort + "
                   "required_operators config, the mobile ONNX, its usability report and the Core ML "
                   f".mlpackage. Images of any size run through tiles of this shape. Default: "
                   f"{' '.join(map(str, RECIPE.mobile_shape or ()))}. (--fixed H W, which writes fixed-shape "
                   "ONNX variants, also adds LiteRT files at each even H W with --batch 1.)")
@click.option("--no-mobile", is_flag=True,
              help="No mobile-lowering files at --mobile-shape (mobile ONNX, .ort, usability report, Core ML, "
                   "LiteRT).")
@click.option("--no-litert", is_flag=True, help="No LiteRT .tflite files (written where litert-torch is installed).")
@click.option("--no-coreml", is_flag=True,
              help="No Core ML .mlpackage (written only where coremltools works: numpy < 2.4).")
@click.option("--openvino", "openvino", multiple=True, type=click.Choice(list(OPENVINO_PRECISIONS)),
              help="OpenVINO IR variants of model.onnx (repeatable): fp32 -> model.openvino.xml, bf16 -> "
                   "model.openvino.bf16.xml (bf16 inference stored in the IR; needs a CPU with AVX512-BF16 or AMX "
                   "to be proven), int8 (NNCF post-training quantisation, export/openvino_ir.py) -> "
                   f"model.openvino.int8.xml. Default: {', '.join(RECIPE.openvino)}, where openvino (and nncf) "
                   "are installed; skipped with the reason otherwise.")
@click.option("--no-openvino", is_flag=True, help="No OpenVINO IR variants.")
@click.option("--opset", default=RECIPE.opset, show_default=True, type=int,
              help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET}.")
@click.option("--no-tiling", is_flag=True, help="Skip the tiling split (tiling/*.onnx).")
@click.option("--no-fuse-shuffle", is_flag=True,
              help="Keep DyConvSR's two pixel shuffles instead of fusing them into one (export/fusion.py).")
@cli_errors
@verbosity_options
def main(checkpoints: tuple[str, ...], out_root: str, strategy: str, extra: tuple[str, ...], batch: int,
         fixed_shapes: tuple[tuple[int, int], ...], precisions: tuple[str, ...], no_reduced: bool, no_ort: bool,
         no_tensorrt: bool, openvino: tuple[str, ...], no_openvino: bool, opset: int, no_tiling: bool,
         no_fuse_shuffle: bool, only_default: bool, mobile_shape: tuple[int, int] | None, no_mobile: bool,
         no_coreml: bool, no_litert: bool, verbosity: Verbosity) -> None:
    """Export CHECKPOINT(s) (<name>.json beside <name>.safetensors, or the name of a shipped
    checkpoint such as dyconvsr_x2) to OUT/<name>/.

    With no CHECKPOINT, exports every shipped checkpoint (the weights/ folder installed with the
    package, wherever this runs), or, when none is installed, a freshly initialised (untrained)
    dyconvsr x2 so the pipeline can be exercised end to end. With -q nothing is printed unless
    something fails.
    """
    # The recipe, changed only where an option was given.
    changes: dict[str, object] = {"strategy": strategy, "batch": batch, "fixed_shapes": fixed_shapes, "opset": opset}
    for field, off, given in (("extra_strategies", only_default, extra), ("precisions", no_reduced, precisions),
                              ("openvino", no_openvino, openvino), ("tensorrt", no_tensorrt, ()),
                              ("litert", no_litert, ())):
        if off or given:
            changes[field] = () if off else given
    if mobile_shape or no_mobile:
        changes["mobile_shape"] = None if no_mobile else check_mobile_shape(*mobile_shape)
    for field, off in (("ort_format", no_ort), ("tiling", no_tiling), ("fuse_shuffle", no_fuse_shuffle),
                       ("coreml", no_coreml)):
        if off:
            changes[field] = False
    options = dataclasses.replace(RECIPE, **changes)
    check_options(batch, fixed_shapes, opset, [strategy, *options.extra_strategies])
    sources: list = checkpoint_sources(checkpoints)
    if not sources:
        from train.models import create_model

        # Printed even with -q: an untrained export must never pass for the shipped one.
        status("warning: no shipped checkpoint is installed; exporting an UNTRAINED dyconvsr x2 "
               "(random weights: the pipeline works, the pictures will not)")
        sources = [create_model("dyconvsr", scale=2)]
    # Every checkpoint is read (and verified) first: a bad one fails before any artifact is written.
    checkpoints = [resolve_source(source) for source in sources]
    manifests = []
    for checkpoint in checkpoints:
        target = Path(out_root) / artifact_name(checkpoint)
        verbosity.say(f"exporting {display(checkpoint.path or checkpoint.name)} -> {display(target)}")
        start = time.perf_counter()
        manifest = export_artifact(checkpoint, target, options, progress=lambda step: verbosity.say(f"  .. {step}"))
        verbosity.say(f"  done in {time.perf_counter() - start:.1f} s")
        manifests.append((target, manifest))
    failed = [(target, manifest) for target, manifest in manifests if parity_failed(manifest)]
    for target, manifest in failed if verbosity.quiet else manifests:
        print_summary(target, manifest)
    if failed:
        raise UserError("some variants failed parity (see the table above); their files are kept for inspection")


def parity_failed(manifest: Manifest) -> bool:
    """Whether any variant, or the tiled path, failed parity against the PyTorch references."""
    tiling = manifest.tiling
    return (any(v.parity is not None and not v.parity.passed for v in manifest.variants)
            or (tiling is not None and not (tiling.parity and tiling.parity.passed)))


def print_summary(folder: Path, manifest: Manifest) -> None:
    """Print one artifact's variants, sizes and parity (see :func:`parity_failed` for the verdict)."""
    note = "  (UNTRAINED)" if manifest.notes.get("untrained") else ""
    # Names come from checkpoint files and manifests: escaped, so none can break a line or drive the terminal.
    click.echo(f"\n{display(folder)}  {printable(manifest.model_name)} x{manifest.scale}{note}")
    width = max([len(printable(v.file)) for v in manifest.variants] + [30]) + 2
    click.echo(f"  {'file':<{width}}{'strategy':<18}{'prec':<6}{'batch':<7}{'size':>10}  {'max|diff|':>10}  "
               f"{'PSNR':>8}  ok")
    for v in manifest.variants:
        files = [folder / rel for rel in v.engine_files()]
        size = sum(f.stat().st_size for f in files)
        p = v.parity
        batch = "N" if v.dynamic_batch else str(v.batch)
        verdict = "-" if p is None else ("yes" if p.passed else "FAIL")
        diff = f"{p.max_abs_diff:.2e}" if p else "-"
        psnr = f"{p.psnr_db:.1f}" if p else "-"
        click.echo(f"  {printable(v.file):<{width}}{v.strategy:<18}{v.precision:<6}{batch:<7}"
                   f"{size / 1024:>8.0f}KB  {diff:>10}  {psnr:>8}  {verdict}")
    by_reason: dict[str, list[str]] = {}
    for file, reason in manifest.notes.get("skipped", {}).items():
        by_reason.setdefault(reason, []).append(file)
    for reason, files in by_reason.items():
        click.echo(printable(f"  skipped {', '.join(files)}: {reason}"))
    if "auto" in manifest.notes:
        auto = manifest.notes["auto"]
        timings = ", ".join(f"{k} {v} ms" if isinstance(v, float) else f"{k}: {v}"
                            for k, v in auto["median_ms"].items())
        click.echo(f"  auto chose {auto['chosen']!r} ({timings}; {auto['shape']}, {auto['threads']} threads)")
    if "pixel_shuffle_fusion" in manifest.notes:
        click.echo(f"  every graph fused: one DepthToSpace({2 * manifest.scale}) for the two pixel shuffles")
    if manifest.tiling is not None:
        t = manifest.tiling
        verdict = "yes" if t.parity and t.parity.passed else "FAIL"
        click.echo(f"  tiling: {len(t.stats)} stats graph(s) + main, halo {t.halo}, align {t.align}, "
                   f"tiled vs PyTorch max|diff| {t.parity.max_abs_diff:.2e}  {verdict}")
    for graph, eps in manifest.notes.get("mobile_usability", {}).get("graphs", {}).items():
        taken = ", ".join(f"{ep} {parts} partition(s) {nodes}" for ep, (parts, nodes) in eps.items())
        click.echo(printable(f"  mobile usability of {graph}: {taken}"))
    if "coreml" in manifest.notes:
        click.echo(printable(f"  Core ML: {manifest.notes['coreml']['file']} (prediction needs macOS: not run here)"))


if __name__ == "__main__":
    main(sys.argv[1:])
