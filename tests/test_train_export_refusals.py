"""Training and export under attack: no silent loss, no escape, no hang, no traceback.

One test per class of failure, each over every example of its class: the CLI ends with one
line on stderr and exit code 2, the message names what is wrong, and nothing is written (no
checkpoint, no artifact, no change to the run being resumed). Models are the tiny variants,
runs real (a few steps on the embedded photos).
"""
from __future__ import annotations

import json
import re
import resource
import shutil
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from safetensors.torch import load_file, save_file

from export.cli import main as export_main
from runtime.files import sha256_file
from train.checkpoint import save_checkpoint
from train.cli import main as train_main
from train.config import config_from
from train.fit import fit
from train.models import create_model

TINY_RUN = {"model": "dyconvsr_tiny", "hr_patch": 32, "batch_size": 4, "iterations": 12, "lr_step": 8,
            "val_every": 3, "save_every": 3, "log_every": 1, "threads": 1}
QUICK_EXPORT = ["--strategy", "branches", "--only-default", "--no-reduced", "--no-ort", "--no-tensorrt",
                "--no-openvino", "--no-tiling", "--no-mobile"]


def one_line_error(result: Result, pattern: str) -> str:
    """The single stderr line of a CLI that refused, checked against ``pattern``."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def toml_file(path: Path, settings: dict, extra: bytes = b"") -> Path:
    path.write_bytes("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()).encode() + extra)
    return path


def edit_json(path: Path, change: Callable[[dict], object]) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def rewrite_tensors(path: Path, change: Callable[[dict[str, torch.Tensor]], object]) -> str:
    """Edit a safetensors file in place; returns its new sha256 (to forge the JSON naming it)."""
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))
    return sha256_file(path)


def hostile_header(path: Path, header: bytes | None = None, length: int | None = None) -> str:
    """Replace a safetensors file's header (or only its length field); returns the new sha256."""
    data = path.read_bytes()
    size = struct.unpack("<Q", data[:8])[0]
    header = data[8 : 8 + size] if header is None else header
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data[8 + size :])
    return sha256_file(path)


def bad_offsets(path: Path) -> str:
    size = struct.unpack("<Q", path.read_bytes()[:8])[0]
    header = json.loads(path.read_bytes()[8 : 8 + size])
    name = next(k for k in header if k != "__metadata__")
    header[name]["data_offsets"] = [0, 10**12]
    return hostile_header(path, json.dumps(header).encode())


def forge_sha(config: Path, sha: str) -> None:
    edit_json(config, lambda d: d.update(weights_sha256=sha))


# ---- 1. checkpoint JSON that is not UTF-8 or nested past Python's stack ------------------------
DEEP = r"m\.json nests deeper than the (JSON )?parser can follow"


