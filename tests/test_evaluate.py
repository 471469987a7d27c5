"""train.evaluate / train.tables / `python -m train evaluate` on tiny models and a tiny folder."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data
from torch import nn

from runtime.metrics import METRIC_NAMES, Scores, score_pair
from runtime.quality import modcrop
from runtime.resize import imresize
from train.checkpoint import save_checkpoint
from train.evaluate import (
    BICUBIC,
    PRE_UPSCALE,
    Benchmark,
    Candidate,
    embedded_benchmark,
    evaluate,
    evaluate_colour_spaces,
    load_benchmark,
    load_candidates,
)
from train.models import create_model
from train.tables import colour_table, cross_scale_table, dyconvsr_table


class NearestSR(nn.Module):
    """A stand-in SR model whose output we can compute independently: nearest-neighbour upscale."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three small real photographs, sizes not multiples of 2 or 3 (exercises modcrop)."""
    root = tmp_path_factory.mktemp("bench") / "tinyset"
    (root / "nested").mkdir(parents=True)
    Image.fromarray(data.astronaut()[100:171, 150:245]).save(root / "astronaut.png")
    Image.fromarray(data.coffee()[50:125, 200:283]).save(root / "coffee.png")
    Image.fromarray(data.camera()[200:265, 180:259]).save(root / "nested" / "camera.png")  # grayscale
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    return {
        "dyconvsr_x2": save_checkpoint(root / "dyconvsr_x2", create_model("dyconvsr_tiny", scale=2)),
        "srcnn_x3": save_checkpoint(root / "srcnn_x3", create_model("srcnn_tiny", scale=3)),
        "dcnn": save_checkpoint(root / "dcnn", create_model("dcnn_tiny", scale=2)),
    }


def _close(a: Scores, b: Scores) -> bool:
    return all(getattr(a, m) == pytest.approx(getattr(b, m), rel=1e-12) for m in METRIC_NAMES)


def test_modcrop() -> None:
    image = np.zeros((71, 95, 3), dtype=np.uint8)
    assert modcrop(image, 2).shape == (70, 94, 3)
    assert modcrop(image, 3).shape == (69, 93, 3)
    assert modcrop(image, 4).shape == (68, 92, 3)


def test_load_benchmark_reads_nested_and_grayscale(folder) -> None:
    bench = load_benchmark(folder)
    assert bench.name == "tinyset"
    assert [name for name, _ in bench.images] == ["astronaut.png", "coffee.png", "nested/camera.png"]
    assert all(image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 for _, image in bench.images)


