"""Export: every model x strategy x batch x odd/even size matches PyTorch in ONNX Runtime; the
artifact folder is complete, hashed, atomic; the tiling split reproduces the untiled output."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import types

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from export.artifact import ExportOptions, export_artifact
from export.cli import main as export_cli
from export.lowering import STRATEGIES, lower
from export.references import center_crop, skimage_rgb
from runtime.manifest import Tiling, read_manifest, verify_files
from runtime.runners import make_runner
from runtime.tiling import upscale_tiled
from train.checkpoint import save_checkpoint
from train.models import create_model, set_formulation

MODELS = [("dyconvsr_tiny", {}), ("dcnn_tiny", {}), ("srcnn_tiny", {}), ("dyconvsr", {"scale": 2}),
          ("dcnn_tiny", {"scale": 3}),
          # the authors' exact form (reflect-padded blur, interleaved skip), as imported, and a tiny x3 one
          ("dyconvsr_authors", {"scale": 2}), ("dyconvsr_authors", {"scale": 3, "channels": 8, "num_kernels": 2})]
ALL_STRATEGIES = tuple(STRATEGIES)


def _id(entry) -> str:
    name, kwargs = entry
    return name + "".join(f"-{k}{v}" for k, v in kwargs.items())


@pytest.fixture(scope="module", params=MODELS, ids=_id)
def exported(request, tmp_path_factory):
    name, kwargs = request.param
    torch.manual_seed(1)
    model = create_model(name, **kwargs)
    folder = tmp_path_factory.mktemp("artifacts") / _id(request.param)
    # Reduced precision, .ort and plans are covered by test_export_variants.py / _tensorrt.py, the fixed-shape
    # mobile files by test_ort_mobile.py / test_coreml.py / test_litert.py.
    options = ExportOptions(strategy="branches", extra_strategies=ALL_STRATEGIES, precisions=(), ort_format=False,
                            tensorrt=(), openvino=(), mobile_shape=None)
    manifest = export_artifact(model, folder, options)
    return model, folder, manifest


def _crop_batch(names: tuple[str, ...], height: int, width: int, offset: int = 30) -> np.ndarray:
    """Real image crops (not the reference crops: different images, offsets and sizes)."""
    return np.stack([center_crop(skimage_rgb(n)[offset:, offset:], height, width) for n in names])


def _torch_reference(model: torch.nn.Module, batch: np.ndarray) -> np.ndarray:
    # The model as trained: the batch-folded "grouped" formulation, not an export lowering.
    with torch.no_grad():
        return set_formulation(model, "grouped")(torch.from_numpy(batch)).numpy()


SIZES = [(18, 26), (19, 25)]  # even and odd


@pytest.mark.parametrize("hw", SIZES, ids=["even", "odd"])
@pytest.mark.parametrize("batch", [1, 2])
def test_every_variant_matches_pytorch(exported, batch: int, hw: tuple[int, int]) -> None:
    model, folder, manifest = exported
    images = _crop_batch(("rocket", "astronaut")[:batch], *hw)
    expected = _torch_reference(model, images)
    assert expected.shape == (batch, 3, hw[0] * model.scale, hw[1] * model.scale)
    checked = 0
    strategies = set()
    for variant in manifest.variants:
        if not variant.dynamic_batch and variant.batch != batch:
            continue
        session = ort.InferenceSession(str(folder / variant.file), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"input": images})
        assert got.shape == expected.shape, variant.file
        assert np.abs(got - expected).max() <= 1e-4, variant.file
        checked += 1
        strategies.add(variant.strategy)
    assert checked >= 1
    if model.config.name != "srcnn_tiny":  # a static model has one graph; dynamic ones every strategy
        assert strategies == set(ALL_STRATEGIES) if batch == 1 else strategies >= {"branches", "stacked"}


def test_fixed_batch_strategies_exported_for_batch_two(tmp_path) -> None:
    model = create_model("dyconvsr_tiny")
    manifest = export_artifact(model, tmp_path / "a", ExportOptions(mobile_shape=None,
                                                                    strategy="aggregate", batch=2, tiling=False,
                                                                    precisions=(), ort_format=False, tensorrt=(),
                                                                    openvino=()))
    variant = manifest.default
    assert (variant.dynamic_batch, variant.batch) == (False, 2)
    images = _crop_batch(("coffee", "chelsea"), 21, 16)
    session = ort.InferenceSession(str(tmp_path / "a" / variant.file), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": images})
    assert np.abs(got - _torch_reference(model, images)).max() <= 1e-4
    # The fixed batch is real: a batch of one is refused by the graph itself.
    with pytest.raises(Exception, match="input"):
        session.run(None, {"input": images[:1]})


def test_manifest_describes_the_folder(exported) -> None:
    model, folder, manifest = exported
    reread = read_manifest(folder)
    assert json.loads(json.dumps(reread.to_dict())) == json.loads((folder / "manifest.json").read_text())
    assert reread.scale == model.scale and reread.model_name == model.config.name
    assert verify_files(folder, reread) == []
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(reread.files) == on_disk
    assert {"torch", "onnx", "onnxruntime", "onnxsim"} <= set(reread.versions)
    default = onnx.load(str(folder / "model.onnx"))
    dims = [d.dim_param or d.dim_value for d in default.graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1] == 3 and isinstance(dims[2], str) and isinstance(dims[3], str)
    assert all(v.parity.passed and v.parity.tolerance == {"max_abs_diff": 1e-4} for v in reread.variants)
    web = reread.notes["web"]  # what the browser page runs: these files as written, with their parity above
    assert web["engine"] == "model.onnx" and web["tiling"] == [*reread.tiling.stats, reread.tiling.main]
    assert web["runtime"].startswith("onnxruntime-web ") and web["extra_files"] == []
    shapes = [tuple(r.input_shape) for r in reread.references]
    assert any(s[0] == 2 for s in shapes) and any(s[2] % 2 or s[3] % 2 for s in shapes)
    for ref in reread.references:
        x, y = np.load(folder / ref.input), np.load(folder / ref.output)
        assert x.dtype == y.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
        np.testing.assert_allclose(_torch_reference(model, x), y, atol=1e-6)


def test_tampered_file_is_reported(exported, tmp_path) -> None:
    _, folder, manifest = exported
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    (copy / manifest.references[0].input).unlink()
    problems = verify_files(copy, manifest)
    assert any(p.startswith("model.onnx:") for p in problems)
    assert any(p.startswith(manifest.references[0].input) and "missing" in p for p in problems)


def _runtime_tiled(folder, tiling: Tiling, scale: int, image: np.ndarray, tile: int) -> np.ndarray:
    """A (1, 3, H, W) image through runtime/tiling.py (the tiler devices run) on the artifact's graphs."""
    with contextlib.ExitStack() as stack:
        stats = [stack.enter_context(make_runner(folder / f)) for f in tiling.stats]
        main = stack.enter_context(make_runner(folder / tiling.main))
        out = upscale_tiled(np.ascontiguousarray(image[0].transpose(1, 2, 0)), tiling, stats, main, scale, tile)
    return out.transpose(2, 0, 1)[None]


