"""Facts defined once: the export recipe (ExportOptions) as the CLI and the benchmarks use it, the
benchmark CLI's defaults (RunConfig), the one-line exception formatter, the library-version probe,
the TensorRT profile sizes."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import export.cli as export_cli
from benchmarks.artifacts import export_options
from export.artifact import ExportOptions
from export.recipe import FOCUS_HW
from export.tensorrt_build import Profile
from runtime.host import library_versions
from train.checkpoint import save_checkpoint
from train.models import create_model


class _Captured(Exception):
    pass


def _cli_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *flags: str) -> ExportOptions:
    """The ExportOptions `python -m export CHECKPOINT *flags` would export with."""
    save_checkpoint(tmp_path / "m", create_model("srcnn_tiny", scale=2))
    seen: list[ExportOptions] = []

    def capture(checkpoint, target, options, progress):
        seen.append(options)
        raise _Captured

    monkeypatch.setattr(export_cli, "export_artifact", capture)
    result = CliRunner().invoke(export_cli.main, [str(tmp_path / "m.json"), "-o", str(tmp_path / "out"), *flags])
    assert isinstance(result.exception, _Captured), result.output
    return seen[0]


def test_the_cli_exports_the_dataclass_recipe_unless_told_otherwise(tmp_path, monkeypatch) -> None:
    recipe = ExportOptions()
    assert _cli_options(tmp_path, monkeypatch) == recipe
    changed = _cli_options(tmp_path, monkeypatch, "--no-openvino", "--precision", "int8", "--no-tiling",
                           "--strategy", "branches", "--only-default")
    assert changed == dataclasses.replace(recipe, openvino=(), precisions=("int8",), tiling=False,
                                          strategy="branches", extra_strategies=())


def test_benchmarks_export_the_same_recipe() -> None:
    assert export_options(full=True) == ExportOptions()
    baseline = export_options(full=False)
    assert baseline.precisions == baseline.tensorrt == baseline.openvino == () and not baseline.ort_format


def test_the_benchmark_cli_runs_the_run_config_defaults(monkeypatch) -> None:
    import benchmarks.run as bench_run
    from benchmarks.config import RunConfig

    seen: list[RunConfig] = []

    def capture(config):
        seen.append(config)
        raise _Captured

    monkeypatch.setattr(bench_run, "run", capture)
    result = CliRunner().invoke(bench_run.main, [])
    assert isinstance(result.exception, _Captured), result.output
    assert seen == [RunConfig()]


def test_library_versions_reads_metadata_and_skips_what_is_missing() -> None:
    versions = library_versions(("torch", "no-such-package-here"))
    assert versions == {"torch": torch.__version__}


def test_tensorrt_profile_for_a_batch() -> None:
    profile = Profile.for_batch(2, max_batch=4)
    assert profile.opt == (2, 3, *FOCUS_HW) and profile.min[0] == 2 and profile.max[0] == 4
    assert Profile.for_batch(1) == Profile()
