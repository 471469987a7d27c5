"""runtime.infer's upscaler conventions (Real-ESRGAN's): -s/--outscale, --suffix, --ext auto, --json; real images
through a real exported artifact."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from runtime.infer import main
from runtime.resize import imresize
from test_runtime_fixtures import SAMPLE


def run(artifact: Path, *args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(artifact), *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def photos(tmp_path: Path) -> dict[str, Path]:
    """The sample as a 37x29 JPEG and PNG (odd sides: the rounding of a fractional scale shows)."""
    crop = Image.open(SAMPLE).convert("RGB").crop((0, 0, 37, 29))
    paths = {"jpg": tmp_path / "photo.jpg", "png": tmp_path / "still.png"}
    crop.save(paths["jpg"], quality=95)
    crop.save(paths["png"])
    return paths


def test_outscale_is_the_network_then_a_matlab_bicubic_to_the_rounded_size(dy_artifact, photos, tmp_path) -> None:
    code, _, err = run(dy_artifact, photos["png"], "-o", tmp_path / "x2", "-q")
    assert code == 0, err
    whole = np.asarray(Image.open(tmp_path / "x2" / "still_x2.png"))
    code, _, err = run(dy_artifact, photos["png"], "-o", tmp_path / "s", "-s", "3.5", "-q")
    assert code == 0, err
    out = Image.open(tmp_path / "s" / "still_x3.5.png")
    assert out.size == (round(37 * 3.5), round(29 * 3.5)) == (130, 102)
    assert np.array_equal(np.asarray(out), imresize(whole, output_shape=(102, 130)))
    # -s at the network's own scale is the network's output, untouched.
    code, _, err = run(dy_artifact, photos["png"], "-o", tmp_path / "s2", "-s", "2", "-q")
    assert code == 0 and np.array_equal(np.asarray(Image.open(tmp_path / "s2" / "still_x2.png")), whole), err


def test_ext_auto_keeps_each_input_format_and_suffix_names_the_output(dy_artifact, photos, tmp_path) -> None:
    code, _, err = run(dy_artifact, photos["jpg"], photos["png"], "-o", tmp_path / "out", "--ext", "auto",
                       "--suffix", "big", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo_big.jpg", "still_big.png"]
    assert Image.open(tmp_path / "out" / "photo_big.jpg").format == "JPEG"
    assert Image.open(tmp_path / "out" / "still_big.png").format == "PNG"
    code, _, err = run(dy_artifact, photos["png"], "-o", tmp_path / "plain", "--suffix", "", "-q")
    assert code == 0 and [p.name for p in (tmp_path / "plain").iterdir()] == ["still.png"], err


@pytest.mark.parametrize("args, message", [
    (("-s", "0"), "-s/--outscale must be a number above 0 and at most 16; got 0.0"),
    (("-s", "20"), "-s/--outscale must be a number above 0 and at most 16; got 20.0"),
    (("-s", "nan"), "-s/--outscale must be a number above 0 and at most 16; got nan"),
    (("--suffix", "../up"), "--suffix must be a plain name part (no '/', '\\\\', control characters); got '../up'"),
    (("--ext", "gif"), "output format must be one of png, jpg, jpeg, webp, tiff, tif, bmp; got 'gif'"),
])
def test_bad_conventions_are_refused_once_before_any_work(dy_artifact, photos, tmp_path, args, message) -> None:
    code, out, err = run(dy_artifact, photos["png"], "-o", tmp_path / "out", *args)
    assert code == 2 and err.splitlines() == [f"error: {message}"] and out == ""
    assert not (tmp_path / "out").exists()


def test_json_summary_records_every_input_and_its_fate(dy_artifact, photos, tmp_path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(photos["png"].read_bytes()[:60])
    code, _, err = run(dy_artifact, photos["png"], broken, tmp_path / "missing.png", "-o", tmp_path / "out",
                       "--json", tmp_path / "summary.json", "-q")
    assert code == 1, err
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["format"] == "dyconvsr-toolchain/infer-summary-v1" and (summary["ok"], summary["failed"]) == (1, 2)
    assert "onnxruntime" in summary["engine"]
    rows = {Path(r["input"]).name: r for r in summary["inputs"]}
    assert rows["still.png"]["status"] == "ok" and Path(rows["still.png"]["output"]).is_file()
    assert rows["broken.png"]["status"] == "failed" and rows["broken.png"]["output"] is None
    assert rows["broken.png"]["error"] and rows["missing.png"]["error"] == "no such file or folder"
    code, out, _ = run(dy_artifact, photos["png"], "-o", tmp_path / "again", "--json", "-", "-q")
    assert code == 0 and json.loads(out)["ok"] == 1


def test_a_gpu_index_runs_there_or_refuses_naming_what_this_machine_has(dy_artifact, photos, tmp_path) -> None:
    """--gpu N (realesrgan-ncnn-vulkan's -g): CUDA's device N for ONNX Runtime and TensorRT, OpenVINO's GPU.N;
    never a silent fall back to the CPU. Here the refusals; on a GPU machine the run (test below)."""
    from runtime.runners.gpu import nvidia_gpus

    refusals = [(["--gpu", "-1"], "error: --gpu must be a GPU index from 0 to 63; got -1"),
                (["--gpu", "0", "--provider", "cpu"], "error: --gpu 0 runs on ONNX Runtime's CUDA or TensorRT "
                                                      "provider; --provider cpu names neither")]
    if not nvidia_gpus():
        refusals.append((["--gpu", "0"], "error: --gpu 0: "))
    if pytest.importorskip("openvino") and not nvidia_gpus():
        refusals.append((["--backend", "openvino", "--gpu", "1"], "error: OpenVINO device 'GPU.1' not available"))
    for args, message in refusals:
        code, out, err = run(dy_artifact, photos["png"], "-o", tmp_path / "never", *args)
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith(message), (args, err)
        assert not (tmp_path / "never").exists()


@pytest.mark.gpu
def test_a_gpu_index_runs_on_that_gpu(dy_artifact, photos, tmp_path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("no CUDA execution provider in this onnxruntime build")
    code, out, err = run(dy_artifact, photos["png"], "-o", tmp_path / "gpu", "--gpu", "0", "--json", "-")
    assert code == 0, err
    assert "GPU 0" in json.loads(out)["engine"], out
    on_cpu = run(dy_artifact, photos["png"], "-o", tmp_path / "cpu", "--provider", "cpu", "-q")
    assert on_cpu[0] == 0
    gpu, cpu = (np.asarray(Image.open(tmp_path / d / "still_x2.png"), dtype=int) for d in ("gpu", "cpu"))
    assert np.abs(gpu - cpu).max() <= 1
