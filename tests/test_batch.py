"""python -m runtime.batch on a real local Ray cluster (started here): the same pixels as runtime.infer, a bad
input a failed row, a killed run resumed, a killed worker retried by Ray, nothing partial left."""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from runtime.infer import main as infer
from test_runtime_fixtures import REPO

pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")

JOURNAL = ".batch-journal.jsonl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def cluster() -> str:
    """A real Ray head node of 2 CPUs on 127.0.0.1 with token authentication (as `ray start` sets up), its token
    in this process's environment for the runs to inherit; ended (every process it started) after the module."""
    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    port = free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        probe = subprocess.run([str(ray_cli), "status", f"--address={address}"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            break
        if head.poll() is not None or time.monotonic() > deadline:
            head.kill()
            errors = head.stderr.read().decode()[-2000:] if head.stderr else ""
            pytest.fail(f"ray start --head did not come up: {errors}")
        time.sleep(0.5)
    yield address
    os.killpg(head.pid, signal.SIGTERM)  # --block: the head stops every process it started
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
    for name, value in saved.items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def photos(folder: Path, sample_rgb: np.ndarray, count: int, side: int) -> list[Path]:
    """``count`` different real-photo images of ``side`` x ``side`` (the sample tiled, shifted, flipped)."""
    folder.mkdir(parents=True, exist_ok=True)
    reps = side // sample_rgb.shape[0] + 2
    big = np.tile(sample_rgb, (reps, reps, 1))
    paths = []
    for i in range(count):
        crop = big[i * 7 % 97:][:side, i * 13 % 89:][:, :side]
        paths.append(folder / f"photo{i:03d}.png")
        Image.fromarray(crop[:, ::-1] if i % 2 else crop).save(paths[-1])
    return paths


def batch(*args: object, wait: bool = True, env: dict[str, str] | None = None):
    command = [sys.executable, "-m", "runtime.batch", *map(str, args)]
    if not wait:
        return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, start_new_session=True)
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


def infer_into(artifact: Path, inputs: list[Path], out: Path, *options: str) -> None:
    result = CliRunner().invoke(infer, [str(artifact), *map(str, inputs), "-o", str(out), "-q", *options])
    assert result.exit_code in (0, 1), result.output


def report(out: Path) -> dict:
    return json.loads((out / "batch-report.json").read_text())


def by_status(data: dict) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for row in data["inputs"]:
        rows.setdefault(row["status"], []).append(Path(row["input"]).name)
    return {k: sorted(v) for k, v in rows.items()}


def partial_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if p.name.startswith(".") and p.name != JOURNAL)


def done_records(out: Path) -> list[dict]:
    if not (out / JOURNAL).exists():
        return []
    records = []
    for line in (out / JOURNAL).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return [r for r in records if "done" in r]


def same_files(a: Path, b: Path) -> list[str]:
    """The relative paths of the files under ``a`` (outputs only), each checked to have the same bytes under ``b``."""
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()
                   and not p.name.startswith(".") and p.name != "batch-report.json")
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    return names


