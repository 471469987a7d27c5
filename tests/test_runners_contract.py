"""The runner contract, on every backend the registry (runtime/backends.py) can run: lifecycle, declared
tensors, a real inference, refusals of wrong input, a broken file as a UserError (not a missing backend).
A backend this install or machine cannot run is a skip naming why; a new backend joins by its record."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.backends import RUNNABLE, Backend
from runtime.errors import BackendUnavailable, UserError
from runtime.manifest import read_manifest
from runtime.runners import RunnerConfig, make_runner
from runtime.runners.gpu import nvidia_gpus


def engine_of(artifact: Path, backend: Backend) -> Path:
    """The artifact's fp32 file this backend runs by default (an fp32 variant of one of its kinds)."""
    manifest = read_manifest(artifact)
    fp32 = [v.file for v in manifest.variants if v.precision == "fp32"]
    files = [f for f in fp32 if manifest.variant(f).kind in backend.kinds] or [
        f for f in fp32 if backend.runs(Path(f).suffix) and not backend.kinds]  # a backend named, never auto
    if backend.device == "gpu" and not nvidia_gpus():
        pytest.skip(f"{backend.title} needs an NVIDIA GPU; none here")
    if backend.missing():
        pytest.skip(backend.missing())
    if not files:
        pytest.skip(f"this environment's export wrote no {backend.title} file ({manifest.notes.get('skipped')})")
    return artifact / files[0]


def sample_input(runner) -> np.ndarray:
    shape = [d if d is not None else size for d, size in zip(runner.inputs[0].shape, (1, 3, 12, 16), strict=True)]
    return np.random.default_rng(0).random(shape, dtype=np.float32).astype(runner.inputs[0].dtype)


@pytest.mark.parametrize("backend", RUNNABLE, ids=[b.name for b in RUNNABLE])
def test_every_backend_keeps_the_runner_contract(litert_artifact: Path, backend: Backend) -> None:
    path = engine_of(litert_artifact, backend)
    runner = make_runner(path, RunnerConfig(backend=backend.name))
    runner.close()  # never opened: nothing to release
    with runner:
        assert runner.is_open and len(runner.inputs) == 1 and len(runner.outputs) == 1
        assert len(runner.inputs[0].shape) == 4 and runner.inputs[0].shape[1] == 3
        batch = sample_input(runner)
        out = runner.infer(batch)
        assert out.shape == (batch.shape[0], 3, 2 * batch.shape[2], 2 * batch.shape[3]) and np.isfinite(out).all()
        with pytest.raises(UserError, match=r"rank 4 \(N, C, H, W\)"):
            runner.infer(batch[0])
    assert not runner.is_open
    runner.close()
    with pytest.raises(RuntimeError):
        runner.infer(batch)


@pytest.mark.parametrize("backend", RUNNABLE, ids=[b.name for b in RUNNABLE])
def test_every_backend_reports_a_broken_file_as_a_user_error(litert_artifact: Path, tmp_path: Path,
                                                             backend: Backend) -> None:
    path = engine_of(litert_artifact, backend)
    broken = tmp_path / path.name
    broken.write_bytes(path.read_bytes()[:200])
    for companion in read_manifest(litert_artifact).variant(path.name).engine_files()[1:]:
        (tmp_path / companion).write_bytes((litert_artifact / companion).read_bytes())
    runner = make_runner(broken, RunnerConfig(backend=backend.name))
    with pytest.raises(UserError) as caught:
        runner.open()
    assert not isinstance(caught.value, BackendUnavailable) and str(broken) in str(caught.value)
    assert not runner.is_open
    runner.close()
