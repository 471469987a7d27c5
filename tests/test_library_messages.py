"""What libraries say reaches the user as one product line: the reason, not a C++ source location,
and nothing the library writes past Python (absl, frontends) on the way. Real files, real processes."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_runtime_fixtures import REPO, SAMPLE

needs_openvino = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                                    reason="openvino not installed (optional extra [openvino])")


def infer(tmp_path: Path, engine: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runtime.infer", str(engine), str(SAMPLE), "-o", str(tmp_path / "out"),
                           *args], capture_output=True, text=True, cwd=REPO, timeout=120)


@needs_openvino
def test_a_truncated_openvino_ir_says_why_in_one_line(tmp_path, dy_artifact) -> None:
    import openvino as ov

    ov.save_model(ov.convert_model(str(dy_artifact / "model.onnx")), str(tmp_path / "model.xml"))
    text = (tmp_path / "model.xml").read_bytes()
    (tmp_path / "model.xml").write_bytes(text[: len(text) // 2])
    done = infer(tmp_path, tmp_path / "model.xml")
    lines = done.stderr.splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    # The parser's reason depends on where the cut falls ("Error parsing end element tag", "Start-end tags
    # mismatch"): what holds is that it is the XML reason at an offset, not a C++ source location.
    assert re.fullmatch(rf"error: {re.escape(str(tmp_path / 'model.xml'))}: OpenVINO cannot read it "
                        r"\([A-Z][^()]* at offset \d+\)", lines[0]), lines
    assert ".cpp:" not in done.stderr and not (tmp_path / "out").exists()


@needs_openvino
def test_a_file_no_frontend_reads_gives_one_line_and_no_frontend_noise(tmp_path) -> None:
    (tmp_path / "model.onnx").write_text("garbage\n")
    done = infer(tmp_path, tmp_path / "model.onnx", "--backend", "openvino")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'model.onnx'}: OpenVINO cannot read it "
                                                   f"(Unable to read the model: "), done.stderr
    assert ".cpp:" not in done.stderr and "tensorflow" not in done.stderr.lower()
    verbose = infer(tmp_path, tmp_path / "model.onnx", "--backend", "openvino", "-v")
    assert verbose.returncode == 2 and verbose.stderr.splitlines()[-1] == lines[0]  # the noise is there with -v


def test_first_line_skips_cpp_source_locations() -> None:
    from runtime.errors import first_line

    message = ("Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'res.status == pugi::status_ok' failed at "
               "src/frontends/ir/src/input_model.cpp:219:\nError parsing end element tag at offset 299\n\n")
    assert first_line(RuntimeError(message)) == "Error parsing end element tag at offset 299"
    assert first_line(RuntimeError("Exception from a.cpp:3: the reason\nmore")) == "the reason"
    assert first_line(RuntimeError("a plain reason\nsecond")) == "a plain reason"
    assert first_line(RuntimeError("\n  parser failed: bad node  \nstack:\n  frame 1")) == "parser failed: bad node"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(KeyError("weights")) == "'weights'"