def _untiled(folder, image: np.ndarray) -> np.ndarray:
    with make_runner(folder / "model.onnx") as runner:
        return runner.infer(image)


@pytest.mark.parametrize("core_factor", [3, 5])
def test_tiled_equals_untiled(exported, core_factor: int) -> None:
    model, folder, manifest = exported
    tiling = manifest.tiling
    assert len(tiling.stats) == len(tiling.pooled_inputs) == len(tiling.pooled_channels)
    image = _crop_batch(("coffee",), 37, 45)  # odd in both directions
    core = tiling.align * core_factor
    assert core < 37 and core < 45  # tiles smaller than the image in both directions
    tiled = _runtime_tiled(folder, tiling, model.scale, image, core)
    assert np.abs(tiled - _untiled(folder, image)).max() <= 1e-4
    assert np.abs(tiled - _torch_reference(model, image)).max() <= 1e-4
    # Export certified the graphs with the same tiler: a reference tiled against its PyTorch output.
    assert tiling.parity is not None and tiling.parity.passed and tiling.parity.max_abs_diff <= 1e-4


def test_tiling_layout_per_model(exported) -> None:
    model, folder, manifest = exported
    tiling = manifest.tiling
    name = model.config.name
    if name.startswith("dyconvsr"):
        assert len(tiling.stats) == 1 and tiling.feature_scale == 0.5 and tiling.align == 2
    elif name.startswith("dcnn"):
        assert len(tiling.stats) == 2 and tiling.feature_scale == model.scale and tiling.align == 1
        inputs = [i.name for i in onnx.load(str(folder / tiling.stats[1])).graph.input]
        assert inputs == ["input", "pooled_0"]
    else:
        assert tiling.stats == [] and tiling.pooled_inputs == []
    assert tiling.halo > 0 and tiling.halo % tiling.align == 0


def test_halo_too_small_shows_seams(exported) -> None:
    """The halo is not decorative: half of it makes the tiled output differ."""
    model, folder, manifest = exported
    tiling = manifest.tiling
    image = _crop_batch(("coffee",), 37, 45)
    small = max(0, tiling.halo // 2 // tiling.align * tiling.align)
    tiled = _runtime_tiled(folder, dataclasses.replace(tiling, halo=small), model.scale, image, tiling.align * 3)
    assert np.abs(tiled - _untiled(folder, image)).max() > 1e-4


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((1, 4, 16, 16), np.float32), "index: 1 Got: 4 Expected: 3"),
        (np.zeros((3, 16, 16), np.float32), "Invalid rank"),
        (np.zeros((1, 3, 16, 16), np.float64), "tensor\\(double\\)"),
    ],
    ids=["channels", "rank", "dtype"],
)
def test_wrong_input_fails_clearly(exported, bad: np.ndarray, message: str) -> None:
    _, folder, _ = exported
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match=message):
        session.run(None, {"input": bad})


class _Interrupt(Exception):
    pass


