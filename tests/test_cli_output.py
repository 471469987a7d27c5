"""What a user sees: one -q/-v and one runner option set for every command, bars only on a
terminal, -q silent on success, library logs (NNCF) only with -v and never on stdout."""
from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from benchmarks.run import main as benchmarks_main
from export.cli import main as export_main
from runtime.bench.cli import main as bench_main
from runtime.check import main as check_main
from runtime.infer import main as infer_main
from runtime.progress import progress_bar
from test_runtime_fixtures import SAMPLE
from train.checkpoint import save_checkpoint
from train.cli import main as train_main
from train.models import create_model

RUNNER = ("--backend", "--provider", "--strict", "--threads", "--precision")


def options(command: click.Command) -> dict[str, click.Option]:
    return {p.opts[0] if p.opts[0].startswith("--") else p.opts[-1]: p for p in command.params
            if isinstance(p, click.Option)}


def test_every_command_has_the_same_quiet_verbose_and_runner_options() -> None:
    commands = {"runtime.infer": infer_main, "runtime.check": check_main, "runtime.bench": bench_main,
                "export": export_main, "benchmarks.run": benchmarks_main,
                **{f"train {name}": command for name, command in train_main.commands.items()}}
    assert {"train fit", "train evaluate", "train models", "train promote"} <= set(commands)
    seen = {}
    for name, command in commands.items():
        found = options(command)
        for flag, short in (("--quiet", "-q"), ("--verbose", "-v")):
            assert short in found[flag].opts, (name, flag)
            seen.setdefault(flag, found[flag].help)
            assert found[flag].help == seen[flag], (name, flag)
    infer, check = options(infer_main), options(check_main)
    for flag in RUNNER:
        assert infer[flag].help == check[flag].help and infer[flag].default == check[flag].default, flag
    assert options(bench_main)["--threads"].help == infer["--threads"].help


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bars_are_drawn_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for stream, quiet, drawn in ((io.StringIO(), False, False), (_Terminal(), False, True), (_Terminal(), True, False)):
        monkeypatch.setattr(sys, "stderr", stream)
        for _ in progress_bar(range(3), quiet=quiet, desc="work"):
            pass
        assert ("\r" in stream.getvalue()) is drawn, (type(stream).__name__, quiet)


def python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


HAS_NNCF = importlib.util.find_spec("nncf") is not None and importlib.util.find_spec("openvino") is not None
QUICK_EXPORT = ["tiny_x2.json", "--strategy", "branches", "--only-default", "--no-reduced", "--no-ort", "--no-tensorrt",
                "--no-tiling"]


