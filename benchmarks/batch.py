"""``python -m benchmarks.batch ARTIFACT PHOTOS...``: images/s of ``runtime.batch`` with 1 and 2 workers against
``runtime.infer`` alone on the same photos (crops of the real photographs in PHOTOS), each a fresh process
timed from start to end as a user would, and the batch's overhead per image; markdown + JSON under ``reports/``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click
from PIL import Image

from runtime.bench.machine import describe_machine, load_average
from runtime.cli_options import NamedPath
from runtime.errors import UserError, cli_errors
from runtime.files import atomic_write_bytes, json_bytes
from runtime.images import find_images

from .markdown import fmt, md_table


@dataclass(frozen=True)
class Setup:
    label: str
    command: list[str]  # after `python -m`, before the inputs
    workers: int  # engines at once (infer: 1)
    threads: int  # per engine


@dataclass
class Measured:
    label: str
    workers: int
    threads: int
    seconds: float  # the whole process, start to exit, median of the rounds
    images_per_second: float
    per_image_ms: float  # seconds / images
    engine_busy_ms: float | None  # batch: mean per-input seconds its workers report


def make_photos(sources: list[Path], count: int, size: tuple[int, int], into: Path) -> list[Path]:
    """``count`` crops of ``size`` (width, height) from the photographs in ``sources``, centre then corners."""
    files = [p for source in sources for p in (find_images(source) if source.is_dir() else [source])]
    if not files:
        raise UserError(f"no photographs in {', '.join(map(str, sources))}")
    into.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    width, height = size
    for round_ in range(count):
        source = files[round_ % len(files)]
        with Image.open(source) as image:
            image = image.convert("RGB")
            if image.width < width or image.height < height:
                image = image.resize((max(width, image.width), max(height, image.height)), Image.Resampling.BICUBIC)
            spots = [((image.width - width) // 2, (image.height - height) // 2), (0, 0),
                     (image.width - width, image.height - height), (0, image.height - height)]
            left, top = spots[(round_ // len(files)) % len(spots)]
            made.append(into / f"photo{round_:04d}.png")
            image.crop((left, top, left + width, top + height)).save(made[-1])
    return made


def run_once(setup: Setup, artifact: Path, photos: Path, out: Path) -> tuple[float, float | None]:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *setup.command, str(artifact), str(photos), "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=3600, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise UserError(f"{setup.label} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    busy = None
    if (out / "batch-report.json").is_file():
        rows = json.loads((out / "batch-report.json").read_text())["inputs"]
        busy = sum(row["seconds"] for row in rows) / max(1, len(rows)) * 1e3
    return seconds, busy


def measure(setups: list[Setup], artifact: Path, photos: Path, count: int, rounds: int) -> list[Measured]:
    results = []
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as scratch:
        for setup in setups:
            times = [run_once(setup, artifact, photos, Path(scratch) / "out") for _ in range(rounds)]
            times.sort(key=lambda pair: pair[0])
            seconds, busy = times[len(times) // 2]
            results.append(Measured(setup.label, setup.workers, setup.threads, round(seconds, 3),
                                    round(count / seconds, 2), round(seconds / count * 1e3, 1),
                                    None if busy is None else round(busy, 1)))
    return results


def markdown(results: list[Measured], machine: str, count: int, size: tuple[int, int], artifact: Path,
             load: float | None) -> str:
    base = {(r.workers * r.threads): r for r in results if r.label.startswith("runtime.infer")}
    rows = []
    for r in results:
        same = base.get(r.workers * r.threads)
        overhead = "-" if same is None or same is r else fmt(r.per_image_ms - same.per_image_ms, 1, " ms")
        rows.append([r.label, str(r.workers), str(r.threads), fmt(r.seconds, 1, " s"), fmt(r.images_per_second, 2),
                     fmt(r.per_image_ms, 1), fmt(r.engine_busy_ms, 1), overhead])
    lines = [f"# Batch upscaling: {count} photos of {size[0]}x{size[1]} -> x2, `{artifact.name}`", "",
             f"Machine: {machine}; 1-minute load average before the runs {fmt(load, 2)}. Each row is one whole "
             "process, start to exit (Ray's start and the engine's load "
             "included), median of the rounds; `vs infer` is the difference per image against runtime.infer "
             "with the same number of threads in all.", "",
             *md_table(["command", "workers", "threads each", "wall", "images/s", "ms/image", "worker ms/input",
                        "vs infer (same threads)"], rows), ""]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("artifact", type=NamedPath(exists=True, file_okay=False, path_type=Path))
@click.argument("sources", nargs=-1, required=True, type=NamedPath(exists=True, path_type=Path))
@click.option("--count", type=click.IntRange(min=1), default=200, show_default=True, help="Photos to upscale.")
@click.option("--size", default="480x320", show_default=True, help="WIDTHxHEIGHT of each crop.")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True, help="Runs of each command.")
@click.option("-o", "--output", "out", type=NamedPath(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Folder for batch.md and batch.json.")
@cli_errors
def main(artifact: Path, sources: tuple[Path, ...], count: int, size: str, rounds: int, out: Path) -> None:
    """Time runtime.infer and runtime.batch (1 worker of 2 threads, 2 workers of 1 thread, and both at 1 thread
    for the overhead) on COUNT crops of the photographs in SOURCES (files or folders)."""
    try:
        width, height = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must be WIDTHxHEIGHT, e.g. 480x320; got {size!r}") from None
    setups = [Setup("runtime.infer", ["runtime.infer", "--threads", "1"], 1, 1),
              Setup("runtime.batch", ["runtime.batch", "--workers", "1", "--threads", "1"], 1, 1),
              Setup("runtime.infer", ["runtime.infer", "--threads", "2"], 1, 2),
              Setup("runtime.batch", ["runtime.batch", "--workers", "1", "--threads", "2"], 1, 2),
              Setup("runtime.batch", ["runtime.batch", "--workers", "2", "--threads", "1"], 2, 1)]
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="batch-photos-") as scratch:
        make_photos(list(sources), count, (width, height), Path(scratch))
        load = load_average()  # before: what else ran (the runs' own processes would count as other CPU use)
        results = measure(setups, artifact, Path(scratch), count, rounds)
    label = f"{machine.cpu} ({', '.join(machine.isa)}), {machine.usable_cpus} CPUs"
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(results, label, count, (width, height), artifact, load)
    atomic_write_bytes(out / "batch.md", text.encode())
    atomic_write_bytes(out / "batch.json", json_bytes({"machine": machine.to_dict(), "count": count,
                                                      "size": [width, height], "artifact": str(artifact),
                                                      "load_average_before": load,
                                                      "rows": [asdict(r) for r in results]}))
    click.echo(text)


if __name__ == "__main__":
    main()
