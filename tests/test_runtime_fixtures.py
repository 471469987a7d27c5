"""Shared fixtures for the runtime tests: artifacts exported once per session, real test images.

Tests may import torch, train and export to *make* artifacts; runtime/ itself never does.
Artifacts are cached under the session's base temp folder, so modules that import these
fixtures share one export.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "assets" / "astronaut_crop.png"
WHEEL_PACKAGES = ("runtime", "train", "export", "benchmarks")
LITERT_SHAPE = (36, 48)  # litert_artifact's fixed LR shape: more than twice the halo a side
# Run first in a subprocess: torch and the torch-side packages cannot be imported after it.
BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['train'] = None; sys.modules['export'] = None"


def export_once(tmp_path_factory: pytest.TempPathFactory, name: str, scale: int, **kwargs: object) -> Path:
    folder = tmp_path_factory.getbasetemp() / "runtime_artifacts" / f"{name}_x{scale}"
    if not (folder / "manifest.json").is_file():
        import torch

        from export.artifact import ExportOptions, export_artifact
        from train.models import create_model

        torch.manual_seed(0)
        options = ExportOptions(strategy="branches", openvino=(), mobile_shape=None)  # no IR, no mobile/LiteRT
        export_artifact(create_model(name, scale=scale, **kwargs), folder, options)
    return folder


@pytest.fixture(scope="session")
def dy_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny DyConvSR x2 (8 channels, 2 kernels)."""
    return export_once(tmp_path_factory, "dyconvsr_tiny", 2)


@pytest.fixture(scope="session")
def dcnn_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny DCNN x3: two dynamic layers, the second's statistics depend on the first's."""
    return export_once(tmp_path_factory, "dcnn_tiny", 3)


@pytest.fixture(scope="session")
def real_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real-size DyConvSR x2 (~60K parameters), freshly initialised."""
    return export_once(tmp_path_factory, "dyconvsr", 2)


@pytest.fixture(scope="session")
def sample_rgb() -> np.ndarray:
    """The bundled 200x200 real photo crop, uint8 HxWx3."""
    with Image.open(SAMPLE) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built offline from a copy of the source tree (the build leaves files beside the sources)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in (*WHEEL_PACKAGES, "weights", "engines"):  # weights/runs/ included: the build must leave it out
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "--quiet", "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    (found,) = out.glob("*.whl")
    return found


@pytest.fixture(scope="session")
def litert_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny DyConvSR x2 with OpenVINO IR, INT8 and LiteRT files beside model.onnx."""
    import torch

    from export.artifact import ExportOptions, export_artifact
    from train.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("litert_artifact") / "dyconvsr_tiny_x2"
    options = ExportOptions(strategy="branches", extra_strategies=(), precisions=("int8",), openvino=("fp32", "int8"),
                            tensorrt=(), mobile_shape=LITERT_SHAPE, coreml=False, litert=("fp32", "int8"))
    manifest = export_artifact(create_model("dyconvsr_tiny", scale=2), folder, options)
    kinds = {v.kind for v in manifest.variants}
    if not {"litert", "openvino"} <= kinds:
        pytest.skip(f"this environment wrote no LiteRT or OpenVINO file ({manifest.notes.get('skipped')})")
    return folder


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real, nearly full file system: a 2 MiB tmpfs mounted for the test (root only), so writes
    meet a real ENOSPC in whichever process makes them. Skipped with the reason where mounting is
    not permitted."""
    mount_point = tmp_path / "full_disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a real full disk: {done.stderr.strip() or done.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk(mount_point: Path, leave: int = 0) -> None:
    """Fill the file system at mount_point but `leave` bytes (a file named .filler)."""
    stat = shutil.disk_usage(mount_point)
    size = max(stat.free - leave, 0)
    with open(mount_point / ".filler", "wb") as filler:
        try:
            filler.write(b"\0" * size)
        except OSError:
            pass
