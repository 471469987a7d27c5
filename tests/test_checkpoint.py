from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from runtime.errors import UserError
from train.checkpoint import load_checkpoint, save_checkpoint
from train.models import create_model, list_models, set_temperature


@pytest.mark.parametrize("name", list_models())
def test_round_trip_is_bit_exact(tmp_path: Path, name: str) -> None:
    model = create_model(name, scale=3)
    set_temperature(model, 4.5)  # a saved buffer of every dynamic conv (the static twins have none)
    save_checkpoint(tmp_path / "ckpt", model, metadata={"epoch": 7})
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.name == name and loaded.kwargs == {"scale": 3} and loaded.metadata == {"epoch": 7}
    original, restored = model.state_dict(), loaded.model.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key
    x = torch.rand(1, 3, 9, 10)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.model(x))


def test_loaded_checkpoint_carries_the_sha256_of_both_files(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "m", create_model("srcnn_tiny", scale=2))
    loaded = load_checkpoint(tmp_path / "m")
    assert loaded.config_sha256 == hashlib.sha256((tmp_path / "m.json").read_bytes()).hexdigest()
    assert loaded.weights_sha256 == hashlib.sha256((tmp_path / "m.safetensors").read_bytes()).hexdigest()
    assert loaded.config_sha256 != loaded.weights_sha256


def test_load_accepts_stem_json_or_safetensors(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "m", create_model("srcnn_tiny", scale=2))
    for given in ("m", "m.json", "m.safetensors"):
        assert load_checkpoint(tmp_path / given).name == "srcnn_tiny"


def test_checkpoint_is_safetensors_plus_json_with_no_pickle(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "m", create_model("dyconvsr_tiny", scale=2, channels=6))
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["model"] == {"name": "dyconvsr_tiny", "kwargs": {"scale": 2, "channels": 6}}
    header_len = int.from_bytes((tmp_path / "m.safetensors").read_bytes()[:8], "little")
    header = json.loads((tmp_path / "m.safetensors").read_bytes()[8 : 8 + header_len])
    assert "head.weight" in header
    assert load_checkpoint(tmp_path / "m").model.head.out_channels == 6


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"checkpoint config .*nothing.json not found"):
        load_checkpoint(tmp_path / "nothing")


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "m", create_model("srcnn_tiny", scale=2))
    data = bytearray((tmp_path / "m.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "m.safetensors").write_bytes(bytes(data))
    with pytest.raises(UserError, match="do not match the sha256"):
        load_checkpoint(tmp_path / "m")


def test_weights_from_another_model_are_refused(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "m", create_model("srcnn_tiny", scale=2))
    document = json.loads((tmp_path / "m.json").read_text())
    document["model"]["name"] = "dcnn_tiny"
    (tmp_path / "m.json").write_text(json.dumps(document))
    with pytest.raises(UserError, match=r"does not fit model 'dcnn_tiny'.*missing"):
        load_checkpoint(tmp_path / "m")


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(UserError, match="is not valid JSON"):
        load_checkpoint(tmp_path / "m")
    (tmp_path / "m.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(UserError, match="has format 'other'"):
        load_checkpoint(tmp_path / "m")


def test_saved_files_get_ordinary_permissions(tmp_path: Path) -> None:
    import os

    save_checkpoint(tmp_path / "m", create_model("srcnn_tiny", scale=2))
    mask = os.umask(0)
    os.umask(mask)
    for name in ("m.json", "m.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_checkpoint_label_names_run_checkpoints_by_their_run() -> None:
    from train.checkpoint import checkpoint_label

    assert checkpoint_label("weights/dyconvsr_x2.json") == "dyconvsr_x2"
    assert checkpoint_label("runs/dyconvsr_x3/best.safetensors") == "dyconvsr_x3/best"
    assert checkpoint_label("runs/dyconvsr_x3/last", separator="_") == "dyconvsr_x3_last"
