"""Seamless tiling and exact output sizes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.errors import UserError
from runtime.tiling import plan_tiles
from runtime.upscaler import Upscaler


@pytest.mark.parametrize("height,width,tile,halo,align", [(37, 53, 16, 5, 2), (10, 10, 64, 3, 1), (31, 7, 4, 14, 2)])
def test_tile_cores_cover_the_image_exactly_once(height: int, width: int, tile: int, halo: int, align: int) -> None:
    owner = np.zeros((height, width), dtype=int)
    for t in plan_tiles(height, width, tile, halo, align):
        owner[t.cy0 : t.cy1, t.cx0 : t.cx1] += 1
        assert t.cy0 % align == 0 and t.cx0 % align == 0 and t.y0 % align == 0 and t.x0 % align == 0
        assert t.y0 == 0 or t.cy0 - t.y0 >= halo
        assert t.x1 == width or t.x1 - t.cx1 >= halo
        assert t.cy1 - t.cy0 <= max(tile, align)
    assert (owner == 1).all()


def _tiled_vs_untiled(artifact, image: np.ndarray, tile: int, batch: int = 1) -> float:
    with Upscaler(artifact, tile=0) as whole:
        reference = whole.upscale_array(image)
    with Upscaler(artifact, tile=tile, batch=batch) as tiled:
        assert tiled.plan(*image.shape[:2]) is not None and len(tiled.plan(*image.shape[:2])) >= 4
        result = tiled.upscale_array(image)
    assert result.shape == reference.shape
    return float(np.abs(result - reference).max())


@pytest.mark.parametrize("tile,batch", [(32, 1), (50, 3)])
def test_tiled_equals_untiled_on_a_real_odd_sized_image(dy_artifact, sample_rgb, tile: int, batch: int) -> None:
    image = sample_rgb[:163, :117].astype(np.float32) / 255  # odd x odd, several tiles each way
    assert _tiled_vs_untiled(dy_artifact, image, tile, batch) <= 1e-4


def test_tiled_equals_untiled_with_two_chained_dynamic_layers(dcnn_artifact, sample_rgb) -> None:
    image = sample_rgb[:61, :47].astype(np.float32) / 255
    assert _tiled_vs_untiled(dcnn_artifact, image, 16, batch=2) <= 1e-4


def test_tiled_equals_untiled_for_the_real_size_network(real_artifact, sample_rgb) -> None:
    image = sample_rgb[:, :199].astype(np.float32) / 255  # 200 x 199
    assert _tiled_vs_untiled(real_artifact, image, 64) <= 1e-4


def test_tiles_get_whole_image_attention_not_their_own(dy_artifact, sample_rgb) -> None:
    """Control: per-tile statistics (what a naive tiler does) really would leave seams."""
    from runtime.tiling import pooled_statistics

    image = sample_rgb[:96, :96].astype(np.float32) / 255
    with Upscaler(dy_artifact, tile=32) as up:
        stats, _ = up._tiling()
        tiles = plan_tiles(96, 96, 32, up.tiling.halo, up.tiling.align)

        def read(group: list) -> np.ndarray:
            return np.stack([image[t.y0 : t.y1, t.x0 : t.x1] for t in group]).transpose(0, 3, 1, 2).copy()

        whole = pooled_statistics(read, tiles, up.tiling, stats)[0]
        corner = pooled_statistics(read, tiles[:1], up.tiling, stats)[0]
    assert np.abs(whole - corner).max() > 1e-3


@pytest.mark.parametrize("height,width", [(1, 1), (1, 2), (2, 1), (7, 9), (13, 17), (31, 7), (97, 101)])
@pytest.mark.parametrize("fixture", ["dy_artifact", "dcnn_artifact"])
def test_output_is_exactly_scale_times_input(request, fixture: str, height: int, width: int) -> None:
    artifact = request.getfixturevalue(fixture)
    rng = np.random.default_rng(height * 1000 + width)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    with Upscaler(artifact, tile=24) as up:  # 97x101 is tiled, the others are not
        result = up.upscale(image)
    assert result.size == (width * up.scale, height * up.scale)
    assert result.mode == "RGB"


def test_min_size_refuses_clearly(dy_artifact) -> None:
    with Upscaler(dy_artifact, min_size=8) as up, pytest.raises(UserError, match=r"image is 5x4; .* at least 8x8"):
        up.upscale(Image.new("RGB", (5, 4)))


def test_bare_engine_measures_its_scale_and_refuses_to_tile(dcnn_artifact, tmp_path) -> None:
    import shutil

    engine = tmp_path / "copied.onnx"
    shutil.copy(dcnn_artifact / "model.onnx", engine)
    with Upscaler(engine, tile=16) as up:
        assert up.scale == 3 and up.tiling is None
        assert up.upscale(Image.new("RGB", (9, 7))).size == (27, 21)
        with pytest.raises(UserError, match=r"image 17x5 exceeds --tile 16, "
                                            r"and seamless tiling needs the artifact's tiling graphs"):
            up.upscale(Image.new("RGB", (17, 5)))


def test_a_variant_file_inside_the_artifact_uses_its_manifest(dy_artifact) -> None:
    with Upscaler(dy_artifact / "model.onnx", tile=16) as up:
        assert up.choice.manifest is not None and up.tiling is not None
        assert up.upscale(Image.new("RGB", (40, 20))).size == (80, 40)


def test_fixed_shape_engine_stays_exact_for_other_sizes(dy_artifact, tmp_path, sample_rgb) -> None:
    import json
    import shutil

    import onnx

    from runtime.files import sha256_file

    artifact = tmp_path / "fixed"
    shutil.copytree(dy_artifact, artifact)
    graph = onnx.load(str(artifact / "model.onnx"))
    for dim, value in zip(graph.graph.input[0].type.tensor_type.shape.dim, (1, 3, 24, 20), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    onnx.save(graph, str(artifact / "model.fixed.onnx"))
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["variants"].append({**manifest["variants"][0], "file": "model.fixed.onnx", "dynamic_batch": False,
                                 "dynamic_spatial": False, "fixed_input_shape": [1, 3, 24, 20], "batch": 1})
    manifest["files"]["model.fixed.onnx"] = sha256_file(artifact / "model.fixed.onnx")
    (artifact / "manifest.json").write_text(json.dumps(manifest))

    with Upscaler(artifact, tile=0) as dynamic, Upscaler(artifact, variant="model.fixed.onnx") as fixed:
        assert fixed.engine.inputs[0].shape == (1, 3, 24, 20)
        for height, width in [(24, 20), (17, 13), (31, 45)]:
            image = sample_rgb[:height, :width].astype(np.float32) / 255
            on_engine = fixed.plan(height, width) is None
            assert on_engine == ((height, width) == (24, 20))  # other sizes go through the tiling graphs
            assert np.abs(fixed.upscale_array(image) - dynamic.upscale_array(image)).max() <= 1e-4
    bare = tmp_path / "bare.onnx"
    shutil.copy(artifact / "model.fixed.onnx", bare)
    with Upscaler(bare) as up:  # no tiling graphs: padded up to 24x20, cropped back
        assert up.upscale(Image.new("RGB", (13, 17))).size == (26, 34)
        with pytest.raises(UserError, match="exceeds the engine's largest input 20x24"):
            up.upscale(Image.new("RGB", (21, 10)))


def test_a_tiling_graph_that_fails_to_load_closes_the_ones_already_open(dy_artifact, tmp_path, monkeypatch) -> None:
    import shutil

    import runtime.upscaler as upscaler_module
    from runtime.runners import make_runner

    artifact = tmp_path / "broken"
    shutil.copytree(dy_artifact, artifact)
    main = artifact / "tiling" / "main.onnx"
    main.write_bytes(main.read_bytes()[:300])  # a truncated graph: the second tiling runner cannot load
    opened = []

    def recording(*args, **kwargs):
        opened.append(make_runner(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(upscaler_module, "make_runner", recording)
    with Upscaler(artifact, tile=16) as up:
        with pytest.raises(UserError, match="main.onnx: ONNX Runtime cannot load it"):
            up.upscale_array(np.zeros((40, 40, 3), np.float32))
        engine, stats, failed = opened
        assert [Path(r.path).name for r in opened] == ["model.onnx", "stats_0.onnx", "main.onnx"]
        assert not stats.is_open and stats.session is None  # released, not left behind
        assert not failed.is_open and up._tiling_runners is None
        assert engine.is_open  # the untiled engine is the Upscaler's, still in use
        assert up.upscale_array(np.zeros((12, 12, 3), np.float32)).shape == (24, 24, 3)
    assert not engine.is_open
