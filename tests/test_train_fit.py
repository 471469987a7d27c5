from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from runtime.errors import UserError
from train.checkpoint import load_checkpoint
from train.config import config_from
from train.data import PatchSampler, embedded_images
from train.fit import fit
from train.models import create_model, list_models, model_traits

REPO = Path(__file__).resolve().parents[1]


def tiny_config(out: Path, **overrides):
    settings = {"model": "dyconvsr_tiny", "hr_patch": 32, "batch_size": 4, "iterations": 12, "lr_step": 8,
                "val_every": 6, "save_every": 3, "log_every": 1, "threads": 1, "out": str(out)}
    settings.update(overrides)
    return config_from(None, None, settings)


def test_training_reduces_the_loss_on_held_out_patches(tmp_path: Path) -> None:
    images = embedded_images("val")
    probe_lr, probe_hr = PatchSampler(images, 2, 32, 16, seed=99).batch(0)
    result = fit(tiny_config(tmp_path / "run", iterations=60, lr_step=1000, val_every=30), progress=False)
    trained = load_checkpoint(result.out / "last").model
    torch.manual_seed(0)  # fit() seeds the same way before building the model
    untrained = create_model("dyconvsr_tiny", scale=2, temperature=30.0).eval()
    with torch.no_grad():
        before = (untrained(probe_lr) - probe_hr).abs().mean()
        after = (trained(probe_lr) - probe_hr).abs().mean()
    assert after < 0.8 * before
    log = [json.loads(line) for line in (result.out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 61))
    assert log[0]["temperature"] > log[-1]["temperature"] == 1.0
    assert {"val_psnr_y"} <= set(log[29]) and result.best_psnr is not None
    assert load_checkpoint(result.out / "best").metadata["val_psnr_y"] == pytest.approx(result.best_psnr)


