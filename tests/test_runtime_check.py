"""python -m runtime.check: the verdict is the result object, and tampering fails it."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from runtime.check import check_artifact, main
from runtime.parity import compare


def copy_artifact(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target)
    return target


def test_comparison_result_is_the_verdict() -> None:
    reference = np.linspace(0, 1, 48, dtype=np.float32).reshape(1, 3, 4, 4)
    close = compare(reference + 5e-5, reference, {"max_abs_diff": 1e-4})
    assert close and close.max_abs_diff == pytest.approx(5e-5, rel=1e-2) and close.psnr_db > 80
    assert not compare(reference + 2e-4, reference, {"max_abs_diff": 1e-4})
    assert compare(reference + 1e-3, reference, {"min_psnr_db": 50.0})
    assert not compare(reference + 1e-2, reference, {"min_psnr_db": 50.0})
    broken = reference.copy()
    broken[0, 0, 0, 0] = np.nan
    result = compare(broken, reference, {"min_psnr_db": 0.0})
    assert not result and not result.finite
    assert not compare(reference[..., :2], reference, {"max_abs_diff": 1.0})
    assert compare(reference, reference, {"max_abs_diff": 0.0}).psnr_db == math.inf


@pytest.mark.parametrize("fixture", ["dy_artifact", "dcnn_artifact"])
def test_fresh_artifact_passes(request, fixture: str) -> None:
    artifact = request.getfixturevalue(fixture)
    report = check_artifact(artifact)
    assert report, report.table()
    names = [row.name for row in report.rows]
    assert "model.onnx" in names and any(name.startswith("tiled") for name in names)
    result = CliRunner().invoke(main, [str(artifact)])
    assert result.exit_code == 0, result.output
    assert "verdict: PASS" in result.stdout and "every sha256 matches" in result.stdout


def test_tampered_engine_fails(dy_artifact, tmp_path) -> None:
    artifact = copy_artifact(dy_artifact, tmp_path)
    engine = artifact / "model.onnx"
    data = bytearray(engine.read_bytes())
    data[-200] ^= 0xFF  # flip bits inside the weights
    engine.write_bytes(bytes(data))
    result = CliRunner().invoke(main, [str(artifact), "--json", str(tmp_path / "report.json")])
    assert result.exit_code == 1
    assert "model.onnx: sha256 differs from the manifest" in result.stdout
    assert "verdict: FAIL" in result.stdout
    assert '"file_problems"' in (tmp_path / "report.json").read_text()


def test_wrong_reference_output_fails_the_variant(dy_artifact, tmp_path) -> None:
    artifact = copy_artifact(dy_artifact, tmp_path)
    manifest_refs = sorted((artifact / "reference").glob("output_*.npy"))
    data = np.load(manifest_refs[0])
    np.save(manifest_refs[0], data + 1e-3)  # the engine now disagrees with "PyTorch" by 1e-3
    report = check_artifact(artifact)
    assert not report
    row = next(r for r in report.rows if r.name == "model.onnx")
    assert row.status == "FAIL" and row.parity["max_abs_diff"] > 1e-4


def test_missing_artifact_is_a_usage_error(tmp_path) -> None:
    result = CliRunner().invoke(main, [str(tmp_path / "nothing")])
    assert result.exit_code == 2 and f"'{tmp_path / 'nothing'}' does not exist" in result.stderr, result.stderr


def test_plan_variant_is_skipped_without_tensorrt(dy_artifact, tmp_path) -> None:
    import importlib.util
    import json

    from runtime.files import sha256_file

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    artifact = copy_artifact(dy_artifact, tmp_path)
    (artifact / "model.fp16.plan").write_bytes(b"\0" * 64)
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["variants"].append({**manifest["variants"][0], "file": "model.fp16.plan", "kind": "tensorrt",
                                 "precision": "fp16", "notes": {"tensorrt_version": "10.3.0"}})
    manifest["files"]["model.fp16.plan"] = sha256_file(artifact / "model.fp16.plan")
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    report = check_artifact(artifact)
    plan = next(row for row in report.rows if row.name == "model.fp16.plan")
    assert plan.status == "skip" and "needs TensorRT" in plan.note
    assert report  # the engines that can run here passed


def test_openvino_judges_fp32_variants_in_f32(dy_artifact) -> None:
    pytest.importorskip("openvino")
    from runtime.runners import RunnerConfig

    report = check_artifact(dy_artifact, RunnerConfig(backend="openvino"))
    assert report, report.table()
    fp32 = [row for row in report.rows if row.name.endswith(".onnx") and "int8" not in row.name
            and "fp16" not in row.name]
    assert fp32 and any(row.name.startswith("tiled") for row in report.rows)
    for row in fp32:  # an explicit f32 hint: OpenVINO never picks bf16 by itself for them
        assert row.engine.startswith("openvino CPU f32") and row.parity["tolerance"] == {"max_abs_diff": 1e-4}
    # Asked for bf16, an fp32 graph is judged at the bf16 floor.
    asked = check_artifact(dy_artifact, RunnerConfig(backend="openvino", precision="bf16"), variants=["model.onnx"])
    (row,) = asked.rows
    if "bf16" in row.engine:
        assert row.parity["tolerance"] == {"min_psnr_db": 40.0}


def test_the_onnx_reference_evaluator_judges_every_onnx_file_and_catches_a_tampered_one(dy_artifact, tmp_path) -> None:
    """--backend onnx-reference runs each .onnx variant and tiling graph by the ONNX specification (numpy), the
    other files on their own backends; a graph whose weights were changed (hashes updated) fails there too."""
    pytest.importorskip("onnx")
    import json

    import onnx

    from runtime.files import sha256_file
    from runtime.runners import RunnerConfig

    report = check_artifact(dy_artifact, RunnerConfig(backend="onnx-reference"))
    judged = [row for row in report.rows if row.engine.startswith("onnx reference")]
    assert report, report.table()
    assert {"model.onnx"} <= {row.name for row in judged} and any(row.name.startswith("tiled") for row in judged)
    assert all(row.parity["max_abs_diff"] <= 1e-4 for row in judged if row.name == "model.onnx")

    folder = tmp_path / "art"
    shutil.copytree(dy_artifact, folder)
    model = onnx.load(folder / "model.onnx")
    weight = next(t for t in model.graph.initializer if len(t.dims) == 4)
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[0] += 0.5
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    onnx.save(model, folder / "model.onnx")
    data = json.loads((folder / "manifest.json").read_text())
    data["files"]["model.onnx"] = sha256_file(folder / "model.onnx")
    (folder / "manifest.json").write_text(json.dumps(data))
    (row,) = check_artifact(folder, RunnerConfig(backend="onnx-reference"), variants=["model.onnx"]).rows
    assert row.status == "FAIL" and row.engine.startswith("onnx reference"), row


def test_infinite_psnr_is_null_in_json_and_infinite_again_when_read() -> None:
    import json
    from dataclasses import asdict

    from runtime.files import json_bytes
    from runtime.manifest import Parity

    reference = np.linspace(0, 1, 48, dtype=np.float32).reshape(1, 3, 4, 4)
    broken = reference.copy()
    broken[0, 0, 0, 0] = np.inf
    for output, psnr in ((reference, math.inf), (broken, -math.inf)):
        written = json.loads(json_bytes(asdict(compare(output, reference, {"max_abs_diff": 1e-4}))))
        assert written["psnr_db"] is None  # strict JSON: no Infinity token
        assert Parity(**written).psnr_db == psnr


def test_check_runs_every_litert_tiling_graph_and_catches_a_swapped_one(litert_artifact, tmp_path) -> None:
    """A fixed-shape file's own tiling graphs are proven on every reference of another size, at its tolerance:
    the fp32 main graph replaced by the INT8 one, or by the stats graph (hashes updated), fails the check."""
    import json
    import shutil

    from click.testing import CliRunner

    from runtime.check import main as check_main
    from runtime.files import sha256_file

    def run(folder: Path) -> tuple[int, dict[str, str]]:
        result = CliRunner().invoke(check_main, [str(folder)], catch_exceptions=False)
        lines = result.stdout.splitlines()
        rows = {line.split("  ")[0]: line for line in lines if line.startswith("tiled (") and ".tflite)" in line}
        return result.exit_code, rows

    code, rows = run(litert_artifact)
    manifest = json.loads((litert_artifact / "manifest.json").read_text())
    mains = [v["tiling"]["main"] for v in manifest["variants"] if v.get("tiling")]
    assert code == 0 and sorted(rows) == sorted(f"tiled ({m})" for m in mains) and len(mains) == 2
    assert all(row.rstrip().endswith("pass") for row in rows.values())
    fp32 = next(v["tiling"] for v in manifest["variants"] if v.get("tiling") and v["precision"] == "fp32")
    int8_main = next(m for m in mains if m != fp32["main"])
    for replacement in (int8_main, fp32["stats"][0]):
        folder = tmp_path / Path(replacement).name
        shutil.copytree(litert_artifact, folder)
        shutil.copyfile(folder / replacement, folder / fp32["main"])
        data = json.loads((folder / "manifest.json").read_text())
        data["files"][fp32["main"]] = sha256_file(folder / fp32["main"])
        (folder / "manifest.json").write_text(json.dumps(data))
        code, rows = run(folder)
        assert code == 1 and "FAIL" in rows[f"tiled ({fp32['main']})"], (replacement, rows)