def test_bicubic_and_model_rows_match_an_independent_computation(folder) -> None:
    bench = load_benchmark(folder)
    nearest = Candidate("nearest_x3", NearestSR(3))
    results = evaluate([nearest], [bench], scales=[3], progress=False)
    rows = {r.method: r for r in results}
    assert set(rows) == {BICUBIC, "nearest_x3"}
    for (name, image), bic, near in zip(bench.images, rows[BICUBIC].images, rows["nearest_x3"].images, strict=True):
        hr = image[: image.shape[0] // 3 * 3, : image.shape[1] // 3 * 3]
        lr = imresize(hr, 1 / 3)
        assert bic.image == name == near.image
        # Equal up to summation order (array layouts differ).
        assert _close(bic.scores, score_pair(imresize(lr, 3), hr, border=3))
        assert _close(near.scores, score_pair(np.repeat(np.repeat(lr, 3, axis=0), 3, axis=1), hr, border=3))
    # On real photos bicubic beats nearest-neighbour.
    assert rows[BICUBIC].mean.psnr_y > rows["nearest_x3"].mean.psnr_y


def test_evaluate_tiny_checkpoints_gives_rows_per_supported_scale(folder, checkpoints) -> None:
    candidates = load_candidates([checkpoints["dyconvsr_x2"], checkpoints["srcnn_x3"]])
    assert [c.label for c in candidates] == ["dyconvsr_x2", "srcnn_x3"]
    results = evaluate(candidates, [load_benchmark(folder)], scales=[2, 3], progress=False)
    keys = {(r.method, r.scale) for r in results}
    # DyConvSR's scale is in its layers: x2 only; SRCNN is a Y network behind a pre-upscale: both.
    assert keys == {(BICUBIC, 2), (BICUBIC, 3), ("dyconvsr_x2", 2), ("srcnn_x3", 2), ("srcnn_x3", 3)}
    for r in results:
        assert len(r.images) == 3
        m = r.mean
        assert 0 < m.psnr_y < 60 and -1 <= m.ssim_y <= 1 and 0 < m.psnr_rgb < 60 and m.wpsnr_y >= m.psnr_y
        assert 0 <= m.msssim_y <= 1
    # The model's own scale is restored after running it at another.
    assert candidates[1].model.scale == 3


def test_tables_render_published_rows_and_json(folder, checkpoints, tmp_path) -> None:
    candidates = load_candidates([checkpoints["dyconvsr_x2"], checkpoints["srcnn_x3"], checkpoints["dcnn"]])
    bench = load_benchmark(folder)
    results = evaluate(candidates, [Benchmark("set5", bench.images)], scales=[2, 3], progress=False)

    report = dyconvsr_table(results)
    assert "| DyConvSR (published) | 60 | 35.98/.9497 |" in report.markdown
    assert "Bicubic (ours)" in report.markdown and "## x3" in report.markdown
    ours = next(r for r in results if r.method == "dyconvsr_x2")
    x2_section = report.markdown.split("## x2")[1].split("## x3")[0]
    assert f"| dyconvsr_x2 | {ours.params / 1000:.1f} | {ours.mean.psnr_y:.2f}/" in x2_section  # in the Set5 column
    md_path, json_path = report.write(tmp_path)
    document = json.loads(json_path.read_text())
    assert md_path.read_text() == report.markdown
    assert {r["method"] for r in document["results"]} == {BICUBIC, "dyconvsr_x2", "srcnn_x3", "dcnn"}
    assert any(p["method"] == "DyConvSR" for p in document["published"])

    cross = cross_scale_table(results)
    assert "n/a" in cross.markdown  # dyconvsr_x2 tested at x3
    assert "36.659/.954" in cross.markdown  # the paper's static x2 at x2, labelled published
    json.dumps(cross.data, allow_nan=False)


def test_colour_spaces(folder, checkpoints) -> None:
    candidates = load_candidates([checkpoints["srcnn_x3"]])
    bench = load_benchmark(folder)
    results = evaluate_colour_spaces(candidates, [bench], scales=[3], progress=False)
    rows = {(r.method, r.colour): r for r in results}
    assert set(rows) == {(m, c) for m in (PRE_UPSCALE, "srcnn_x3") for c in ("ycbcr", "hsv", "rgb")}
    # Y of YCbCr is exactly what the model's forward does.
    plain = {r.method: r for r in evaluate(candidates, [bench], scales=[3], progress=False)}
    assert _close(rows[("srcnn_x3", "ycbcr")].mean, plain["srcnn_x3"].mean)
    # YCbCr is linear, so a channel-wise bicubic there equals one in RGB (up to 8-bit rounding);
    # HSV is not, so its result differs.
    ycbcr, rgb, hsv = (rows[(PRE_UPSCALE, c)].mean.psnr_rgb for c in ("ycbcr", "rgb", "hsv"))
    assert abs(ycbcr - rgb) < 0.05
    assert hsv != pytest.approx(rgb, abs=1e-6)
    assert "HSV bicubic" in colour_table(results).markdown


def test_colour_table_rejects_rgb_networks(checkpoints) -> None:
    from runtime.errors import UserError

    with pytest.raises(UserError, match="Y-channel"):
        evaluate_colour_spaces(load_candidates([checkpoints["dyconvsr_x2"]]), [], scales=[2])


def test_embedded_benchmark_is_the_held_out_split() -> None:
    bench = embedded_benchmark("val")
    assert bench.name == "embedded-val" and bench.images
    assert all(image.dtype == np.uint8 and image.shape[2] == 3 for _, image in bench.images)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "train", "evaluate", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_writes_markdown_and_json(folder, checkpoints, tmp_path) -> None:
    result = run(str(checkpoints["dyconvsr_x2"]), "--data", str(folder), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "| dyconvsr_x2 |" in result.stdout and "Bicubic (ours)" in result.stdout
    assert (tmp_path / "out" / "dyconvsr.md").read_text().strip() == result.stdout.strip()
    assert json.loads((tmp_path / "out" / "dyconvsr.json").read_text())["table"] == "dyconvsr"


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_cli_missing_folder_is_one_line(tmp_path) -> None:
    line = _one_line_error(run("--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")))
    assert "nowhere" in line


def test_cli_bad_checkpoint_is_one_line(folder, tmp_path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    line = _one_line_error(run(str(bad), "--data", str(folder), "-o", str(tmp_path / "out")))
    assert "broken.json" in line and "JSON" in line
    line = _one_line_error(run(str(tmp_path / "missing"), "--data", str(folder), "-o", str(tmp_path / "out")))
    assert "missing" in line


def test_cli_scores_folders_and_the_embedded_images_together(folder, tmp_path) -> None:
    result = run("--data", str(folder), "--embedded", "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    sets = {row["benchmark"] for row in json.loads((tmp_path / "out" / "dyconvsr.json").read_text())["results"]}
    assert sets == {folder.name, "embedded-val"}
    line = _one_line_error(run("--no-embedded", "-o", str(tmp_path / "out")))
    assert "nothing to evaluate on" in line
