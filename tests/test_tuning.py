"""The fastest proven engine chosen on the device: `runtime.check --tune` stores a choice keyed by the artifact,
the CPU, its ISA cap, the libraries and the threads; `runtime.infer` without --variant runs it only while that key
holds, and says why with -v."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runtime import tuning
from test_runtime_fixtures import SAMPLE


def run(*args: str, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "DYCONVSR_CACHE": str(cache), **env})


def test_tune_stores_the_fastest_passing_variant_and_infer_runs_it_while_the_key_holds(dy_artifact, tmp_path) -> None:
    cache = tmp_path / "cache"
    tuned = run("runtime.check", str(dy_artifact), "--tune", "--tune-rounds", "2", cache=cache)
    assert tuned.returncode == 0 and "verdict: PASS" in tuned.stdout, tuned.stdout + tuned.stderr
    (record,) = cache.glob("tuning-*.json")
    data = json.loads(record.read_text())
    passed = {line.split()[0] for line in tuned.stdout.splitlines() if line.startswith("model") and
              line.rstrip().endswith("pass")}
    assert set(data["median_ms"]) == passed  # every variant proven here was timed, nothing else
    assert data["chosen"] == min(data["median_ms"], key=data["median_ms"].get)
    assert f"fastest proven engine here: {data['chosen']}" in tuned.stdout

    def infer(*extra: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run("runtime.infer", str(dy_artifact), str(SAMPLE), "-o", str(tmp_path / "out"), "--overwrite", "-v",
                   *extra, cache=cache, **env)

    chosen = infer()
    assert chosen.returncode == 0, chosen.stderr
    assert f"engine: {data['chosen']} (tuned here" in chosen.stderr and f"({data['chosen']} on" in chosen.stderr
    # Another thread count, another ISA cap, another artifact: the record no longer holds.
    changes = ((("--threads", "1"), {}, "threads"), ((), {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "onednn_cap"))
    for extra, env, changed in changes:
        default = infer(*extra, **env)
        assert default.returncode == 0 and f"tuned under another {changed}" in default.stderr, default.stderr
        assert "(model.onnx on" in default.stderr
    forced = infer("--variant", "model.onnx")
    assert forced.returncode == 0 and "(model.onnx on" in forced.stderr


def test_a_record_for_another_artifact_or_a_tampered_one_is_not_trusted(dy_artifact, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DYCONVSR_CACHE", str(tmp_path))
    assert tuning.tuned_variant(dy_artifact, 0)[0] is None
    record = tuning.record_path(tuning.tuning_key(dy_artifact, 0))
    record.write_text("{not json")
    chosen, why = tuning.tuned_variant(dy_artifact, 0)
    assert chosen is None and "tuning record unusable" in why
    key = {"artifact_manifest_sha256": "0" * 64, **tuning.machine_key(0)}
    record.write_text(json.dumps({"format": tuning.FORMAT, "chosen": "model.onnx", "key": key}))
    chosen, why = tuning.tuned_variant(dy_artifact, 0)
    assert chosen is None and "artifact_manifest_sha256" in why
