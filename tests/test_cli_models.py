from __future__ import annotations

import subprocess
import sys

from train.models import SUPPORTED_SCALES, list_models


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "train", *args], capture_output=True, text=True, timeout=300)


def test_models_command_prints_params_and_macs() -> None:
    result = run("models", "--scale", "2")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(lines) == set(list_models(include_tiny=False)) >= {"dyconvsr", "dyconvsr_static", "srcnn", "dcnn"}
    assert "59,970" in lines["dyconvsr"]
    # SRCNN x2 at 256x256 LR runs at 512x512: (81*64 + 64*32 + 32*25) * 512^2 MACs.
    assert f"{(81 * 64 + 64 * 32 + 32 * 25) * 512 * 512 / 1e9:.2f} GMAC" in lines["srcnn"]
    assert "MACs @ 256x256" in result.stdout


def test_all_lists_the_tiny_variants_at_every_scale() -> None:
    result = run("models", "--all", "--size", "8")
    assert result.returncode == 0, result.stderr
    rows = {(line.split()[0], line.split()[1]) for line in result.stdout.splitlines()[1:]}
    assert rows == {(name, f"x{scale}") for name in list_models() for scale in SUPPORTED_SCALES}


def test_cli_errors_are_one_line_without_traceback() -> None:
    result = run("models", "--size", "0")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
