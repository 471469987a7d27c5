"""The video path on a fixed-shape LiteRT file: fixed-size tiling with whole-image attention and the ``valid``
mask (runtime/fixed_tiling.py), the image path's code, at the file's own shape and above it, smoothing included."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_video import photo, run_infer

av = pytest.importorskip("av")
pytest.importorskip("litert_torch", reason="litert-torch not installed (the litert extra): no .tflite to build")
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed (the litert-runtime extra)")

from PIL import Image  # noqa: E402 - after the skips: optional extras

from runtime import Upscaler  # noqa: E402
from runtime.catalogue import litert_file  # noqa: E402
from runtime.video import PooledSmoother, SmoothingConfig, VideoReader  # noqa: E402
from runtime.video.clip import PannedClip, write_clip  # noqa: E402

SHAPE = (36, 48)  # the LiteRT file's fixed LR shape (H, W): more than twice the halo a side
TFLITE = litert_file(*SHAPE)


@pytest.fixture(scope="module")
def litert_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny DyConvSR x2 with model.onnx and the fp32 LiteRT file at SHAPE, tiling graphs for both."""
    import torch

    from export.artifact import ExportOptions, export_artifact
    from train.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("litert_video") / "dyconvsr_tiny_x2"
    options = ExportOptions(strategy="branches", extra_strategies=(), precisions=(), ort_format=False, openvino=(),
                            tensorrt=(), mobile_shape=SHAPE, coreml=False, litert=("fp32",))
    export_artifact(create_model("dyconvsr_tiny", scale=2), folder, options)
    if not (folder / TFLITE).is_file():
        pytest.skip(f"export wrote no {TFLITE} here")
    return folder


def frames_of(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p), dtype=np.int16) for p in sorted(folder.iterdir())]


@pytest.mark.parametrize("size", [(48, 36), (80, 58)], ids=["own-shape", "tiled"])
def test_litert_video_equals_onnx_with_and_without_smoothing(litert_artifact: Path, size: tuple[int, int],
                                                             tmp_path: Path) -> None:
    pan = PannedClip(photo(), 2, size, 5, step=(3, 2))
    clip = write_clip(tmp_path / "pan.mp4", pan.lr_frames(), 25)
    for smooth in ("0", "0.5"):
        outputs = {}
        for name, variant in (("onnx", "model.onnx"), ("litert", TFLITE)):
            out = tmp_path / f"{name}-{smooth}"
            code, err = run_infer(litert_artifact, clip, "-o", out, "-q", "--variant", variant, "--smooth", smooth,
                                  "--video-format", "frames", "--format", "png")
            assert code == 0, err
            outputs[name] = frames_of(out / "pan_x2")
        assert len(outputs["litert"]) == len(outputs["onnx"]) == 5
        assert outputs["litert"][0].shape == (size[1] * 2, size[0] * 2, 3)
        for litert, onnx in zip(outputs["litert"], outputs["onnx"], strict=True):
            assert np.abs(litert - onnx).max() <= 1  # fp32 parity 1e-4: at most a rounding step apart


def test_litert_planar_matches_onnx_tiled_and_smoothed(litert_artifact: Path, tmp_path: Path) -> None:
    pan = PannedClip(photo(), 2, (80, 58), 4, step=(3, 2))
    clip = write_clip(tmp_path / "pan.mp4", pan.lr_frames(), 25, tone_hz=None)
    with VideoReader(clip) as reader:
        frames = [item.planes for item in reader.items() if hasattr(item, "planes")]
    results = {}
    with Upscaler(litert_artifact, variant=TFLITE) as litert, Upscaler(litert_artifact) as onnx:
        assert litert.fixed_tiling and litert.plan(58, 80) == []  # above its shape: fixed-size tiles
        for name, upscaler in (("litert", litert), ("onnx", onnx)):
            smoother = PooledSmoother(SmoothingConfig(0.8))
            per_frame, smoothed = [], []
            for planes in frames:
                per_frame.append(upscaler.upscale_planar(planes))
                smoother.next_frame(planes)
                smoothed.append(upscaler.upscale_planar(planes, adjust_pooled=smoother.adjust))
            results[name] = (per_frame, smoothed)
    for kind in range(2):
        for a, b in zip(results["litert"][kind], results["onnx"][kind], strict=True):
            assert a.shape == (3, 116, 160) and np.abs(a - b).max() <= 1e-4
    assert max(np.abs(a - b).max() for a, b in zip(*results["litert"], strict=True)) > 0  # smoothing acted
