"""The published DyConvSR and the authors' code: activations, the compatibility network, and
`python -m train import-checkpoint` for what their PyTorch Lightning trainer writes.

The authors' layout below is written from their model/arch.py's layer list (names and shapes);
``authors_forward`` is an independent functional re-derivation of their forward (reflect-padded
torchvision-style blur, ``torch.cat((x,) * 4)`` skip, softmax temperature 30), not their code.
"""
from __future__ import annotations

import collections
import fractions
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch.overrides import TorchFunctionMode

from export.references import center_crop, skimage_rgb
from train.authors import import_authors_checkpoint
from train.checkpoint import load_checkpoint
from train.cli import main as train_cli
from train.models import create_model

# Key -> shape of the authors' x2 network with num_feats=32, K=4, ratio=4 (their config.py).
AUTHORS_X2 = {
    "head.0.weight": (32, 12, 3, 3),
    "head.0.bias": (32,),
    "body.0.attention.net.0.weight": (8, 32, 1, 1),
    "body.0.attention.net.2.weight": (4, 8, 1, 1),
    "body.0.weight": (4, 32, 32, 3, 3),
    "body.0.bias": (4, 32),
    "tail.0.weight": (48, 32, 3, 3),
    "tail.0.bias": (48,),
    "hsb.0.weight": (48, 12, 3, 3),
    "hsb.0.bias": (48,),
    "spatial_attention.conv1.weight": (1, 2, 7, 7),
}


def authors_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=generator) * 0.1 for k, shape in AUTHORS_X2.items()}


def authors_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """DyConvSR x2 as the authors' code computes it, from first principles."""
    coords = torch.linspace(-2, 2, 5)
    g = torch.exp(-0.5 * coords**2)
    g = g / g.sum()
    blur = torch.outer(g, g).expand(3, 1, 5, 5)
    high = x - F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), blur, groups=3)
    feat = F.conv2d(F.pixel_unshuffle(x, 2), sd["head.0.weight"], sd["head.0.bias"], padding=1)
    logits = F.conv2d(F.relu(F.conv2d(feat.mean((2, 3), keepdim=True), sd["body.0.attention.net.0.weight"])),
                      sd["body.0.attention.net.2.weight"]).flatten(1)
    attention = torch.softmax(logits / 30.0, dim=1)
    outs = []
    for b in range(x.shape[0]):
        weight = torch.einsum("k,koihw->oihw", attention[b], sd["body.0.weight"])
        bias = attention[b] @ sd["body.0.bias"]
        outs.append(F.conv2d(feat[b : b + 1], weight, bias, padding=1))
    feat = F.gelu(torch.cat(outs))
    feat = F.conv2d(feat, sd["tail.0.weight"], sd["tail.0.bias"], padding=1)
    feat = feat + F.gelu(F.conv2d(F.pixel_unshuffle(high, 2), sd["hsb.0.weight"], sd["hsb.0.bias"], padding=1))
    stats = torch.cat([feat.mean(1, keepdim=True), feat.amax(1, keepdim=True)], dim=1)
    feat = feat * torch.sigmoid(F.conv2d(stats, sd["spatial_attention.conv1.weight"], padding=3))
    return F.pixel_shuffle(F.pixel_shuffle(feat, 2) + torch.cat((x, x, x, x), dim=1), 2)


def photo_batch(names: tuple[str, ...], height: int, width: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([center_crop(skimage_rgb(n), height, width) for n in names]))


class _Calls(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def _trace(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], _Calls]:
    """Run ``model`` once, recording the head conv's output, the body's input and every torch call."""
    seen: dict[str, torch.Tensor] = {}
    model.eval().head.register_forward_hook(lambda m, i, o: seen.__setitem__("head", o))
    model.body.register_forward_pre_hook(lambda m, i: seen.__setitem__("body", i[0]))
    calls = _Calls()
    with torch.no_grad(), calls:
        model(torch.rand(1, 3, 12, 16))
    return seen, calls