def one_worker_run(artifact: Path, src: Path, out: Path, cluster: str, until_recorded: int) -> subprocess.Popen:
    """A run of one worker on the cluster, returned once it has recorded ``until_recorded`` outputs."""
    run = batch(artifact, src, "-o", out, "--workers", "1", "--address", cluster, wait=False)
    deadline = time.monotonic() + 120
    while len(done_records(out)) < until_recorded:
        if run.poll() is not None:
            pytest.fail(f"the run ended before the test could act: {run.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            run.kill()
            pytest.fail("timed out waiting for the run")
        time.sleep(0.02)
    return run


def test_outputs_equal_infer_bad_inputs_are_rows_and_a_rerun_skips_what_is_complete(
        cluster: str, dy_artifact: Path, sample_rgb: np.ndarray, tmp_path: Path) -> None:
    src = tmp_path / "src"
    photos(src, sample_rgb, 3, 150)
    photos(src / "sub", sample_rgb, 1, 90)
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "notes.jpg").write_bytes(b"plain text, not a JPEG")
    out, expected = tmp_path / "out", tmp_path / "expected"
    # --tile 64: the 150-pixel photos are tiled (whole-image attention statistics first), as infer does.
    done = batch(dy_artifact, src, "-o", out, "--tile", "64", "--address", cluster)
    assert done.returncode == 1, done.stderr
    infer_into(dy_artifact, [src], expected, "--tile", "64")
    assert same_files(out, expected) == same_files(expected, out)
    assert len(same_files(out, expected)) == 4
    data = report(out)
    assert by_status(data) == {"ok": ["photo000.png", "photo000.png", "photo001.png", "photo002.png"],
                               "failed": ["corrupt.png", "notes.jpg"]}
    failed = [row for row in data["inputs"] if row["status"] == "failed"]
    assert all(row["error"] and row["output"] is None for row in failed)
    assert {row["worker"] for row in data["inputs"] if row["status"] == "ok"} <= set(data["workers"])
    assert data["address"] == cluster and len(data["workers"]) == 2 and data["restarted_workers"] == []
    assert "corrupt.png" in done.stderr and "1 failed" not in done.stderr and "2 failed" in done.stderr
    assert partial_files(out) == []

    # A rerun skips the four complete outputs and reports the two bad inputs again.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    again = batch(dy_artifact, src, "-o", out, "--tile", "64", "--address", cluster)
    assert again.returncode == 1, again.stderr
    assert by_status(report(out)) == {"skipped": ["photo000.png", "photo000.png", "photo001.png", "photo002.png"],
                                      "failed": ["corrupt.png", "notes.jpg"]}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamps

    # An output changed since it was recorded is not skipped, nor replaced without --overwrite (someone's edit).
    changed = out / "photo001_x2.png"
    Image.new("RGB", (300, 300)).save(changed)
    edited = changed.read_bytes()
    third = batch(dy_artifact, src, "-o", out, "--tile", "64", "--address", cluster)
    assert third.returncode == 1 and "photo001_x2.png" in third.stderr and "exists" in third.stderr, third.stderr
    assert changed.read_bytes() == edited
    forced = batch(dy_artifact, src, "-o", out, "--tile", "64", "--overwrite", "--address", cluster)
    assert forced.returncode == 1, forced.stderr
    assert by_status(report(out))["ok"] == ["photo001.png"]  # the complete ones are still skipped
    assert changed.read_bytes() == (expected / "photo001_x2.png").read_bytes()

    # Other settings are another output: not skipped, and an existing file is refused without --overwrite.
    other = batch(dy_artifact, src / "photo000.png", "-o", out, "--tile", "0", "--address", cluster)
    assert other.returncode == 1 and "exists" in other.stderr, other.stderr


def test_a_local_runtime_runs_videos_and_images_without_torch(dy_artifact: Path, sample_rgb: np.ndarray,
                                                              tmp_path: Path) -> None:
    av = pytest.importorskip("av", reason="the video extra is not installed")
    from runtime.video.clip import PannedClip, write_clip

    src = tmp_path / "src"
    photos(src, sample_rgb, 2, 60)
    write_clip(src / "pan.mp4", PannedClip(sample_rgb, 2, (48, 32), 8, step=(2, 1)).lr_frames(), 25)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nfor name in ('torch', 'train', 'export'):\n"
                                           "    sys.modules[name] = None\n")
    # The local runtime's workers inherit the driver's environment: torch is unimportable there too.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), str(REPO)])}
    out, expected = tmp_path / "out", tmp_path / "expected"
    done = batch(dy_artifact, src, "-o", out, "--workers", "1", env=env)
    assert done.returncode == 0, done.stderr
    infer_into(dy_artifact, [src], expected)
    assert same_files(out, expected) == ["pan_x2.mp4", "photo000_x2.png", "photo001_x2.png"]
    with av.open(str(out / "pan_x2.mp4")) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (96, 64)
    data = report(out)
    assert data["address"] == "local" and data["nodes"] == 1 and len(data["workers"]) == 1
    assert by_status(data) == {"ok": ["pan.mp4", "photo000.png", "photo001.png"]}


