"""``python -m train`` and the ``dyconvsr-train`` command (train/cli.py); without the ``train``
extra (a runtime-only install has no torch) one line says what to install."""
from __future__ import annotations

from runtime.cli_options import run_command


def run(prog_name: str | None = None) -> None:
    run_command("train.cli", extra="train", prog_name=prog_name)


if __name__ == "__main__":
    run("python -m train")