@pytest.mark.parametrize("name", ["dyconvsr", "dyconvsr_static", "dyconvsr_authors"])
@pytest.mark.parametrize("scale", [2, 4])
def test_default_network_has_exactly_the_published_activations(name: str, scale: int) -> None:
    # GELU after the dynamic (or static) conv and in the high-frequency branch, nothing after the
    # head: the body's input is the head conv's output itself.
    seen, calls = _trace(create_model(name, scale=scale))
    assert seen["body"] is seen["head"]
    assert calls.names.count("gelu") == 2
    # the attention MLP's ReLU is the only other activation (the static twin has none)
    others = [n for n in calls.names if n in ("relu", "silu", "leaky_relu", "prelu", "tanh", "elu", "hardswish")]
    assert others == (["relu"] if name != "dyconvsr_static" else [])


def test_head_activation_switch_adds_the_pre_correction_gelu() -> None:
    seen, calls = _trace(create_model("dyconvsr", scale=2, head_activation=True))
    assert calls.names.count("gelu") == 3
    torch.testing.assert_close(seen["body"], F.gelu(seen["head"]), rtol=0, atol=0)


def test_v1_checkpoints_keep_their_head_gelu(tmp_path) -> None:
    # A checkpoint written before the correction rebuilds the network it was trained as.
    import json

    from train.checkpoint import save_checkpoint

    model = create_model("dyconvsr_tiny", head_activation=True)
    path = save_checkpoint(tmp_path / "old", model)
    document = json.loads(path.read_text())
    document["format"] = "dyconvsr-toolchain/checkpoint-v1"
    document["model"]["kwargs"] = {}
    path.write_text(json.dumps(document))
    assert load_checkpoint(tmp_path / "old").model.head_activation is True
    new = save_checkpoint(tmp_path / "new", create_model("dyconvsr_tiny"))
    assert load_checkpoint(new).model.head_activation is False


def _import(tmp_path, payload, name: str = "imported"):
    source = tmp_path / f"{name}.pth"
    torch.save(payload, source)
    return source, tmp_path / "out" / name


@pytest.mark.parametrize("hw", [(24, 32), (25, 31)], ids=["even", "odd"])
def test_imported_state_dict_computes_the_authors_function(tmp_path, hw) -> None:
    sd = authors_state_dict()
    source, out = _import(tmp_path, sd)
    result = import_authors_checkpoint(source, out)
    assert result.kind == "state_dict" and result.kwargs["scale"] == 2
    model = load_checkpoint(out).model
    assert model.config.name == "dyconvsr_authors"
    x = photo_batch(("astronaut", "coffee"), *hw)
    with torch.no_grad():
        got = model(x)
    if hw[0] % 2 == 0 and hw[1] % 2 == 0:
        expected = authors_forward(sd, x)
    else:  # their PixelUnshuffle refuses odd sizes; ours pads by edge replication, then crops
        padded = F.pad(x, (0, hw[1] % 2, 0, hw[0] % 2), mode="replicate")
        expected = authors_forward(sd, padded)[..., : 2 * hw[0], : 2 * hw[1]]
    assert got.shape == (2, 3, 2 * hw[0], 2 * hw[1])
    assert (got - expected).abs().max().item() <= 1e-5


def test_compatibility_settings_each_change_the_function() -> None:
    # Each of the three settings matters: switching any one back gives a different output.
    sd = authors_state_dict(3)
    sd["body.0.attention.net.2.weight"] *= 100  # logits large enough that the temperature shows
    x = photo_batch(("chelsea",), 16, 20)
    reference = authors_forward(sd, x)
    model = create_model("dyconvsr_authors", scale=2)
    from train.authors import KEY_MAP

    model.load_state_dict({**model.state_dict(), **{KEY_MAP[k]: v for k, v in sd.items()}})
    with torch.no_grad():
        assert (model.eval()(x) - reference).abs().max() <= 1e-5
    for change in ({"skip_order": "nearest"}, {"blur_padding": "replicate"}, {"temperature": 1.0}):
        other = create_model("dyconvsr_authors", scale=2, **change).eval()
        other.load_state_dict(model.state_dict() if "temperature" not in change else
                              {**model.state_dict(), "body.attention.temperature": torch.tensor(1.0)})
        with torch.no_grad():
            assert (other(x) - reference).abs().max() > 1e-3, change