@pytest.mark.parametrize("content, message", [
    pytest.param(b'{"format": "dyconvsr-toolchain/checkpoint-v2", "model": "\xff\xfe"}',
                 r"m\.json is not UTF-8 text", id="not UTF-8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, DEEP, id="deep list"),
    pytest.param(b'{"model": ' * 50_000 + b"1" + b"}" * 50_000, DEEP, id="deep object"),
])
def test_unreadable_checkpoint_json_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    save_checkpoint(tmp_path / "m", create_model("srcnn_tiny"))
    (tmp_path / "m.json").write_bytes(content)
    one_line_error(promote(tmp_path / "m", tmp_path / "out" / "ship"), message)
    assert not (tmp_path / "out").exists()


def promote(source: Path, destination: Path) -> Result:
    return CliRunner().invoke(train_main, ["promote", str(source), str(destination)])


# ---- 2. checkpoints describing implausible models, hostile weights files ---------------------------
def _kwargs(**kwargs: object) -> Callable[[Path], None]:
    return lambda stem: edit_json(stem.with_suffix(".json"), lambda d: d["model"]["kwargs"].update(kwargs))


def _config(change: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda stem: edit_json(stem.with_suffix(".json"), change)


def _forged(change: Callable[[Path], str]) -> Callable[[Path], None]:
    """A change to the weights file whose new sha256 is written into the JSON, as an attacker would."""
    return lambda stem: forge_sha(stem.with_suffix(".json"), change(stem.with_suffix(".safetensors")))


def _huge_file(stem: Path) -> None:
    with open(stem.with_suffix(".safetensors"), "r+b") as handle:
        handle.truncate(2**40)  # sparse: 1 TB that sha256 or safetensors would read for an hour


def _float64(path: Path) -> str:
    return rewrite_tensors(path, lambda t: t.update({"head.bias": t["head.bias"].double()}))


NOT_SAFETENSORS = r"m\.safetensors is not a valid safetensors file: "
MODEL_CASES = {
    "channels 10**9": (_kwargs(channels=10**9), r"channels=1000000000 would have more parameters than "
                                                r"torch can address; at most 50,000,000"),
    "channels 4000": (_kwargs(channels=4000), r"channels=4000 would have 294,179,378 parameters; "
                                              r"at most 50,000,000"),
    "size a bool": (_kwargs(channels=True), r"argument channels=True is a bool; expected int"),
    "count a float": (_kwargs(num_kernels=2.5), r"argument num_kernels=2.5 is a float; expected int"),
    "size zero": (_kwargs(channels=0), r"channels must be >= 1, got 0"),
    "temperature infinite": (_kwargs(temperature=float("inf")), r"temperature must be finite, got inf"),
    "header length 2**62": (_forged(lambda p: hostile_header(p, length=2**62)),
                            NOT_SAFETENSORS + ".*header too large"),
    "offsets past the end": (_forged(bad_offsets), NOT_SAFETENSORS + ".*offset"),
    "weights file 1 TB": (_huge_file, r"m\.safetensors is 1,099,511,627,776 bytes; what it should hold "
                                      r"fits in"),
    "weights float64": (_forged(_float64), r"does not fit model 'dyconvsr_tiny'.*wrong shape or dtype "
                                           r"head\.bias \(torch\.float64"),
    "no sha256": (_config(lambda d: d.pop("weights_sha256")), r"has no weights_sha256"),
    "metadata a list": (_config(lambda d: d.update(metadata=[1])), r"'metadata' must be a dict"),
}


@pytest.mark.parametrize("case", MODEL_CASES)
def test_implausible_models_and_hostile_weights_are_refused_unread(tmp_path: Path, case: str) -> None:
    tamper, message = MODEL_CASES[case]
    save_checkpoint(tmp_path / "m", create_model("dyconvsr_tiny"))
    tamper(tmp_path / "m")
    start, peak = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    one_line_error(promote(tmp_path / "m", tmp_path / "out" / "ship"), message)
    # Refused unread and unbuilt: reading 1 TB takes far longer, building 294M parameters 1.2 GB more.
    assert time.perf_counter() - start < 20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000  # KiB
    assert not (tmp_path / "out").exists()


# ---- 3. tampered --resume state ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    fit(config_from(None, None, {**TINY_RUN, "out": str(out)}), progress=False, stop_at=3)
    return out


def _state(change: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda run: edit_json(run / "last.state.json", change)


def _groups(change: Callable[[list], object]) -> Callable[[Path], None]:
    return _state(lambda d: change(d["optimizer_param_groups"]))


def _optimizer_file(change: Callable[[Path], str]) -> Callable[[Path], None]:
    """A change to the optimizer file whose new sha256 is written into the state, as an attacker would."""
    def tamper(run: Path) -> None:
        sha = change(run / "last.optim.safetensors")
        edit_json(run / "last.state.json", lambda d: d.update(optimizer_sha256=sha))
    return tamper


def _optimizer_tensors(change: Callable[[dict[str, torch.Tensor]], object]) -> Callable[[Path], None]:
    return _optimizer_file(lambda path: rewrite_tensors(path, change))


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def _renamed(tensors: dict[str, torch.Tensor]) -> None:
    tensors["state.0.moment"] = tensors.pop("state.0.exp_avg")


RESUME_CASES = {
    "state not an object": (lambda run: (run / "last.state.json").write_text("[1, 2]"), r"has format 'list'"),
    "step a string": (_state(lambda d: d.update(step="3")), r"step must be an integer >= 0; got '3'"),
    "step negative": (_state(lambda d: d.update(step=-1)), r"step must be an integer >= 0; got -1"),
    "step a bool": (_state(lambda d: d.update(step=True)), r"step must be an integer >= 0; got True"),
    "best_step a bool": (_state(lambda d: d.update(best_step=True)),
                         r"best_step must be an integer in 1\.\.3"),
    "best_score a string": (_state(lambda d: d.update(best_score="high")),
                            r"best_score must be a finite number"),
    "step not the weights' step": (_state(lambda d: d.update(step=2, best_step=2)),
                                   r"says step 2; its weights .*last\.json were saved at step 3"),
    "scheduler missing a key": (_state(lambda d: d["scheduler"].pop("gamma")),
                                r"scheduler must have the keys"),
    "scheduler value a string": (_state(lambda d: d["scheduler"].update(last_epoch="3")),
                                 r"scheduler\.last_epoch must be an integer >= 0; got '3'"),
    "scheduler at another step": (_state(lambda d: d["scheduler"].update(last_epoch=7)),
                                  r"scheduler is at step 7, the state at step 3"),
    "two param groups": (_groups(lambda g: g.append(dict(g[0]))), r"must be a list of 1 group\(s\)"),
    "a parameter missing": (_groups(lambda g: g[0]["params"].pop()),
                            r"optimizer_param_groups\[0\] must list"),
    "lr a string": (_groups(lambda g: g[0].update(lr="fast")),
                    r"optimizer_param_groups\[0\]\.lr must be a finite number >= 0; got 'fast'"),
    "betas too short": (_groups(lambda g: g[0].update(betas=[0.9])), r"\[0\]\.betas must be a list of 2"),
    "betas [2, 2]": (_groups(lambda g: g[0].update(betas=[2, 2])),  # issue 26, item 8: was a traceback
                     r"optimizer_param_groups\[0\]: AdamW refuses these settings: Invalid beta parameter at "
                     r"index 0: 2$"),
    "beta 1.0": (_groups(lambda g: g[0]["betas"].__setitem__(1, 1.0)),
                 r"AdamW refuses these settings: Invalid beta parameter at index 1: 1\.0$"),
    "scheduler step_size 0": (_state(lambda d: d["scheduler"].update(step_size=0)),  # was ZeroDivisionError
                              r"scheduler\.step_size is 0; the run's settings give 8$"),
    "scheduler gamma changed": (_state(lambda d: d["scheduler"].update(gamma=2.0)),
                                r"scheduler\.gamma is 2\.0; the run's settings give 0\.5$"),
    "scheduler base_lrs changed": (_state(lambda d: d["scheduler"].update(base_lrs=[10.0])),
                                   r"scheduler\.base_lrs is \[10\.0\]; the run's settings give \[0\.001\]$"),
    "optimizer key renamed": (_optimizer_tensors(_renamed),
                              r"missing state\.0\.exp_avg; unexpected state\.0\.moment"),
    "optimizer tensor reshaped": (_optimizer_tensors(lambda t: t.update({"state.1.exp_avg": torch.zeros(3)})),
                                  r"wrong shape or dtype state\.1\.exp_avg \(torch\.float32 \[3\]"),
    "optimizer header hostile": (_optimizer_file(lambda path: hostile_header(path, length=2**62)),
                                 r"last\.optim\.safetensors is not a valid safetensors file"),
    "optimizer content tampered": (lambda run: _flip_last_byte(run / "last.optim.safetensors"),
                                   r"last\.optim\.safetensors does not match the sha256"),
    "optimizer file gone": (lambda run: (run / "last.optim.safetensors").unlink(),
                            r"optimizer state .*last\.optim\.safetensors not found"),
    "weights not the sha256": (lambda run: _flip_last_byte(run / "last.safetensors"),
                               r"last\.safetensors do not match the sha256 in .*last\.json"),
    "step beyond iterations": ("--iterations=2",  # a flag, not a tampering: the run is at step 3
                               r"is at step 3, beyond iterations = 2; resume with iterations >= 3"),
}


def resume(config: Path, *flags: str) -> Result:
    return CliRunner().invoke(train_main, ["fit", "--config", str(config), "--resume", "--quiet", *flags])


@pytest.mark.parametrize("case", RESUME_CASES)
def test_tampered_resume_state_is_one_line_and_leaves_the_run_alone(stopped_run: Path, tmp_path: Path,
                                                                     case: str) -> None:
    tamper, message = RESUME_CASES[case]
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    config = toml_file(tmp_path / "run.toml", {**TINY_RUN, "out": str(run)})
    if callable(tamper):
        tamper(run)
    before = snapshot(run)
    one_line_error(resume(config, *([] if callable(tamper) else [tamper])), message)
    assert snapshot(run) == before


def test_untampered_copy_resumes(stopped_run: Path, tmp_path: Path) -> None:
    # The cases above fail because of their tampering, not because a copied run cannot resume.
    run = tmp_path / "run"
    shutil.copytree(stopped_run, run)
    result = resume(toml_file(tmp_path / "run.toml", {**TINY_RUN, "out": str(run)}), "--stop-at", "4")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "last.state.json").read_text())["step"] == 4


# ---- 4. settings from a TOML file get the same checks as flags ------------------------------------
SETTING_CASES = [
    ("batch_size", "0", r"config file .*: training setting batch_size must be an integer in 1\.\.4096; "
                        r"got 0"),
    ("iterations", "-5", r"training setting iterations must be an integer >= 1; got -5"),
    ("hr_patch", "4", r"hr_patch must be an integer >= 8; got 4"),
    ("lr", "true", r"lr must be a number > 0; got True \(bool\)"),
    ("lr_step", "1.5", r"lr_step must be an integer >= 1; got 1\.5 \(float\)"),
    ("lr_gamma", "1.5", r"lr_gamma must be a number in \(0, 1\]; got 1\.5"),
    ("threads", "1000", r"threads must be an integer in 0\.\.256; got 1000"),
    ("scale", "5", r"scale must be an integer in 2\.\.4; got 5"),
    ("train_scales", "[2, 5]", r"train_scales must be a list of distinct scales in 2\.\.4; got \[2, 5\]"),
    ("anneal_fraction", "2.0", r"anneal_fraction must be a number in \[0, 1\]; got 2\.0"),
    ("temperature_start", "0", r"temperature_start must be a number > 0; got 0"),
    ("loss", '"l2"', r"loss must be one of 'l1', 'mse'; got 'l2'"),
    ("optimizer", '"adagrad"', r"optimizer must be one of 'adamw', 'adam', 'sgd'; got 'adagrad'"),
    ("data", '"photos"', r"data must be a list of strings; got 'photos' \(str\)"),
    ("model_kwargs", "3", r"model_kwargs must be a table of model arguments; got 3"),
    ("val_every", "0", r"val_every must be an integer >= 1; got 0"),
    ("learning_rate", "0.1", r"unknown training setting learning_rate = 0\.1; known: anneal_fraction"),
    ("model_kwargs", "{channels = 1000000000}", r"model 'dyconvsr_tiny' with .* would have more parameters"),
    ("cache_dir", b'"\xff"', r"config file .*run\.toml is not UTF-8 text"),
]
FLAG_CASES = [
    (["--batch-size", "0"], r"flags: training setting batch_size must be an integer in 1\.\.4096; got 0"),
    (["--iterations", "-5"], r"flags: training setting iterations must be an integer >= 1; got -5"),
    (["--stop-at", "0"], r"stop_at must be an integer >= 1; got 0"),
    (["--train-scales", "2,x"], r"--train-scales must be comma-separated integers, e\.g\. 2,3,4; got '2,x'"),
]


@pytest.mark.parametrize("key, value, flags, message",
                         [pytest.param(k, v, [], m, id=f"{k} = {v!s}") for k, v, m in SETTING_CASES]
                         + [pytest.param(None, None, f, m, id=" ".join(f)) for f, m in FLAG_CASES])
def test_settings_out_of_range_are_one_line_and_write_nothing(tmp_path: Path, key: str | None,
                                                              value: str | bytes | None, flags: list[str],
                                                              message: str) -> None:
    out = tmp_path / "run"
    settings = {k: v for k, v in {**TINY_RUN, "out": str(out)}.items() if k != key}
    line = f"{key} = ".encode() + (value if isinstance(value, bytes) else str(value).encode()) + b"\n"
    config = toml_file(tmp_path / "run.toml", settings, line if key else b"")
    result = CliRunner().invoke(train_main, ["fit", "--config", str(config), "--quiet", *flags])
    one_line_error(result, message)
    assert not out.exists()


# ---- 5. python -m export with bad inputs ------------------------------------------------------------
EXPORT_CASES = {
    "weights tampered": (lambda s: _flip_last_byte(s.with_suffix(".safetensors")),
                         r"tiny\.safetensors do not match the sha256"),
    "weights hostile, sha forged": (_forged(lambda p: hostile_header(p, length=2**62)),
                                    r"tiny\.safetensors is not a valid safetensors file"),
    "kwargs attack": (_kwargs(channels=10**9), r"would have more parameters than torch can address"),
    "batch too large": (["--batch", "1000"], r"--batch must be 1\.\.64; got 1000"),
    "batch no reference fits": (["--strategy", "aggregate", "--batch", "3"],
                                r"--batch 3: the reference inputs have batch 1 and 2, none a multiple of 3"),
    "opset unknown to torch": (["--opset", "99"], r"--opset must be 13\.\.23; got 99"),
    "fixed shape huge": (["--fixed", "100000", "8"], r"--fixed H must be 1\.\.4096; got 100000"),
}


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_export_refuses_bad_inputs_in_one_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    tamper, message = EXPORT_CASES[case]
    save_checkpoint(tmp_path / "w" / "good", create_model("dyconvsr_tiny"))
    save_checkpoint(tmp_path / "w" / "tiny", create_model("dyconvsr_tiny"))
    if callable(tamper):
        tamper(tmp_path / "w" / "tiny")
    flags = [] if callable(tamper) else tamper
    # The good checkpoint comes first: nothing of it may be exported when the batch holds a bad one.
    args = [str(tmp_path / "w" / "good.json"), str(tmp_path / "w" / "tiny.json"), "-o", str(tmp_path / "out")]
    one_line_error(CliRunner().invoke(export_main, [*args, *QUICK_EXPORT, *flags]), message)
    assert not (tmp_path / "out").exists()


def test_export_summary_escapes_names_from_checkpoints(tmp_path: Path) -> None:
    name = "evil\x1b[2J\nname\u202e"
    save_checkpoint(tmp_path / "w" / name, create_model("dyconvsr_tiny"))
    args = [str(tmp_path / "w" / f"{name}.json"), "-o", str(tmp_path / "out"), *QUICK_EXPORT]
    result = CliRunner().invoke(export_main, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / name / "manifest.json").is_file()
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\u202e" not in stream and "evil\nname" not in stream
    escaped = r"evil\x1b[2J\nname\u202e"
    assert escaped in result.stdout and escaped in result.stderr  # the summary, the "exporting" line
