"""Pixel-shuffle fusion (export/fusion.py) is provably equal to the unmodified network: PyTorch
and ONNX Runtime, every scale and lowering, odd sizes, batch 1 and 2; the artifact built with it
keeps a correct tiling split."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch

from export.artifact import ExportOptions, export_artifact
from export.fusion import PhaseBlur, SpaceToDepth, can_fuse, fuse_pixel_shuffle, fused_channel_order
from export.lowering import STRATEGIES, is_dynamic, lower
from export.onnx_export import export_onnx
from export.parity import EXPORT_RUNNER
from export.variants import model_spec
from runtime.check import check_artifact
from runtime.errors import UserError
from runtime.runners import make_runner
from train.models import SUPPORTED_SCALES, create_model, list_models, model_traits

MAX_ABS_DIFF = 1e-5
SHAPES = [(1, 3, 17, 23), (2, 3, 16, 21)]  # odd, and batch 2 with one odd side


def _model(name: str, scale: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(scale)
    return create_model(name, scale=scale, **kwargs).eval()


FUSABLE = [name for name in list_models() if model_traits(name).fuses_pixel_shuffle]
# Every fusable network (the published one, its static twin, the authors' exact form, ...) and two ablations.
FORMS = [*((name, {}) for name in FUSABLE), ("dyconvsr", {"head_activation": True}),
         ("dyconvsr", {"skip_order": "interleaved"})]


def _inputs(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape)))


@pytest.mark.parametrize("scale", SUPPORTED_SCALES)
def test_channel_order_is_a_permutation(scale: int) -> None:
    order = fused_channel_order(scale)
    assert sorted(order.tolist()) == list(range(12 * scale**2))


@pytest.mark.parametrize("name, kwargs", FORMS,
                         ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v.values())))
@pytest.mark.parametrize("scale", SUPPORTED_SCALES)
def test_fused_equals_unfused_in_pytorch(name: str, kwargs: dict, scale: int) -> None:
    model = _model(name, scale, **kwargs)
    fused = fuse_pixel_shuffle(model)
    strategies = STRATEGIES if is_dynamic(model) else {"static": None}
    with torch.no_grad():
        for shape in SHAPES:
            x = _inputs(shape)
            expected = model(x)
            for strategy in strategies:
                candidate = fused if strategy == "static" else lower(fused, strategy, batch=shape[0])
                got = candidate(x)
                assert got.shape == expected.shape == (shape[0], 3, scale * shape[2], scale * shape[3])
                diff = (got - expected).abs().max().item()
                assert diff <= MAX_ABS_DIFF, f"{name} x{scale} {strategy} {shape}: max|diff| {diff:.2e}"


def test_fusion_leaves_the_model_alone() -> None:
    model = _model("dyconvsr", 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fuse_pixel_shuffle(model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", [name for name in list_models() if name not in FUSABLE])
def test_fusion_refuses_other_networks(name: str) -> None:
    model = create_model(name)
    assert not can_fuse(model)
    with pytest.raises(UserError, match=f"applies to the DyConvSR models; got '{name}'"):
        fuse_pixel_shuffle(model)


@pytest.mark.parametrize("name", FUSABLE)
@pytest.mark.parametrize("scale", SUPPORTED_SCALES)
def test_fused_onnx_has_one_depth_to_space_and_matches_pytorch(tmp_path, name: str, scale: int) -> None:
    model = _model(name, scale)
    path = tmp_path / "fused.onnx"
    export_onnx(lower(fuse_pixel_shuffle(model), "stacked"), model_spec(True, 1), path)
    nodes = onnx.load(str(path)).graph.node
    shuffles = [n for n in nodes if n.op_type == "DepthToSpace"]
    assert len(shuffles) == 1
    # PixelUnshuffle became one SpaceToDepth shared by the head and the high-frequency branch (whose
    # blur runs on the LR/2 grid): no 6-D transpose, no full-resolution depthwise blur left.
    assert sum(n.op_type == "SpaceToDepth" for n in nodes) == 1
    assert not any(n.op_type == "Transpose" and "unshuffle" in n.name for n in nodes)
    assert not any(n.op_type == "Conv" and "blur" in n.name and "phase" not in n.name for n in nodes)
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in shuffles[0].attribute}
    assert attrs["blocksize"] == 2 * scale and attrs.get("mode", b"DCR") == b"CRD"
    with make_runner(path, EXPORT_RUNNER) as runner:
        for shape in SHAPES:
            x = _inputs(shape)
            with torch.no_grad():
                expected = model(x).numpy()
            got = runner.infer(x.numpy())
            assert np.abs(got - expected).max() <= MAX_ABS_DIFF


def test_artifact_fuses_by_default_and_tiling_stays_exact(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("dyconvsr_tiny", scale=3)
    options = ExportOptions(mobile_shape=None,
                            strategy="aggregate", extra_strategies=("stacked",), precisions=(), ort_format=False,
                            tensorrt=(), openvino=())
    manifest = export_artifact(model, tmp_path / "a", options)
    assert "pixel_shuffle_fusion" in manifest.notes
    assert manifest.tiling is not None and manifest.tiling.parity.passed
    report = check_artifact(tmp_path / "a")
    assert report.passed, report.table()
    assert any(row.name.startswith("tiled") or "tile" in row.name for row in report.rows), report.table()

    unfused = export_artifact(model, tmp_path / "b", dataclasses.replace(options, fuse_shuffle=False))
    assert "pixel_shuffle_fusion" not in unfused.notes


@pytest.mark.parametrize("mode", ["replicate", "reflect"])
@pytest.mark.parametrize("size", [5, 3])
@pytest.mark.parametrize("hw", [(2, 2), (4, 6), (8, 14), (36, 50)])
def test_phase_blur_is_the_full_resolution_blur_on_space_to_depth_channels(
        mode: str, size: int, hw: tuple[int, int]) -> None:
    from train.models.common import GaussianBlur

    if mode == "reflect" and min(hw) < 4:
        pytest.skip("PhaseBlur's reflect border reads two LR/2 pixels: 4 full-resolution pixels a side")
    blur = GaussianBlur(3, size=size, sigma=1.0, padding_mode=mode)
    x = torch.rand(2, 3, *hw)
    expected = SpaceToDepth(2)(blur(x))
    got = PhaseBlur(blur.kernel[0, 0], padding_mode=mode)(SpaceToDepth(2)(x))
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 1e-6