def test_lightning_checkpoint_with_its_extra_entries_imports(tmp_path) -> None:
    sd = authors_state_dict(1)
    weights = list(sd.values())
    lightning = {
        "epoch": 7,
        "global_step": 3500,
        "pytorch-lightning_version": "2.1.3",
        "state_dict": collections.OrderedDict((f"model.{k}", v) for k, v in sd.items()),
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 8}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_psnr', 'mode': 'max'}": {
            "best_model_score": torch.tensor(35.1), "best_model_path": "checkpoints/epoch=7.ckpt",
            "kth_best_map": {"checkpoints/epoch=7.ckpt": torch.tensor(35.1)}}},
        "optimizer_states": [{"state": {i: {"step": torch.tensor(3500.0), "exp_avg": torch.zeros_like(w)}
                                        for i, w in enumerate(weights)},
                              "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999),
                                                "params": list(range(len(weights)))}]}],
        "lr_schedulers": [{"milestones": {20: 1, 40: 1}, "gamma": 0.5, "last_epoch": 7}],
    }
    source = tmp_path / "epoch=7.ckpt"
    torch.save(lightning, source)
    result = CliRunner().invoke(train_cli, ["import-checkpoint", str(source), str(tmp_path / "w" / "theirs")])
    assert result.exit_code == 0, result.output
    assert "lightning" in result.output
    loaded = load_checkpoint(tmp_path / "w" / "theirs")
    assert loaded.metadata["imported_from"]["epoch"] == 7
    assert loaded.metadata["compatibility"]["skip_order"] == "interleaved"
    assert loaded.kwargs["blur_padding"] == "reflect" and loaded.kwargs["temperature"] == 30.0
    x = photo_batch(("rocket",), 20, 28)
    with torch.no_grad():
        assert (loaded.model(x) - authors_forward(sd, x)).abs().max() <= 1e-5


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("hsb.0.bias"), "missing hsb.0.bias"),
    (lambda sd: sd.__setitem__("extra.weight", torch.zeros(3)), "unexpected extra.weight"),
    (lambda sd: sd.__setitem__("tail.0.bias", torch.zeros(47)), r"tail.0.bias \(47,\) \(expected \(48,\)\)"),
    (lambda sd: sd.__setitem__("tail.0.weight", torch.zeros(50, 32, 3, 3)), "50 output channels"),
    (lambda sd: sd.__setitem__("head.0.bias", torch.full((32,), float("nan"))), "NaN"),
], ids=["missing", "extra", "shape", "scale", "nan"])
def test_layout_mismatches_name_the_keys(tmp_path, change, message) -> None:
    sd = authors_state_dict()
    change(sd)
    source, out = _import(tmp_path, {"state_dict": {f"model.{k}": v for k, v in sd.items()}})
    result = CliRunner().invoke(train_cli, ["import-checkpoint", str(source), str(out)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.output.count("\n") == 1
    assert re.search(message, result.output), result.output
    assert not (tmp_path / "out").exists()  # nothing written


def test_keys_outside_the_lightning_model_are_named(tmp_path) -> None:
    payload = {"state_dict": {**{f"model.{k}": v for k, v in authors_state_dict().items()},
                              "val_psnr.total": torch.tensor(1)}}
    source, out = _import(tmp_path, payload)
    result = CliRunner().invoke(train_cli, ["import-checkpoint", str(source), str(out)])
    assert result.exit_code == 2 and "val_psnr.total" in result.output


class Hostile:
    """Unpickling this would run code: torch's restricted loader must refuse it."""

    def __reduce__(self):
        return (open, (str(MARKER[0]), "w"))


MARKER: list = []


def test_pickles_that_need_arbitrary_objects_are_refused(tmp_path) -> None:
    MARKER[:] = [tmp_path / "pwned"]
    for index, extra in enumerate([Hostile(), fractions.Fraction(1, 3)]):
        source, out = _import(tmp_path, {"state_dict": authors_state_dict(), "hyper_parameters": extra}, f"bad{index}")
        result = CliRunner().invoke(train_cli, ["import-checkpoint", str(source), str(out)])
        assert result.exit_code == 2, result.output
        assert "refusing to unpickle" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "out").exists()


def test_not_a_checkpoint_and_existing_output_are_one_line_errors(tmp_path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a checkpoint" * 10)
    result = CliRunner().invoke(train_cli, ["import-checkpoint", str(junk), str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a PyTorch checkpoint" in result.output
    source, out = _import(tmp_path, authors_state_dict())
    assert CliRunner().invoke(train_cli, ["import-checkpoint", str(source), str(out)]).exit_code == 0
    again = CliRunner().invoke(train_cli, ["import-checkpoint", str(source), str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert CliRunner().invoke(train_cli, ["import-checkpoint", str(source), str(out), "--overwrite"]).exit_code == 0


def test_reflect_blur_refuses_images_too_small_to_mirror() -> None:
    model = create_model("dyconvsr_authors", scale=2).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 3, 5)).shape == (1, 3, 6, 10)  # padded to 4x6: mirrors
        with pytest.raises(ValueError, match="more than 2 pixels"):
            model(torch.rand(1, 3, 2, 8))


def test_the_readme_import_export_check_commands_reach_phones_and_pass(tmp_path) -> None:
    """import-checkpoint -> export -> check, as the README gives them, on a Lightning .ckpt written the authors' way:
    the export exits 0 and writes the mobile files (LiteRT with its reflect-filled tiles, the mobile .ort), and the
    check passes."""
    import json
    import subprocess
    import sys

    source = tmp_path / "epoch=99.ckpt"
    torch.save({"epoch": 99, "state_dict": collections.OrderedDict(
        (f"model.{k}", v) for k, v in authors_state_dict(3).items())}, source)
    steps = (["train", "import-checkpoint", str(source), str(tmp_path / "weights" / "authors_x2")],
             ["export", str(tmp_path / "weights" / "authors_x2"), "-o", str(tmp_path / "artifacts"), "--strategy",
              "branches", "--only-default", "--precision", "int8", "--no-tensorrt", "--openvino", "int8",
              "--mobile-shape", "36", "48", "--no-coreml", "-q"],
             ["runtime.check", str(tmp_path / "artifacts" / "authors_x2")])
    for step in steps:
        done = subprocess.run([sys.executable, "-m", *step], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (step[0], done.stdout + done.stderr)
    assert "verdict: PASS" in done.stdout
    manifest = json.loads((tmp_path / "artifacts" / "authors_x2" / "manifest.json").read_text())
    files = {v["file"]: v for v in manifest["variants"]}
    assert {"model.mobile.36x48.tflite", "model.mobile.1x36x48.ort"} <= set(files), manifest["notes"].get("skipped")
    assert files["model.mobile.36x48.tflite"]["tiling"]["border"] == "reflect"


def test_import_never_replaces_without_overwrite_nor_its_own_source(tmp_path) -> None:
    """``OUT/`` names OUT.json and OUT.safetensors as save_checkpoint writes them: an existing pair is kept without
    --overwrite, and a source that is one of the outputs is refused even with it."""
    source = tmp_path / "theirs.pth"
    torch.save(authors_state_dict(1), source)
    out = tmp_path / "w" / "x2"
    assert CliRunner().invoke(train_cli, ["import-checkpoint", str(source), str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    other = tmp_path / "other.pth"
    torch.save(authors_state_dict(2), other)
    result = CliRunner().invoke(train_cli, ["import-checkpoint", str(other), f"{out}/"])
    assert result.exit_code != 0 and "already exist; pass --overwrite" in result.output
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
    own_output = out.with_suffix(".json")
    result = CliRunner().invoke(train_cli, ["import-checkpoint", str(own_output), str(out), "--overwrite"])
    assert result.exit_code != 0 and "the import's own output" in result.output
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
