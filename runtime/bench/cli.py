"""``python -m runtime.bench ARTIFACT_DIR``: the device benchmark, torch-free.

Same protocol and JSON schema as ``python -m benchmarks.run`` (runtime/bench/schema.py), so the
files from a phone, a Jetson or a GPU box merge with ``python -m benchmarks.report``.
"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click

from ..backends import BENCH_BACKENDS
from ..cli_options import ArtifactPath, NamedPath, Verbosity, threads_option, verbosity_options
from ..errors import UserError, cli_errors, writing
from ..host import library_versions
from ..manifest import read_manifest
from ..quality import PROTOCOLS
from ..runners import RunnerConfig, backend_for
from .engines import EngineInfo, artifact_engines, check_engine_labels
from .machine import OtherCpuUse, describe_machine, load_average, torch_free_peaks
from .memory import METHOD_HWM, PeakMemory
from .protocol import Protocol, measure_group
from .quality import quality_rows, quality_set, quality_summary
from .resolutions import NAMED, parse_resolution
from .rows import GroupInfo, bench_input, build_rows
from .schema import Report

DEVICE_BACKENDS = BENCH_BACKENDS


def bench_artifact(
    folder: Path,
    resolutions: list[str],
    threads: int,
    protocol: Protocol,
    backends: set[str],
    batch: int = 1,
    check: bool = True,
    machine_name: str | None = None,
    quiet: bool = False,
    quality: Path | None = None,
    video_frames: int = 0,
    quality_protocol: str = "standard",
) -> Report:
    """Benchmark every engine variant of one artifact folder; see the module docstring. ``quality``:
    a folder of HR images each measured engine is then scored on (:mod:`runtime.bench.quality`)."""
    manifest = read_manifest(folder)
    quality_images = (quality_set(quality, manifest.scale, PROTOCOLS[quality_protocol])  # refused before timing
                      if quality is not None else None)
    machine = describe_machine(machine_name)
    machine.load_average["start"] = load_average()
    other_cpu = OtherCpuUse()
    peaks = torch_free_peaks()
    report = Report(
        tool="runtime.bench", machine=machine, versions=library_versions(),
        settings={"artifact": str(folder), "model": manifest.model_name, "scale": manifest.scale,
                  "resolutions": resolutions, "threads": threads, "batch": batch, "backends": sorted(backends),
                  **asdict(protocol)},
        memory_method=_memory_method(), matmul_peak=peaks[0], matmul_peaks=peaks,
    )
    if manifest.notes.get("untrained"):
        report.notes.append("the artifact holds an UNTRAINED (freshly initialised) model")
    if check:
        from ..check import check_artifact

        checked = check_artifact(folder)
        report.checks = [asdict(row) for row in checked.rows]
        if checked.file_problems:
            report.notes.append("file problems: " + "; ".join(checked.file_problems))
    reference = f"onnxruntime {manifest.default.file}"
    for text in resolutions:
        resolution = parse_resolution(text)
        height, width = resolution.lr_size(manifest.scale)
        group = GroupInfo(manifest.model_name, manifest.scale, resolution.name, batch, (height, width), threads)
        engines = artifact_engines(folder, manifest, threads, backends)
        check_engine_labels(engines)
        outcomes = measure_group(engines, bench_input(batch, height, width), protocol, desc=group.name, quiet=quiet)
        report.rows += build_rows(group, outcomes, reference, _no_complexity, peaks)
    if quality_images is not None:
        report.settings["quality"] = str(quality)
        report.settings["quality_protocol"] = quality_protocol
        measured = {row.label for row in report.rows if row.measured}
        engines = [e for e in artifact_engines(folder, manifest, threads, backends) if e.info.label in measured]
        report.quality, notes = quality_rows(folder, manifest.model_name, engines, quality_images, quiet)
        report.notes += notes
    if video_frames:  # runtime/video/bench.py: every variant a runner here can load, at 720p and 1080p
        from ..video.bench import VIDEO_RESOLUTIONS, video_rows

        variants = [v.file for v in manifest.variants if _backend_wanted(folder / v.file, backends)]
        report.video = video_rows(folder, manifest, variants, list(VIDEO_RESOLUTIONS), threads, video_frames)
    machine.load_average["end"] = load_average()
    machine.other_cpu_share = other_cpu.share(machine.usable_cpus)
    return report


def _backend_wanted(engine: Path, backends: set[str]) -> bool:
    backend = backend_for(engine, RunnerConfig())
    return (backend if backend != "tensorrt" else "gpu") in backends


def _no_complexity(info: EngineInfo) -> tuple[int | None, int | None]:
    # Counting MACs needs the torch trace; benchmarks.report fills them from a host report.
    return None, None


def _memory_method() -> str:
    with PeakMemory() as probe:
        pass
    assert probe.result is not None
    return probe.result.method if probe.result.method != METHOD_HWM else METHOD_HWM


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("artifact_dir", metavar="ARTIFACT", type=ArtifactPath(file_okay=False))
@click.option("-r", "--resolution", "resolutions", multiple=True, default=("lr256", "720p"), show_default=True,
              help=f"Sizes to time (repeatable): {', '.join(NAMED)} (per the artifact's scale) or WxH (LR input).")
@click.option("--backend", "backends", multiple=True, type=click.Choice(DEVICE_BACKENDS),
              default=DEVICE_BACKENDS, show_default=True,
              help="Engines to run: ONNX Runtime (CPU provider), OpenVINO (f32 and bf16, if installed), "
                   "LiteRT (.tflite files with XNNPACK, if ai-edge-litert is installed), "
                   "GPU (ONNX Runtime CUDA/TensorRT providers and TensorRT plans; rows say 'no GPU' here).")
@threads_option(default=2)
@click.option("--rounds", type=click.IntRange(min=1), default=6, show_default=True,
              help="Timed rounds; each round runs every engine once, so ratios are paired per round.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True,
              help="Untimed runs per engine first.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Images per call.")
@click.option("--no-check", is_flag=True, help="Skip the parity check against the stored PyTorch references.")
@click.option("--machine-name", default=None, help="Name of this machine in merged reports (default: host name).")
@click.option("--quality", "quality_dir", type=NamedPath(file_okay=False, path_type=Path), default=None,
              help="Folder of HR images: also score every measured engine on them (LR by MATLAB bicubic at the "
                   "artifact's scale, whole images, Y-channel PSNR/SSIM with border = scale, beside bicubic).")
@click.option("--quality-protocol", type=click.Choice(sorted(PROTOCOLS)), default="standard", show_default=True,
              help="How --quality measures: standard (border = scale), or authors (the DyConvSR authors' eval.py: HR "
                   "to a multiple of 12, no border, their R/B-swapped Y; the protocol of their published figures).")
@click.option("--video", "video_frames", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also measure video throughput on a clip of this many frames (needs the video extra): fps "
                   "end to end (decode, engine and H.264 encode overlapping) and of the engine alone, every "
                   "variant, at 720p and 1080p output; 0 = no video rows.")
@click.option("--profile", is_flag=True,
              help="Instead of timing: where the time goes, at the first --resolution. ONNX Runtime's profiler on "
                   "model.onnx and OpenVINO's performance counters on its IR (if installed), kernels grouped by what "
                   "the network does (head, dynamic conv + attention, GELU, high-frequency branch, spatial attention, "
                   "pixel shuffles, layout), each group against its roofline; -o writes the profile as JSON.")
@click.option("-o", "--output", type=NamedPath(dir_okay=False, path_type=Path), default=None,
              help="JSON report path (default: bench-<machine>.json in the current folder).")
@cli_errors
@verbosity_options
def main(artifact_dir: Path, resolutions: tuple[str, ...], backends: tuple[str, ...], threads: int, rounds: int,
         warmup: int, batch: int, no_check: bool, machine_name: str | None, quality_dir: Path | None,
         quality_protocol: str, video_frames: int, profile: bool, output: Path | None, verbosity: Verbosity) -> None:
    """Time every engine variant in ARTIFACT_DIR on this device and prove each one right.

    Per size: each engine is loaded and run once (peak memory measured), warmed up, then timed in
    rounds that run every engine once, giving median/p90/p95/min latency, output MP/s and
    speed-ups over the default model.onnx on ONNX Runtime paired round by round. The stored
    reference inputs are checked against the stored PyTorch outputs (as `runtime.check` does).
    With --quality DIR every measured engine then upscales DIR's images whole and is scored as
    `python -m train evaluate` scores it (Y-PSNR/SSIM beside MATLAB bicubic).
    Never imports torch. Merge files from several machines with `python -m benchmarks.report`.
    """
    for text in resolutions:  # refuse bad sizes and thread counts before seconds of machine probing
        parse_resolution(text)
    RunnerConfig(threads=threads)
    if profile:
        _profile(artifact_dir, resolutions[0], threads, max(rounds, 5), set(backends), output, verbosity)
        return
    report = bench_artifact(artifact_dir, list(resolutions), threads, Protocol(rounds, warmup), set(backends),
                            batch, not no_check, machine_name, verbosity.quiet, quality_dir, video_frames,
                            quality_protocol)
    path = output or Path(f"bench-{report.machine.name}.json")
    with writing(path, "benchmark report"):
        report.write(path)
    verbosity.echo(summary(report))
    verbosity.echo(f"wrote {path}")
    failed = [c for c in report.checks if c.get("status") == "FAIL"]
    if failed:
        raise UserError(f"{len(failed)} variant(s) failed parity against the stored references: "
                        + ", ".join(c["name"] for c in failed))


def summary(report: Report) -> str:
    lines = []
    for row in report.rows:
        if row.measured:
            t = row.timing
            speed = f"  x{row.speedup_paired:.2f}" if row.speedup_paired else ""
            lines.append(f"{row.group:<24} {row.label:<44} median {t.median_ms:8.2f} ms  p95 {t.p95_ms:8.2f} ms{speed}")
        else:
            lines.append(f"{row.group:<24} {row.label:<44} {row.status}")
    lines += quality_summary(report.quality)
    if report.video:
        from ..video.bench import video_summary

        lines += video_summary(report.video)
    for check in report.checks:
        lines.append(f"parity  {check['name']:<44} {check['status']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])


def _profile(folder: Path, resolution: str, threads: int, runs: int, backends: set[str], output: Path | None,
             verbosity: Verbosity) -> None:
    from ..files import atomic_write_bytes, json_bytes
    from .profile import profile_artifact, profiles_json

    height, width = parse_resolution(resolution).lr_size(read_manifest(folder).scale)
    profiles = profile_artifact(folder, height, width, runs, threads, tuple(backends))
    for profile in profiles:
        verbosity.echo(profile.table() + "\n")
    if output is not None:
        with writing(output, "profile"):
            atomic_write_bytes(output, json_bytes({"profiles": profiles_json(profiles)}))
        verbosity.echo(f"wrote {output}")