def test_stopped_and_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    straight = fit(tiny_config(tmp_path / "a"), progress=False)
    fit(tiny_config(tmp_path / "b"), progress=False, stop_at=5)
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        fit(tiny_config(tmp_path / "b"), progress=False)
    resumed = fit(tiny_config(tmp_path / "b"), resume=True, progress=False)
    assert resumed.steps == straight.steps == 12
    a = load_file(str(tmp_path / "a" / "last.safetensors"))
    b = load_file(str(tmp_path / "b" / "last.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert load_file(str(tmp_path / "a" / "last.optim.safetensors")).keys() == load_file(
        str(tmp_path / "b" / "last.optim.safetensors")
    ).keys()


def test_killed_run_resumes_to_the_same_state(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "train", "fit", "--model", "dyconvsr_tiny", "--hr-patch", "32",
            "--batch-size", "4", "--iterations", "40", "--threads", "1", "--val-every", "1000", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([*args, "--out", str(tmp_path / "a")], check=True, env=env, cwd=REPO, timeout=300,
                   capture_output=True)
    config = tmp_path / "save_often.toml"
    config.write_text("save_every = 1\n")
    victim = subprocess.Popen([*args, "--config", str(config), "--out", str(tmp_path / "b")], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "b" / "last.state.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (state.is_file() and json.loads(state.read_text())["step"] >= 3):
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert 3 <= killed_at < 40, "the run must be killed mid-way for this test to mean anything"
    subprocess.run([*args, "--config", str(config), "--out", str(tmp_path / "b"), "--resume"], check=True, env=env,
                   cwd=REPO, timeout=300, capture_output=True)
    a = load_file(str(tmp_path / "a" / "last.safetensors"))
    b = load_file(str(tmp_path / "b" / "last.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_data_parallel_training_with_two_processes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         "-m", "train", "fit", "--model", "dyconvsr_tiny", "--hr-patch", "32", "--batch-size", "2",
         "--iterations", "6", "--threads", "1", "--val-every", "3", "--quiet", "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, cwd=REPO, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    checkpoint = load_checkpoint(tmp_path / "ddp" / "last")
    assert checkpoint.metadata["world_size"] == 2 and checkpoint.metadata["step"] == 6
    steps = [json.loads(line)["step"] for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3, 6]  # validation steps are always logged, and only by rank 0


def test_multiscale_dcnn_recipe_trains(tmp_path: Path) -> None:
    config = config_from("srcnn", None, {"model": "dcnn_tiny", "train_scales": [2, 3, 4], "batch_size": 8,
                                         "iterations": 4, "val_every": 4, "save_every": 4, "threads": 1,
                                         "init_std": None, "lr": 1e-3, "out": str(tmp_path / "d")})
    result = fit(config, progress=False)
    checkpoint = load_checkpoint(result.out / "last")
    assert checkpoint.name == "dcnn_tiny" and checkpoint.metadata["train_config"]["train_scales"] == [2, 3, 4]


@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_on_its_recipe_batches(tmp_path: Path, name: str) -> None:
    from train.fit import _build_model, _parameter_groups, _sampler, _trained_network

    config = tiny_config(tmp_path, model=name, scale=3, hr_patch=33, batch_size=2, last_layer_lr=1e-5)
    model = _build_model(config)
    inputs, targets = _sampler(config, embedded_images("val")[:2], rank=0).batch(0)
    output = _trained_network(model)(inputs)
    assert output.shape == targets.shape
    output.mean().backward()  # the batch reaches the weights
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    groups = _parameter_groups(model, config)
    layer = model_traits(name).last_layer
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    if layer is None:
        assert [g["lr"] for g in groups] == [config.lr]
    else:
        assert [g["lr"] for g in groups] == [config.lr, 1e-5]
        assert {id(p) for p in groups[1]["params"]} == {id(p) for p in getattr(model, layer).parameters()}


def test_bad_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown training setting"):
        config_from(None, None, {"learning_rate": 1.0})
    with pytest.raises(UserError, match="unknown profile 'fast'"):
        config_from("fast", None, {})
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = [")
    with pytest.raises(UserError, match="not valid TOML"):
        config_from(None, str(bad), {})
    with pytest.raises(UserError, match="nothing to resume"):
        fit(tiny_config(tmp_path / "none"), resume=True, progress=False)


def test_resume_refuses_changed_settings(tmp_path: Path) -> None:
    fit(tiny_config(tmp_path / "r"), progress=False, stop_at=2)
    with pytest.raises(UserError, match=r"differ from the run .*lr: 0.001 -> 0.5"):
        fit(tiny_config(tmp_path / "r", lr=0.5), resume=True, progress=False)
    # Extending the run is allowed.
    assert fit(tiny_config(tmp_path / "r", iterations=14), resume=True, progress=False).steps == 14


def test_a_run_saved_before_a_setting_existed_resumes_with_that_settings_default(tmp_path: Path) -> None:
    fit(tiny_config(tmp_path / "old"), progress=False, stop_at=2)
    settings = tmp_path / "old" / "config.json"
    saved = json.loads(settings.read_text())
    # A run started before `precision` and `compile` were TrainConfig fields records neither.
    settings.write_text(json.dumps({k: v for k, v in saved.items() if k not in ("precision", "compile")}))
    assert fit(tiny_config(tmp_path / "old"), resume=True, progress=False).steps == tiny_config(tmp_path).iterations
    # A non-default value is still a different run from the one saved without it.
    settings.write_text(json.dumps({k: v for k, v in saved.items() if k != "compile"}))
    with pytest.raises(UserError, match=r"compile: False -> True"):
        fit(tiny_config(tmp_path / "old", compile=True), resume=True, progress=False)


def test_promote_copies_a_run_checkpoint_bit_exact(tmp_path: Path) -> None:
    result = fit(tiny_config(tmp_path / "p", iterations=3, val_every=3), progress=False)
    done = subprocess.run([sys.executable, "-m", "train", "promote", str(result.out / "best"), str(tmp_path / "ship")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    shipped, best = load_checkpoint(tmp_path / "ship"), load_checkpoint(result.out / "best")
    assert shipped.metadata["promoted_from"].endswith("best") and shipped.metadata["step"] == 3
    for key, value in best.model.state_dict().items():
        assert torch.equal(value, shipped.model.state_dict()[key])


def test_warm_start_copies_every_matching_tensor_and_keeps_the_rest_fresh(tmp_path: Path) -> None:
    fit(tiny_config(tmp_path / "x2", iterations=6), progress=False)
    donor = load_checkpoint(tmp_path / "x2" / "last").model.state_dict()
    # An x3 run started from the x2 weights: after step 0 nothing has moved yet, so compare at init.
    from train.fit import warm_start

    torch.manual_seed(5)
    model = create_model("dyconvsr_tiny", scale=3)
    fresh_before = {k: v.clone() for k, v in model.state_dict().items()}
    copied, fresh = warm_start(model, str(tmp_path / "x2" / "last"))
    state = model.state_dict()
    assert set(fresh) == {"tail.weight", "tail.bias", "high_frequency.weight", "high_frequency.bias"}
    assert copied and not set(copied) & set(fresh)
    for name in copied:
        assert torch.equal(state[name], donor[name])
    for name in fresh:
        assert torch.equal(state[name], fresh_before[name])
    # Prefixes in skip stay fresh even where the shapes match.
    torch.manual_seed(5)
    skipped_model = create_model("dyconvsr_tiny", scale=3)
    _, fresh_skip = warm_start(skipped_model, str(tmp_path / "x2" / "last"), skip=("spatial_attention",))
    assert set(fresh_skip) == set(fresh) | {"spatial_attention.conv.weight"}
    assert torch.equal(skipped_model.spatial_attention.conv.weight, fresh_before["spatial_attention.conv.weight"])
    # Through fit: the run starts from the donor, and an unrelated donor is refused.
    result = fit(tiny_config(tmp_path / "x3", scale=3, hr_patch=33, iterations=2,
                             init_from=str(tmp_path / "x2" / "last")),
                 progress=False)
    assert result.steps == 2
    with pytest.raises(UserError, match="no tensor matches"):
        fit(tiny_config(tmp_path / "srcnn", model="srcnn_tiny", iterations=2, init_from=str(tmp_path / "x2" / "last")),
            progress=False)


def test_bf16_autocast_trains_like_fp32_where_the_cpu_has_bf16(tmp_path: Path) -> None:
    """precision 'bf16' autocasts the forward only: the same run reaches the same loss as fp32 within bf16's
    rounding, its weights stay fp32; a CPU without AMX/AVX512-BF16 refuses it in one line."""
    from runtime.cpu import cpu_info

    settings = {"iterations": 40, "lr_step": 1000, "val_every": 40}
    if not {"amx_bf16", "avx512_bf16"} & cpu_info()[1]:
        with pytest.raises(UserError, match="precision 'bf16' needs a CPU with AMX or AVX512-BF16"):
            fit(tiny_config(tmp_path / "bf16", precision="bf16", **settings), progress=False)
        return
    fp32 = fit(tiny_config(tmp_path / "fp32", **settings), progress=False)
    bf16 = fit(tiny_config(tmp_path / "bf16", precision="bf16", **settings), progress=False)
    losses = [[json.loads(line)["loss"] for line in (r.out / "metrics.jsonl").read_text().splitlines()][-10:]
              for r in (fp32, bf16)]
    assert abs(sum(losses[1]) / 10 - sum(losses[0]) / 10) < 0.05 * sum(losses[0]) / 10, losses
    assert abs(bf16.best_psnr - fp32.best_psnr) < 0.1
    assert all(t.dtype == torch.float32 for t in load_file(str(bf16.out / "last.safetensors")).values())


def test_compile_with_bf16_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="compile and precision 'bf16' together diverge"):
        tiny_config(tmp_path / "x", precision="bf16", compile=True)
    assert not (tmp_path / "x").exists()