@pytest.mark.slow
def test_quiet_export_prints_nothing(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "tiny_x2", create_model("dyconvsr_tiny"))
    quick = [*QUICK_EXPORT, *(["--openvino", "int8"] if HAS_NNCF else ["--no-openvino"])]
    # The LiteRT converters (TensorFlow Lite, absl, MLIR) are the loudest libraries: a small tile keeps them quick.
    quiet = python("-m", "export", *quick, "--mobile-shape", "32", "48", "-o", "quiet", "-q", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert (tmp_path / "quiet" / "tiny_x2" / "manifest.json").is_file()


@pytest.mark.skipif(not HAS_NNCF, reason="nncf and openvino not installed (the openvino-int8 extra)")
def test_nncf_logs_only_with_verbose_and_never_on_stdout(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "tiny_x2", create_model("dyconvsr_tiny"))
    verbose = python("-m", "export", *QUICK_EXPORT, "--openvino", "int8", "--no-mobile", "-o", "verbose", "-v",
                     cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO:nncf:" in verbose.stderr and "nncf" not in verbose.stdout.lower()
    assert "\r" not in verbose.stderr + verbose.stdout


def test_piped_infer_draws_no_bar_and_quiet_prints_nothing(dy_artifact: Path, tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "second.png")
    # Two images (the per-image bar) of 49 tiles each at --tile 32 (the per-tile bar).
    args = ["-m", "runtime.infer", str(dy_artifact), str(SAMPLE), str(tmp_path / "second.png"), "--tile", "32"]
    piped = python(*args, "-o", "piped", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "" and "\r" not in piped.stderr
    assert [line.split(" (")[0] for line in piped.stderr.splitlines()] == ["upscaled 2 of 2 image(s) x2 into piped/"]
    quiet = python(*args, "-o", "quiet", "-q", cwd=tmp_path)
    assert quiet.returncode == 0 and (quiet.stdout, quiet.stderr) == ("", "")
    assert sorted(p.name for p in (tmp_path / "quiet").iterdir()) == ["astronaut_crop_x2.png", "second_x2.png"]


def test_quiet_check_prints_only_a_failed_verdict(dy_artifact: Path, tmp_path: Path) -> None:
    passed = CliRunner().invoke(check_main, [str(dy_artifact), "-q"], catch_exceptions=False)
    assert passed.exit_code == 0 and passed.output == ""
    broken = tmp_path / "broken"
    shutil.copytree(dy_artifact, broken)
    data = bytearray((broken / "model.onnx").read_bytes())
    data[-100] ^= 0x01
    (broken / "model.onnx").write_bytes(bytes(data))
    failed = CliRunner().invoke(check_main, [str(broken), "-q", "--variant", "model.onnx"], catch_exceptions=False)
    assert failed.exit_code == 1
    assert "model.onnx: sha256 differs from the manifest" in failed.stdout and "verdict: FAIL" in failed.stdout


def test_quiet_and_verbose_together_are_one_line_error(dy_artifact: Path) -> None:
    result = CliRunner().invoke(check_main, [str(dy_artifact), "-q", "-v"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: -q/--quiet and -v/--verbose exclude each other; got both"]


def every_command() -> dict[str, click.Command]:
    from benchmarks.front import main as front_main
    from benchmarks.isa_table import main as isa_table_main
    from benchmarks.readme import main as readme_main
    from benchmarks.report import main as report_main
    from export.mobile_usability import main as usability_main
    from export.packaged import main as packaged_main

    return {"export.packaged": packaged_main, "benchmarks.front": front_main,
            "runtime.infer": infer_main, "runtime.check": check_main, "runtime.bench": bench_main,
            "export": export_main, "export.mobile_usability": usability_main, "benchmarks.run": benchmarks_main,
            "benchmarks.report": report_main, "benchmarks.readme": readme_main, "benchmarks.isa_table": isa_table_main,
            **{f"train {name}": command for name, command in train_main.commands.items()}}


def test_every_path_parameter_refuses_an_empty_value() -> None:
    """Path("") is the current folder: every path option and argument of every command is a NamedPath."""
    from runtime.cli_options import NamedPath

    paths = {f"{name} {param.name}": param.type for name, command in every_command().items()
             for param in command.params if isinstance(param.type, click.Path)}
    assert len(paths) >= 20 and all(isinstance(kind, NamedPath) for kind in paths.values()), paths


@pytest.mark.parametrize("command, args, option", [
    ("runtime.infer", ["ART", "IN.png", "-o", ""], "'-o' / '--output'"),
    ("runtime.check", ["ART", "--json", ""], "'--json'"),
    ("runtime.bench", ["ART", "-o", ""], "'-o' / '--output'"),
    ("export", ["CKPT", "-o", ""], "'-o' / '--out'"),
    ("train evaluate", ["CKPT", "-o", ""], "'-o' / '--out'"),
    ("train fit", ["--config", ""], "'--config'"),
    ("benchmarks.run", ["-o", ""], "'-o' / '--out'"),
    ("benchmarks.report", ["-o", ""], "'-o' / '--out'"),
    ("export.mobile_usability", ["IN.png", "-o", ""], "'-o' / '--out'"),
])
def test_an_empty_output_is_refused_not_the_current_folder(tmp_path, monkeypatch, command: str, args: list[str],
                                                           option: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "IN.png").write_bytes(SAMPLE.read_bytes())
    for name in ("ART", "CKPT"):
        (tmp_path / name).mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(every_command()[command], args)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}: '' is empty; name a file or folder (for the current folder, '.')" \
        in result.stderr, result.stderr
    assert "Traceback" not in result.output and sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_empty_input_argument_is_not_the_current_folder(tmp_path, monkeypatch, dy_artifact) -> None:
    """`runtime.infer ART ""` (an unset shell variable) used to upscale every image of the cwd."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "IN.png").write_bytes(SAMPLE.read_bytes())
    result = CliRunner().invoke(infer_main, [str(dy_artifact), "", "-o", "out", "-q"])
    assert result.exit_code == 1 and result.stderr.splitlines() == [
        "error: '': an empty argument is not a file, folder or pattern"], result.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_quiet_is_silent_on_every_backend_at_the_file_descriptor_level(litert_artifact: Path, tmp_path: Path) -> None:
    """Real processes, so what C++ writes straight to fd 1/2 (ONNX Runtime's coloured warnings, LiteRT's
    'INFO: Created TensorFlow Lite XNNPACK delegate', OpenVINO) would show: with -q nothing does."""
    from runtime.manifest import read_manifest

    variants = [v.file for v in read_manifest(litert_artifact).variants]
    assert {".onnx", ".xml", ".tflite"} <= {Path(v).suffix for v in variants}, variants
    for variant in variants:
        done = python("-m", "runtime.infer", str(litert_artifact), str(SAMPLE), "-o", "out", "--variant", variant, "-q",
                      "--overwrite", cwd=tmp_path)
        assert done.returncode == 0 and (done.stdout, done.stderr) == ("", ""), (variant, done.stdout, done.stderr)
        assert (tmp_path / "out" / "astronaut_crop_x2.png").is_file()


def test_quiet_check_and_bench_are_silent_at_the_file_descriptor_level(litert_artifact: Path, tmp_path: Path) -> None:
    """runtime.check and runtime.bench load every backend's files (ONNX Runtime, OpenVINO, LiteRT) in one process:
    with -q and a passing verdict, nothing reaches fd 1 or 2."""
    check = python("-m", "runtime.check", str(litert_artifact), "-q", cwd=tmp_path)
    assert check.returncode == 0 and (check.stdout, check.stderr) == ("", ""), (check.stdout, check.stderr)
    bench = python("-m", "runtime.bench", str(litert_artifact), "-q", "-r", "36x48", "--rounds", "1",
                   "-o", str(tmp_path / "bench.json"), cwd=tmp_path)
    assert bench.returncode == 0 and (bench.stdout, bench.stderr) == ("", ""), (bench.stdout, bench.stderr)
    assert (tmp_path / "bench.json").is_file()