def test_interrupted_export_leaves_nothing_valid(tmp_path, monkeypatch) -> None:
    import export.artifact as artifact

    model = create_model("dyconvsr_tiny")
    quick = {"strategy": "branches", "precisions": (), "ort_format": False, "tensorrt": (), "openvino": ()}
    good = export_artifact(model, tmp_path / "a", ExportOptions(mobile_shape=None, tiling=False, **quick))
    before = (tmp_path / "a" / "manifest.json").read_bytes()

    def boom(*args, **kwargs):
        raise _Interrupt("simulated crash after the ONNX graphs were written")

    monkeypatch.setattr(artifact, "_export_tiling", boom)
    with pytest.raises(_Interrupt):
        export_artifact(model, tmp_path / "a", ExportOptions(mobile_shape=None, **quick))
    with pytest.raises(_Interrupt):
        export_artifact(model, tmp_path / "b", ExportOptions(mobile_shape=None, **quick))
    assert not (tmp_path / "b").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temp folders left behind
    assert (tmp_path / "a" / "manifest.json").read_bytes() == before  # the old artifact is intact
    assert verify_files(tmp_path / "a", good) == []


def test_cli_exports_a_checkpoint_and_prints_summary(tmp_path) -> None:
    save_checkpoint(tmp_path / "w" / "tiny_x2", create_model("dyconvsr_tiny"))
    result = CliRunner().invoke(export_cli, [str(tmp_path / "w" / "tiny_x2.json"), "-o", str(tmp_path / "out"),
                                             "--strategy", "branches", "--also", "aggregate", "--no-ort",
                                             "--no-tensorrt", "--no-mobile"])
    assert result.exit_code == 0, result.output
    assert "model.aggregate.onnx" in result.output and "tiling" in result.output
    assert "auto chose" not in result.output
    assert verify_files(tmp_path / "out" / "tiny_x2", read_manifest(tmp_path / "out" / "tiny_x2")) == []


def test_cli_without_shipped_weights_exports_untrained(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("export.cli.shipped_checkpoints", lambda: [])  # an install without weights/
    result = CliRunner().invoke(export_cli, ["--no-tiling", "--no-reduced", "--no-ort", "--no-tensorrt", "--no-mobile"])
    assert result.exit_code == 0, result.output
    assert "UNTRAINED" in result.output
    assert "auto chose" in result.output  # the default model.onnx is the fastest lowering, timed here
    notes = read_manifest(tmp_path / "artifacts" / "dyconvsr_x2_untrained").notes
    assert notes.pop("untrained") is True and set(notes) == {"pixel_shuffle_fusion", "auto", "recipe", "web"}


def test_cli_litert_and_mobile_options(monkeypatch) -> None:
    seen = []
    monkeypatch.setattr("export.cli.resolve_source", lambda source: types.SimpleNamespace(path=source, name="x"))
    monkeypatch.setattr("export.cli.export_artifact", lambda source, target, options, progress: seen.append(options))
    monkeypatch.setattr("export.cli.artifact_name", lambda checkpoint: "x")
    monkeypatch.setattr("export.cli.print_summary", lambda folder, manifest: None)
    monkeypatch.setattr("export.cli.parity_failed", lambda manifest: False)
    for args in (["--no-litert"], ["--mobile-shape", "24", "32"]):
        assert CliRunner().invoke(export_cli, ["dyconvsr_x2", "-q", *args]).exit_code == 0
    assert seen[0].litert == () and seen[0].mobile_shape == ExportOptions().mobile_shape  # LiteRT off, mobile kept
    assert seen[1].mobile_shape == (24, 32) and seen[1].litert == ExportOptions().litert
    help_text = " ".join(CliRunner().invoke(export_cli, ["--help"]).output.split())
    assert "--no-litert" in help_text and "fixed LR tile shape" in help_text and "LiteRT .tflite" in help_text


@pytest.mark.parametrize("args, message", [
    (["missing.json"], "missing.json not found"),
    (["--strategy", "nope"], "nope"),
])
def test_cli_user_errors_are_one_line(tmp_path, monkeypatch, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(export_cli, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_lowering_does_not_touch_the_loaded_model() -> None:
    model = create_model("dcnn_tiny")
    forwards = [type(m).forward for m in model.modules()]
    lowered = lower(model, "aggregate")
    assert "forward" not in vars(model.conv2) and "forward" in vars(lowered.conv2)
    assert [type(m).forward for m in model.modules()] == forwards


@pytest.mark.parametrize("strategy", ["aggregate", "stacked"])
def test_every_gelu_reaches_onnx_runtime_fusable(strategy: str, tmp_path) -> None:
    """onnxsim must not fold GELU's "* 0.5" into the next conv: ONNX Runtime then fuses both GELUs
    of the published DyConvSR (after the dynamic conv and in the high-frequency branch; none after
    the head) into Gelu kernels and no Erf is left to run element by element."""
    model = create_model("dyconvsr", scale=2)
    export_options = ExportOptions(mobile_shape=None,
                                   strategy=strategy, extra_strategies=(), precisions=(), ort_format=False,
                                   tensorrt=(), tiling=False, openvino=())
    manifest = export_artifact(model, tmp_path / "a", export_options)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(tmp_path / "a" / manifest.default_variant), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]
    assert ops.count("Gelu") == 2 and "Erf" not in ops
