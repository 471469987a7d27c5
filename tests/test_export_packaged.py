"""export/packaged.py: the wheel's engines cut from a real exported artifact; runtime/packaged.py and
cli_options.ArtifactPath: a packaged model found by name, a path of the same name winning."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from export.packaged import MAX_REFERENCE_PIXELS, is_packaged, main, package_artifact
from runtime.check import check_artifact
from runtime.check import main as check_main
from runtime.manifest import read_manifest, verify_files
from runtime.runners import RunnerConfig


def test_a_packaged_artifact_is_the_device_subset_and_proves_itself(litert_artifact: Path, tmp_path: Path) -> None:
    source = read_manifest(litert_artifact)
    packaged = package_artifact(litert_artifact, tmp_path / "tiny.artifact")
    folder = tmp_path / "tiny.artifact"
    assert read_manifest(folder) == packaged and not verify_files(folder, packaged)
    kept = {v.file for v in packaged.variants}
    assert kept == {v.file for v in source.variants if is_packaged(v, source.default_variant)}
    assert {v.kind for v in source.variants if v.file not in kept} >= {"openvino"}  # what a device install lacks
    assert any(f.endswith(".tflite") for f in kept) and not any(f.endswith(".xml") for f in kept)
    listed = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert listed == sorted([*packaged.files, "manifest.json"])  # nothing beside what the manifest lists
    assert packaged.references and all(r.input_shape[2] * r.input_shape[3] <= MAX_REFERENCE_PIXELS
                                       for r in packaged.references)
    for variant in packaged.variants:  # provenance: a source left out is named, not lost
        original = source.variant(variant.file)
        assert variant.source == original.source or variant.notes["packaged_without"] == original.source
        assert variant.parity == original.parity
    report = check_artifact(folder, RunnerConfig())
    assert report, report.table()
    assert {row.name for row in report.rows if row.status == "pass"} >= {"model.onnx"}


def test_packaging_refuses_a_tampered_artifact_and_leaves_the_previous_package(litert_artifact: Path,
                                                                                tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(litert_artifact, source)
    out = tmp_path / "engines"
    result = CliRunner().invoke(main, [str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    before = sorted(p.read_bytes() for p in (out / "src.artifact").rglob("*") if p.is_file())
    (source / "model.onnx").write_bytes(b"tampered")
    result = CliRunner().invoke(main, [str(source), "-o", str(out)])
    assert result.exit_code == 2 and "model.onnx: sha256 differs" in result.stderr, result.stderr
    assert sorted(p.read_bytes() for p in (out / "src.artifact").rglob("*") if p.is_file()) == before
    assert [p.name for p in out.iterdir()] == ["src.artifact"]  # no staging folder left behind


def test_a_model_name_finds_the_packaged_artifact_unless_a_path_of_that_name_exists(
        dy_artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.packaged import packaged_models

    models = packaged_models()
    if "dyconvsr_x2" not in models:
        pytest.skip("no packaged dyconvsr_x2 in this install (make engines writes engines/)")
    monkeypatch.chdir(tmp_path)
    by_name = CliRunner().invoke(check_main, ["dyconvsr_x2", "-q"])
    assert by_name.exit_code == 0, by_name.output
    shutil.copytree(dy_artifact, tmp_path / "dyconvsr_x2")  # a folder of that name here: it is what runs
    here = CliRunner().invoke(check_main, ["dyconvsr_x2"])
    assert here.exit_code == 0 and here.stdout.splitlines()[0].endswith("  dyconvsr_x2"), here.stdout
    missing = CliRunner().invoke(check_main, ["srcnn_x9"])
    assert missing.exit_code == 2 and "'srcnn_x9' is neither a file or folder here nor a packaged model (" \
        f"{', '.join(models)})" in missing.stderr, missing.stderr
