"""A real full disk (a 2 MiB tmpfs, tests/test_runtime_fixtures.py full_disk) under every command that
writes a named output: one line naming the output and the reason, a non-zero exit, no traceback, nothing
partial left, and what was there before intact. Real processes, so nothing is simulated."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runtime.files import sha256_file
from test_runtime_fixtures import REPO, SAMPLE, fill_disk

FULL = "No space left on device"
MINIMAL_EXPORT = ("--strategy", "branches", "--only-default", "--no-reduced", "--no-ort", "--no-tensorrt",
                  "--no-mobile", "--no-openvino")


def run(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def entries(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.name != ".filler")


def one_line(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode == 2 and done.stderr.splitlines() == [expected], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_bench_and_check_reports_on_a_full_disk(dy_artifact: Path, full_disk: Path) -> None:
    fill_disk(full_disk)
    done = run("runtime.bench", dy_artifact, "-r", "32x32", "--rounds", "1", "--backend", "onnxruntime", "-q",
               "-o", full_disk / "bench.json")
    one_line(done, f"error: cannot write the benchmark report {full_disk / 'bench.json'}: {FULL}")
    done = run("runtime.check", dy_artifact, "-q", "--json", full_disk / "check.json")
    one_line(done, f"error: cannot write the JSON report {full_disk / 'check.json'}: {FULL}")
    assert entries(full_disk) == []


@pytest.mark.parametrize("room", [0, 48 << 10], ids=["no room", "room for some files"])
def test_export_on_a_full_disk_keeps_the_previous_artifact(tmp_path: Path, full_disk: Path, room: int) -> None:
    from train.checkpoint import save_checkpoint
    from train.models import create_model

    save_checkpoint(tmp_path / "tiny_x2", create_model("dyconvsr_tiny"))
    first = run("export", tmp_path / "tiny_x2.json", "-o", full_disk / "artifacts", *MINIMAL_EXPORT, "-q")
    assert first.returncode == 0, first.stderr
    before = {rel: sha256_file(full_disk / rel) for rel in entries(full_disk) if (full_disk / rel).is_file()}
    fill_disk(full_disk, leave=room)
    done = run("export", tmp_path / "tiny_x2.json", "-o", full_disk / "artifacts", *MINIMAL_EXPORT, "-q")
    one_line(done, f"error: cannot write the artifact {full_disk / 'artifacts' / 'tiny_x2'}: {FULL}; the previous "
                   "artifact there, if any, is untouched")
    assert {rel: sha256_file(full_disk / rel) for rel in entries(full_disk) if (full_disk / rel).is_file()} == before
    assert run("runtime.check", full_disk / "artifacts" / "tiny_x2", "-q").returncode == 0


def test_export_into_a_new_folder_on_a_full_disk_leaves_no_folder(tmp_path: Path, full_disk: Path) -> None:
    from train.checkpoint import save_checkpoint
    from train.models import create_model

    save_checkpoint(tmp_path / "tiny_x2", create_model("dyconvsr_tiny"))
    fill_disk(full_disk)
    done = run("export", tmp_path / "tiny_x2.json", "-o", full_disk / "new" / "artifacts", *MINIMAL_EXPORT, "-q")
    one_line(done, f"error: cannot write the artifact {full_disk / 'new' / 'artifacts' / 'tiny_x2'}: {FULL}; the "
                   "previous artifact there, if any, is untouched")
    assert entries(full_disk) == []


def test_infer_on_a_full_disk_names_the_input_and_leaves_nothing(dy_artifact: Path, full_disk: Path) -> None:
    fill_disk(full_disk)
    done = run("runtime.infer", dy_artifact, SAMPLE, "-o", full_disk / "up", "-q")
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"error: {SAMPLE}: cannot write the output {full_disk / 'up' / 'astronaut_crop_x2.png'}: {FULL}"], done.stderr
    assert [p for p in entries(full_disk) if not (full_disk / p).is_dir()] == []


def test_video_on_a_full_disk_names_the_input_and_leaves_nothing(dy_artifact: Path, tmp_path: Path,
                                                                 full_disk: Path) -> None:
    av = pytest.importorskip("av", reason="PyAV not installed (the video extra)")
    import numpy as np

    clip = tmp_path / "clip.mp4"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    fill_disk(full_disk)
    done = run("runtime.infer", dy_artifact, clip, "-o", full_disk / "up", "-q")
    assert done.returncode == 1 and done.stderr.splitlines() == [
        f"error: {clip}: encoding failed: {FULL}"], done.stderr
    assert [p for p in entries(full_disk) if not (full_disk / p).is_dir()] == []