def test_a_killed_run_resumes_and_leaves_nothing_partial(cluster: str, real_artifact: Path, sample_rgb: np.ndarray,
                                                         tmp_path: Path) -> None:
    src, out, expected = photos(tmp_path / "src", sample_rgb, 24, 256), tmp_path / "out", tmp_path / "expected"
    run = one_worker_run(real_artifact, tmp_path / "src", out, cluster, until_recorded=3)
    os.killpg(run.pid, signal.SIGKILL)  # the driver, with no chance to clean up
    run.wait(timeout=60)
    recorded = len(done_records(out))
    assert 3 <= recorded < len(src)
    for path in out.glob("*.png"):  # what exists is complete: published whole or not at all
        with Image.open(path) as image:
            image.load()
            assert image.size == (512, 512)

    resumed = batch(real_artifact, tmp_path / "src", "-o", out, "--workers", "1", "--address", cluster)
    assert resumed.returncode == 0, resumed.stderr
    rows = by_status(report(out))
    assert set(rows) <= {"ok", "skipped"} and len(rows["skipped"]) >= recorded and rows.get("ok")
    infer_into(real_artifact, src, expected)
    assert len(same_files(expected, out)) == len(src)
    assert partial_files(out) == []


def test_a_worker_killed_mid_task_is_retried_by_ray(cluster: str, real_artifact: Path, sample_rgb: np.ndarray,
                                                    tmp_path: Path) -> None:
    src, out, expected = photos(tmp_path / "src", sample_rgb, 16, 256), tmp_path / "out", tmp_path / "expected"
    run = one_worker_run(real_artifact, tmp_path / "src", out, cluster, until_recorded=2)
    worker = done_records(out)[0]["worker"]
    os.kill(int(worker.rsplit(":", 1)[1]), signal.SIGKILL)  # the actor's process, mid-way through its next input
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    data = report(out)
    assert by_status(data) == {"ok": sorted(p.name for p in src)}
    assert data["restarted_workers"] and data["restarted_workers"][0] != worker
    assert {row["worker"] for row in data["inputs"]} == {worker, *data["restarted_workers"]}
    infer_into(real_artifact, src, expected)
    assert len(same_files(expected, out)) == len(src)
    assert partial_files(out) == []


def test_command_problems_are_one_line(cluster: str, dy_artifact: Path, sample_rgb: np.ndarray,
                                       tmp_path: Path) -> None:
    photos(tmp_path / "src", sample_rgb, 1, 40)
    too_many = batch(dy_artifact, tmp_path / "src", "-o", tmp_path / "out", "--workers", "3", "--address", cluster)
    assert too_many.returncode == 2 and too_many.stderr.strip().splitlines()[-1].startswith("error: --workers 3")
    assert "the cluster at" in too_many.stderr and "has 2" in too_many.stderr
    nowhere = batch(dy_artifact, tmp_path / "src", "-o", tmp_path / "out", "--address", f"127.0.0.1:{free_port()}")
    assert nowhere.returncode == 2 and "Traceback" not in nowhere.stderr, nowhere.stderr
    assert nowhere.stderr.strip().splitlines()[-1].startswith("error: cannot join the Ray cluster at 127.0.0.1:")
    assert not (tmp_path / "out").exists()


def test_sigterm_ends_the_run_in_one_line_with_its_report_and_nothing_partial(
        cluster: str, real_artifact: Path, sample_rgb: np.ndarray, tmp_path: Path) -> None:
    src, out = photos(tmp_path / "src", sample_rgb, 16, 256), tmp_path / "out"
    run = one_worker_run(real_artifact, tmp_path / "src", out, cluster, until_recorded=2)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 143 and stderr.strip().splitlines()[-1] == "terminated", stderr
    data = report(out)
    assert data["ok"] >= 2 and data["ok"] + data["not_run"] == len(src) and data["failed"] == 0
    assert partial_files(out) == []
