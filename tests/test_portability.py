"""The proof holds off this machine: every shipped checkpoint exports (exit 0) with its INT8 files proven at
every x86 level below this CPU's, export and check pass under oneDNN's ISA caps, bf16 is a skip (with its
reason) where the capped CPU lacks it, and an optional variant a machine cannot run never fails a check."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime import cpu, isa_proof

REPO = Path(__file__).resolve().parents[1]
# Every shipped checkpoint, reduced to what the ISA depends on: model.onnx, the INT8 ONNX, the OpenVINO bf16 and
# INT8 IR (the mobile, LiteRT and tiling files are proven by their own tests).
REDUCED = ["--strategy", "branches", "--only-default", "--precision", "int8", "--no-ort", "--no-tensorrt",
           "--no-mobile", "--openvino", "bf16", "--openvino", "int8", "--no-tiling", "-q"]
CAPS = ("AVX2", "AVX512_CORE")


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900, cwd=cwd,
                          env={**os.environ, **(env or {})})


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def reachable(cap: str) -> bool:
    return cpu.at_least(cpu.native_isa(), cap)


@pytest.fixture(scope="module")
def shipped_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shipped")
    done = run("-m", "export", "-o", str(out), *REDUCED)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_every_shipped_checkpoint_exports_with_int8_proven_at_every_lower_isa(shipped_exports: Path) -> None:
    shipped = sorted(p.stem for p in (REPO / "weights").glob("*.json"))
    assert sorted(p.name for p in shipped_exports.iterdir()) == shipped
    for name in shipped:
        data = manifest(shipped_exports / name)
        int8 = [v for v in data["variants"] if v["precision"] == "int8"]
        assert any(v["kind"] == "onnx" for v in int8), name  # ONNX Runtime's INT8 holds for every network
        for variant in int8:
            levels = variant["notes"]["isa_proof"]["levels"]
            assert variant["parity"]["passed"] and all(level["passed"] is not False for level in levels.values())
            # OpenVINO is run at every level below this CPU's, ONNX Runtime at AVX2 under qemu where it exists.
            backend = "openvino" if variant["kind"] == "openvino" else "onnxruntime"
            wanted = {level for level, _, command, _ in isa_proof.plan(backend) if command}
            assert wanted <= {level for level, proof in levels.items() if proof["passed"]}, (name, variant["file"])
        # An INT8 IR that holds nowhere is left out with its reason, never a failed export.
        if not any(v["kind"] == "openvino" for v in int8):
            assert "8bit weights" in data["notes"]["skipped"]["model.openvino.int8.xml"]


@pytest.mark.parametrize("cap", CAPS)
def test_export_and_check_under_an_isa_cap_pass_with_bf16_skipped(cap: str, tmp_path: Path) -> None:
    if not reachable(cap):
        pytest.skip(f"this CPU ({cpu.native_isa()}) is below {cap}: the cap cannot stand in for it")
    env = {cpu.CAP_VARIABLE: cap}
    done = run("-m", "export", "dyconvsr_x2", "srcnn_x2", "dcnn", "-o", str(tmp_path), *REDUCED, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("dyconvsr_x2", "srcnn_x2", "dcnn"):
        data = manifest(tmp_path / name)
        assert "bf16 needs AVX512-BF16 or AMX" in data["notes"]["skipped"]["model.openvino.bf16.xml"]
        check = run("-m", "runtime.check", str(tmp_path / name), env=env)
        assert check.returncode == 0 and "verdict: PASS" in check.stdout, check.stdout + check.stderr
        assert f"oneDNN capped to {cap}" in check.stdout
        rows = [line for line in check.stdout.splitlines() if ".int8." in line]
        assert rows and all(line.rstrip().endswith("pass") for line in rows), check.stdout
    # The IR proven on the full CPU is a skip under the cap (bf16 cannot be built there), not a failure.
    if cpu.at_least(cpu.native_isa(), cpu.BF16_LEVEL):
        full = tmp_path / "full"
        done = run("-m", "export", "dyconvsr_x2", "-o", str(full), *REDUCED)
        assert done.returncode == 0, done.stderr
        check = run("-m", "runtime.check", str(full / "dyconvsr_x2"), env=env)
        assert check.returncode == 0, check.stdout
        (row,) = [line for line in check.stdout.splitlines() if line.startswith("model.openvino.bf16.xml")]
        assert "skip: bf16 needs AVX512-BF16 or AMX" in row and f"oneDNN at {cap}" in row
        refused = run("-m", "runtime.infer", str(full / "dyconvsr_x2"), str(REPO / "assets" / "astronaut_crop.png"),
                      "-o", str(tmp_path / "out"), "--variant", "model.openvino.bf16.xml", env=env)
        assert refused.returncode == 2 and not (tmp_path / "out").exists()
        assert refused.stderr.count("\n") == 1 and "without --variant this machine runs model.onnx" in refused.stderr


def test_the_ort_int8_recipe_holds_on_an_emulated_avx2_cpu_where_full_range_weights_saturate(tmp_path: Path) -> None:
    """The cause, shown: s8 weights at full range saturate ONNX Runtime's u8 x s8 pairs on a CPU without VNNI."""
    if isa_proof.qemu() is None:
        pytest.skip("qemu-user is not installed (apt install qemu-user): no CPU to emulate")
    from export.artifact import ExportOptions, export_artifact
    from export.precision import to_int8
    from runtime.check import load_reference
    from runtime.runners import RunnerConfig

    options = ExportOptions(strategy="branches", extra_strategies=(), precisions=("int8",), ort_format=False,
                            mobile_shape=None, openvino=(), tensorrt=(), tiling=False)
    folder = tmp_path / "srcnn"
    data = export_artifact(REPO / "weights" / "srcnn_x2", folder, options)
    pairs = [(load_reference(folder, r.input, r.input_shape), load_reference(folder, r.output, r.output_shape))
             for r in data.references]
    config = RunnerConfig(backend="onnxruntime", provider="cpu", threads=2)
    results = {}
    for weights in ("s8", "s8_7bit"):
        to_int8(folder / "model.onnx", tmp_path / f"{weights}.onnx", weights=weights)
        (proof,) = isa_proof.prove_levels(tmp_path / f"{weights}.onnx", "onnxruntime", [x for x, _ in pairs],
                                          [y for _, y in pairs], {"min_psnr_db": 40.0}, None, config)
        results[weights] = proof.parity["psnr_db"]
    assert results["s8"] < 30 < 40 < results["s8_7bit"], results


def test_export_runs_no_foreign_package_from_the_working_folder(tmp_path: Path) -> None:
    """A folder holding an ``onnxruntime/`` package of its own: the export (and its ORT-format child) never runs it."""
    hostile = tmp_path / "hostile"
    (hostile / "onnxruntime").mkdir(parents=True)
    marker = tmp_path / "foreign-code-ran"
    (hostile / "onnxruntime" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    script = Path(sys.executable).parent / "dyconvsr-export"
    if not script.is_file():
        pytest.skip("the console script is not installed in this environment")
    done = subprocess.run([str(script), "srcnn_x2", "-o", str(tmp_path / "out"), "--only-default", "--no-reduced",
                           "--no-openvino", "--no-mobile", "--no-tiling", "--no-tensorrt", "-q"],
                          cwd=hostile, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "srcnn_x2" / "model.ort").is_file() and not marker.exists()
