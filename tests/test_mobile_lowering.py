"""The mobile lowering (export/mobile.py): equal to the network, fixed even shapes, and seamless through
fixed-size tiles with masks (runtime/fixed_tiling.py) at odd and even image sizes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from export.lowering import lower
from export.mobile import MobileDyConvSR, MobileTilingMain, MobileTilingStats, depth_to_space_dcr, mobile_module
from export.tiling import geometry
from runtime.errors import UserError
from runtime.fixed_tiling import plan_fixed_tiles, spans, upscale_fixed_tiled
from runtime.manifest import Tiling
from runtime.runners import Runner, TensorInfo
from train.models import create_model


def _model(scale: int) -> nn.Module:
    torch.manual_seed(scale)
    model = create_model("dyconvsr_tiny", scale=scale).eval()
    with torch.no_grad():  # away from the initialisation, so every branch matters
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_mobile_module_equals_the_network(scale: int) -> None:
    model = _model(scale)
    x = torch.rand(1, 3, 18, 26)
    with torch.no_grad():
        assert (mobile_module(model, (18, 26))(x) - model(x)).abs().max() <= 1e-5


def test_depth_to_space_dcr_is_onnx_dcr_order() -> None:
    x = torch.arange(2 * 16 * 3 * 5, dtype=torch.float32).reshape(2, 16, 3, 5)
    block, colours = 2, 4
    expected = x.reshape(2, block, block, colours, 3, 5).permute(0, 3, 4, 1, 5, 2).reshape(2, colours, 6, 10)
    assert torch.equal(depth_to_space_dcr(x, block), expected)


@pytest.mark.parametrize("shape", [(17, 26), (9, 10), (0, 2)])
def test_refuses_odd_or_empty_fixed_shapes(shape: tuple[int, int]) -> None:
    with pytest.raises(UserError, match="fixed even input shape"):
        mobile_module(_model(2), shape)


def test_refuses_the_wrong_input_size() -> None:
    with pytest.raises(UserError, match="fixed at 16x20"):
        mobile_module(_model(2), (16, 20))(torch.rand(1, 3, 16, 22))


def test_exported_onnx_graph_is_phone_friendly(tmp_path) -> None:
    import onnx

    path = tmp_path / "mobile.onnx"
    module = MobileTilingMain(MobileDyConvSR(_model(2), (16, 20)))
    example = (torch.rand(1, 3, 16, 20), torch.rand(1, 8), torch.ones(1, 1, 8, 10))
    torch.onnx.export(module, example, path, opset_version=17, dynamo=False,
                      input_names=["input", "pooled_0", "valid"])
    graph = onnx.shape_inference.infer_shapes(onnx.load(path)).graph
    ops = {node.op_type for node in graph.node}
    assert not ops & {"Gather", "GatherElements", "Pad", "Shape", "Mod", "SpaceToDepth"}, ops
    # The exact rewrites the NNAPI / Core ML delegates need (export/mobile.py): GELU's Erf is all that is left.
    assert not ops & {"ReduceMax", "ReduceMean", "Unsqueeze", "Flatten"}, ops
    assert "MaxPool" in ops
    assert [n.attribute[1].s for n in graph.node if n.op_type == "DepthToSpace"] == [b"DCR"]
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    assert all(n.input[1] in constants for n in graph.node if n.op_type == "Conv")  # constant conv weights
    ranks = [len(v.type.tensor_type.shape.dim) for v in graph.value_info]
    assert ranks and max(ranks) <= 5


class TorchRunner(Runner):
    """A fixed-shape tiling graph run by PyTorch behind the runtime's Runner interface."""

    def __init__(self, module: nn.Module, names: list[str], shapes: list[tuple[int, ...]]) -> None:
        super().__init__("torch", None)  # type: ignore[arg-type]
        self.module, self.names, self.shapes = module, names, shapes

    def _load(self) -> None:
        self.inputs = [TensorInfo(n, s, np.dtype(np.float32)) for n, s in zip(self.names, self.shapes, strict=True)]
        self.outputs = [TensorInfo("output", (None,), np.dtype(np.float32))]

    def _unload(self) -> None:
        pass

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            return [self.module(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()]

    @property
    def description(self) -> str:
        return "torch"


@pytest.mark.parametrize("size", [(13, 17), (40, 37), (81, 98), (36, 44)])
def test_fixed_tiles_with_masks_equal_the_whole_image(size: tuple[int, int]) -> None:
    model = _model(2)
    geo = geometry(lower(model, "stacked"), 2)
    tile = (36, 44)  # more than twice the halo (14) a side
    mobile = MobileDyConvSR(model, tile, pooled=True)
    image_shape, valid_shape = (1, 3, *tile), (1, 1, tile[0] // 2, tile[1] // 2)
    stats = TorchRunner(MobileTilingStats(mobile), ["input", "valid"], [image_shape, valid_shape]).open()
    main = TorchRunner(MobileTilingMain(mobile), ["input", "pooled_0", "valid"],
                       [image_shape, (1, geo.pooled_channels[0]), valid_shape]).open()
    tiling = Tiling(["stats"], "main", ["pooled_0"], geo.pooled_channels, geo.feature_scale, geo.halo, geo.align,
                    valid_input="valid")
    image = np.random.default_rng(1).random((*size, 3), dtype=np.float32)
    tiled = upscale_fixed_tiled(image, tiling, [stats], main, 2)
    with torch.no_grad():
        whole = model(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()))[0].numpy().transpose(1, 2, 0)
    assert tiled.shape == whole.shape
    assert np.abs(tiled - whole).max() <= 1e-4


def test_fixed_tile_plan_covers_every_pixel_once() -> None:
    for length in (1, 10, 24, 25, 47, 48, 49, 200):
        cores = spans(length, 24, 6, 2)
        assert cores[0][1] == 0 and cores[-1][2] == length
        assert all(a[2] == b[1] for a, b in zip(cores, cores[1:], strict=False))
        assert all(start <= core - (6 if core else 0) and core_end <= start + 24 for start, core, core_end in cores)
    assert {t.shape for t in plan_fixed_tiles(100, 70, (24, 32), 6, 2)} == {(24, 32)}
    with pytest.raises(UserError, match="twice the halo"):
        spans(50, 12, 6, 2)
