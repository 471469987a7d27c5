"""``python -m benchmarks.run``: every backend side by side, same process, same inputs -> reports/."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from runtime.bench.engines import Engine, NotMeasured, artifact_engines, check_engine_labels
from runtime.bench.machine import OtherCpuUse, describe_machine, load_average
from runtime.bench.memory import PeakMemory
from runtime.bench.protocol import measure_group
from runtime.bench.resolutions import NAMED, parse_resolution
from runtime.bench.rows import GroupInfo, bench_input, build_rows
from runtime.bench.schema import Report
from runtime.cli_options import NamedPath, Verbosity, verbosity_options
from runtime.errors import cli_errors
from runtime.host import library_versions
from runtime.quality import PROTOCOLS
from train.models import SUPPORTED_SCALES, model_traits

from .complexity import ComplexityCounter
from .config import ARTIFACT_BACKENDS, MEASURED_BACKENDS, RunConfig
from .engines import PillowBicubic, TorchEngine, eager_label, formulations_of
from .markdown import MACHINES_FOLDER, report_machine_kind
from .models import BenchModel, load_bench_model
from .peak import matmul_peaks
from .quality import QualityResult, evaluate_engines


def _echo(config: RunConfig, message: str) -> None:
    if not config.quiet:
        click.echo(message, err=True)


def model_engines(
    model: BenchModel, config: RunConfig, artifact: tuple[Path, object] | None
) -> list[Engine | NotMeasured]:
    """Every engine for one model: eager per formulation, torch.compile, artifact variants, bicubic."""
    engines: list[Engine | NotMeasured] = []
    full = model.name in config.full_models
    formulations = formulations_of(model.model) or [None]
    if not full:
        formulations = formulations[:1]
    if "pytorch" in config.backends:
        engines += [TorchEngine(model.model, f, config.threads) for f in formulations]
    if "torch.compile" in config.backends and model.name in config.compile_models:
        engines.append(TorchEngine(model.model, formulations[0], config.threads, compiled=True))
    if artifact is not None:
        folder, manifest = artifact
        wanted = set(config.backends) & ARTIFACT_BACKENDS
        found = artifact_engines(folder, manifest, config.threads, wanted, openvino_all=config.openvino_all)
        # Baselines and the static twin: the default graph on ONNX Runtime and OpenVINO only.
        engines += found if full else [e for e in found if e.info.variant == manifest.default_variant
                                       and e.info.backend in ("onnxruntime", "openvino")]
    if "bicubic" in config.backends:
        engines.append(PillowBicubic(model.scale))
    check_engine_labels(engines)
    return engines


def paired_twins(models: tuple[str, ...]) -> dict[str, str]:
    """dynamic -> static twin (the registry's ``static_twin``) for the pairs both measured: they are
    timed in the same rounds, so the "cost of the dynamic kernel" ratios are paired per round like
    every other speed-up."""
    twins = {name: model_traits(name).static_twin for name in models}
    return {dynamic: static for dynamic, static in twins.items() if static is not None and static in models}


def _load(name: str, scale: int, config: RunConfig, report: Report) -> tuple[BenchModel, tuple[Path, object] | None]:
    model = load_bench_model(name, scale)
    if not model.trained:
        report.notes.append(f"{model.key}: no checkpoint in weights/, measured UNTRAINED (freshly initialised)")
    artifact = None
    if set(config.backends) & ARTIFACT_BACKENDS:
        _echo(config, f"artifact for {model.key} ({model.source})")
        from .artifacts import ensure_artifact

        artifact = ensure_artifact(model, config.artifacts, config.rebuild_artifacts, model.name in config.full_models,
                                   progress=lambda m: _echo(config, f"  .. {m}"))
    return model, artifact


def reference_label(model: BenchModel) -> str:
    """PyTorch eager running the checkpoint as trained: every speed-up is taken against it."""
    formulations = formulations_of(model.model)
    return eager_label(formulations[0] if formulations else None)


def run(config: RunConfig) -> tuple[Report, dict[str, QualityResult]]:
    machine = describe_machine(config.machine_name)
    machine.load_average["start"] = load_average()
    other_cpu = OtherCpuUse()
    _echo(config, "measuring the matrix-multiply peak of each precision")
    peak, peaks = matmul_peaks(config.threads, machine.isa)
    with PeakMemory() as probe:
        pass
    report = Report(tool="benchmarks.run", machine=machine, versions=library_versions(), settings=config.to_dict(),
                    memory_method=probe.result.method, matmul_peak=peak, matmul_peaks=peaks,
                    notes=list(config.extra_notes))
    qualities: dict[str, QualityResult] = {}
    for scale in config.scales:
        paired = paired_twins(config.models)
        for name in config.models:
            if name in paired.values():
                continue  # timed in its dynamic partner's rounds
            members = [name] + ([paired[name]] if name in paired else [])
            loaded = [(_load(member, scale, config, report)) for member in members]
            for text in config.resolutions:
                resolution = parse_resolution(text)
                height, width = resolution.lr_size(scale)
                groups = [GroupInfo(model.name, scale, resolution.name, config.batch, (height, width), config.threads,
                                    shared_with=name if model.name != name else None) for model, _ in loaded]
                engine_sets = [model_engines(model, config, artifact) for model, artifact in loaded]
                outcomes = measure_group([e for engines in engine_sets for e in engines],
                                         bench_input(config.batch, height, width), config.protocol,
                                         desc=groups[0].name, quiet=config.quiet)
                start = 0
                for (model, _), group, engines in zip(loaded, groups, engine_sets, strict=True):
                    mine = outcomes[start : start + len(engines)]
                    start += len(engines)
                    counter = ComplexityCounter(model.model, (config.batch, 3, height, width), scale)
                    report.rows += build_rows(group, mine, reference_label(model), counter, peaks)
            for model, artifact in loaded:
                if config.video_frames and artifact is not None and model.name in config.full_models:
                    from runtime.video.bench import VIDEO_RESOLUTIONS, video_rows

                    folder, manifest = artifact
                    variants = [e.info.variant for e in model_engines(model, config, artifact)
                                if isinstance(e, Engine) and e.info.backend in ("onnxruntime", "openvino", "litert")]
                    report.video += video_rows(folder, manifest, sorted(set(variants)), list(VIDEO_RESOLUTIONS),
                                               config.threads, config.video_frames)
            if config.quality:
                for model, artifact in loaded:
                    qualities[model.key] = _quality(model, config, artifact)
                    report.quality += qualities[model.key].rows
    machine.load_average["end"] = load_average()
    machine.other_cpu_share = other_cpu.share(machine.usable_cpus)
    return report, qualities


def _quality(model: BenchModel, config: RunConfig, artifact: tuple[Path, object] | None) -> QualityResult:
    from train.evaluate import embedded_benchmark, load_benchmark

    bench = load_benchmark(config.quality_folder) if config.quality_folder else embedded_benchmark("val")
    engines = [e for e in model_engines(model, config, artifact) if isinstance(e, Engine)]
    # One PyTorch formulation suffices (they agree to 1e-5); compiled graphs compute the same function.
    reference = reference_label(model)
    engines = [e for e in engines
               if e.info.backend not in ("pytorch", "torch.compile", "pillow") or e.info.label == reference]
    return evaluate_engines(model, engines, reference, bench, quiet=config.quiet,
                            protocol=PROTOCOLS[config.quality_protocol])


def write_reports(report: Report, qualities: dict[str, QualityResult], config: RunConfig) -> list[Path]:
    from .markdown import render_markdown

    config.out.mkdir(parents=True, exist_ok=True)
    written = [report.write(config.out / "benchmark.json")]
    # This machine kind's latest run, kept beside the others' (benchmarks.readme draws one table per kind).
    (config.out / MACHINES_FOLDER).mkdir(exist_ok=True)
    written.append(report.write(config.out / MACHINES_FOLDER / f"{report_machine_kind(report)}.json"))
    figures: dict[str, str] = {}
    if config.figures:
        from .markdown import provenance
        from .plots import write_plots
        from .visual import write_visual

        figures = write_plots(report, config.out)
        visual = write_visual(qualities, config.out, footer=f"Made on {provenance(report)}")
        if visual:
            figures["visual"] = visual
        written += [config.out / f for f in figures.values()]
    markdown = config.out / "benchmark.md"
    from runtime.files import atomic_write_bytes

    atomic_write_bytes(markdown, render_markdown([report], figures).encode())
    written.append(markdown)
    return written


# Every option's default is RunConfig's.
DEFAULTS = RunConfig()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-m", "--model", "models", multiple=True, default=DEFAULTS.models, show_default=True,
              help="Registry names to measure (repeatable); the shipped checkpoint <name>_x<scale> (or <name> for "
                   "a multi-scale net) when there is one, else a freshly initialised model (the report says so).")
@click.option("-s", "--scale", "scales", multiple=True, type=click.Choice([str(s) for s in SUPPORTED_SCALES]),
              default=tuple(str(s) for s in DEFAULTS.scales), show_default=True)
@click.option("-r", "--resolution", "resolutions", multiple=True, default=DEFAULTS.resolutions, show_default=True,
              help=f"Sizes (repeatable): {', '.join(NAMED)} (720p = 640x360 -> 1280x720 at x2) or WxH (LR input).")
@click.option("-b", "--backend", "backends", multiple=True, type=click.Choice(MEASURED_BACKENDS),
              default=DEFAULTS.backends,
              show_default=True, help="Backends (repeatable). gpu = ONNX Runtime CUDA/TensorRT and TensorRT plans.")
@click.option("--compile-model", "compile_models", multiple=True, default=DEFAULTS.compile_models, show_default=True,
              help="Models also run through torch.compile (about a minute of compilation each on 2 cores).")
@click.option("--openvino-all/--openvino-default-only", default=DEFAULTS.openvino_all, show_default=True,
              help="OpenVINO on every fp32 lowering of the fully measured models, "
                   "or only on model.onnx and the INT8 file.")
@click.option("-t", "--threads", type=click.IntRange(min=0), default=DEFAULTS.threads, show_default=True,
              help="Intra-op threads for PyTorch, ONNX Runtime and OpenVINO (0 = library default).")
@click.option("--full-model", "full_models", multiple=True, default=DEFAULTS.full_models, show_default=True,
              help="Models run on every engine variant; "
                   "the others run PyTorch eager, ONNX Runtime model.onnx, bicubic.")
@click.option("-n", "--rounds", type=click.IntRange(min=1), default=DEFAULTS.rounds, show_default=True,
              help="Timed rounds; every engine runs once per round, so speed-ups are paired per round.")
@click.option("--warmup", type=click.IntRange(min=0), default=DEFAULTS.warmup, show_default=True,
              help="Untimed runs per engine first.")
@click.option("--batch", type=click.IntRange(min=1), default=DEFAULTS.batch, show_default=True)
@click.option("-o", "--out", type=NamedPath(file_okay=False, path_type=Path), default=DEFAULTS.out,
              show_default=True, help="Folder for benchmark.json, benchmark.md and the PNG figures.")
@click.option("--artifacts", type=NamedPath(file_okay=False, path_type=Path), default=DEFAULTS.artifacts,
              show_default=True, help="Where artifact folders are found or exported to (<model>_x<scale>).")
@click.option("--rebuild-artifacts", is_flag=True, help="Re-export even when an up-to-date artifact exists.")
@click.option("--quality-folder", type=NamedPath(exists=True, file_okay=False, path_type=Path), default=None,
              help="HR images for the quality table (default: the held-out embedded images).")
@click.option("--quality-protocol", type=click.Choice(sorted(PROTOCOLS)), default="standard", show_default=True,
              help="How quality is measured: 'standard' (HR mod scale, border = scale, BT.601 Y) or 'authors' (the "
                   "DyConvSR paper's: HR mod 12, no border, their Y); the paper's figures are drawn only beside Set5 "
                   "on 'authors'.")
@click.option("--no-quality", is_flag=True, help="Skip the quality table.")
@click.option("--no-figures", is_flag=True, help="Skip the PNG figures.")
@click.option("--machine-name", default=None, help="Name of this machine in merged reports (default: host name).")
@click.option("--video", "video_frames", type=click.IntRange(min=0), default=DEFAULTS.video_frames, show_default=True,
              help="Also video throughput (needs the video extra) on a clip of this many frames: fps end to end "
                   "and of the engine alone, every ONNX Runtime/OpenVINO/LiteRT file, 720p and 1080p; 0 = none.")
@cli_errors
@verbosity_options
def main(models: tuple[str, ...], scales: tuple[str, ...], resolutions: tuple[str, ...], backends: tuple[str, ...],
         compile_models: tuple[str, ...], full_models: tuple[str, ...], openvino_all: bool, threads: int, rounds: int,
         warmup: int, batch: int, out: Path,
         artifacts: Path, rebuild_artifacts: bool, quality_folder: Path | None, quality_protocol: str,
         no_quality: bool, no_figures: bool,
         machine_name: str | None, video_frames: int, verbosity: Verbosity) -> None:
    """Benchmark every backend side by side and write OUT/benchmark.{json,md} and PNG figures.

    Per model, scale and size, in one process on the same input: PyTorch eager (the reference,
    each dynamic-conv formulation), torch.compile, every ONNX Runtime variant of the exported
    artifact (exported here if missing), OpenVINO f32/bf16 when installed, Pillow bicubic, and
    GPU engines (listed as 'not measured: no GPU' without one). Each engine is loaded and run once
    (peak memory), warmed up, then timed in rounds that run every engine once. Figures: median,
    p90, p95, min, output MP/s, peak memory, params, MACs/FLOPs of what each lowering executes,
    GFLOP/s as a fraction of the matmul peak of the row's precision measured in the same run, speed-up over
    PyTorch eager paired per round; Y-PSNR/SSIM of every engine on held-out images.
    """
    config = RunConfig(models=models, scales=tuple(int(s) for s in scales), resolutions=resolutions, backends=backends,
                       compile_models=compile_models, full_models=full_models, openvino_all=openvino_all,
                       threads=threads, rounds=rounds, warmup=warmup, batch=batch,
                       out=out, artifacts=artifacts, rebuild_artifacts=rebuild_artifacts, quality=not no_quality,
                       quality_folder=quality_folder, quality_protocol=quality_protocol, figures=not no_figures,
                       machine_name=machine_name,
                       quiet=verbosity.quiet, video_frames=video_frames)
    for text in resolutions:
        parse_resolution(text)  # fail on a bad size before minutes of work
    report, qualities = run(config)
    for path in write_reports(report, qualities, config):
        verbosity.echo(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
