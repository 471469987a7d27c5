"""Video in, video out (runtime/video/): real small clips made here from a real photo, panned, with a tone."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from test_runtime_fixtures import BLOCK_TORCH, SAMPLE

av = pytest.importorskip("av")

from PIL import Image  # noqa: E402 - after the skip: PyAV is an optional extra

from runtime import Upscaler  # noqa: E402
from runtime.infer import main as infer  # noqa: E402
from runtime.metrics import psnr, y_channel  # noqa: E402
from runtime.video import SmoothingConfig, VideoOptions, VideoReader, upscale_video  # noqa: E402
from runtime.video.clip import PannedClip, write_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRAINED = ROOT / "weights" / "dyconvsr_x2"


def photo() -> np.ndarray:
    with Image.open(SAMPLE) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def clip_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PannedClip]:
    """A 64x48 LR clip, 12 frames at 25 fps, rotated 90 degrees for display, with a 440 Hz tone."""
    pan = PannedClip(photo(), 2, (64, 48), 12, step=(3, 2))
    path = write_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", pan.lr_frames(), 25, rotation=90)
    return path, pan


def streams(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio
        pts = [frame.pts for frame in container.decode(video)]
        container.seek(0)
        first = next(container.decode(video))
        audio_packets = sum(1 for p in container.demux(audio[0]) if p.size) if audio else 0
        return {"size": (video.width, video.height), "rate": video.average_rate, "pts": pts,
                "time_base": video.time_base, "audio": [a.codec_context.name for a in audio],
                "audio_packets": audio_packets, "rotation": first.rotation}


def run_infer(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(infer, [str(a) for a in args])
    return result.exit_code, result.stderr if hasattr(result, "stderr") else result.output


def test_frames_rate_timestamps_audio_rotation_kept(dy_artifact: Path, clip_pair, tmp_path: Path) -> None:
    clip, _ = clip_pair
    code, err = run_infer(dy_artifact, clip, "-o", tmp_path / "out", "-q")
    assert code == 0, err
    out = tmp_path / "out" / "pan_x2.mp4"
    before, after = streams(clip), streams(out)
    assert after["size"] == (128, 96) and before["size"] == (64, 48)
    assert len(after["pts"]) == len(before["pts"]) == 12
    assert after["rate"] == before["rate"] == 25
    # the same timestamps, in seconds
    assert [p * after["time_base"] for p in after["pts"]] == [p * before["time_base"] for p in before["pts"]]
    assert after["audio"] == ["aac"] and after["audio_packets"] == before["audio_packets"] > 0
    assert after["rotation"] == before["rotation"] == 90
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pan_x2.mp4"]


@pytest.fixture(scope="module")
def trained_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped DyConvSR x2, fp32 ONNX and tiling graphs only (a few seconds to export)."""
    from export.artifact import ExportOptions, export_artifact
    from train.checkpoint import load_checkpoint

    folder = tmp_path_factory.mktemp("trained") / "dyconvsr_x2"
    options = ExportOptions(strategy="branches", extra_strategies=(), precisions=(), ort_format=False,
                            tensorrt=(), openvino=())
    export_artifact(load_checkpoint(TRAINED).model, folder, options)
    return folder


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_quality_above_bicubic_and_smoothing_costs_little(trained_artifact: Path, clip_pair, tmp_path: Path) -> None:
    clip, pan = clip_pair
    hr = list(pan.hr_frames())
    lr = decoded_frames(clip)
    results = {}
    with Upscaler(trained_artifact) as upscaler:
        for name, strength in (("per-frame", 0.0), ("smoothed", 0.7)):
            options = VideoOptions(smoothing=SmoothingConfig(strength), frames=("png", "PNG"))
            upscale_video(upscaler, clip, tmp_path / name, options)
            frames = [np.asarray(Image.open(p)) for p in sorted((tmp_path / name).iterdir())]
            results[name] = np.mean([psnr(y_channel(f)[2:-2, 2:-2], y_channel(h)[2:-2, 2:-2])
                                     for f, h in zip(frames, hr, strict=True)])
    bicubic = np.mean([psnr(y_channel(np.asarray(Image.fromarray(f).resize((128, 96), Image.Resampling.BICUBIC)))
                            [2:-2, 2:-2], y_channel(h)[2:-2, 2:-2]) for f, h in zip(lr, hr, strict=True)])
    assert results["per-frame"] > bicubic + 0.3, (results, bicubic)
    assert abs(results["smoothed"] - results["per-frame"]) < 0.05, results


def test_smoothing_off_is_exactly_per_frame(dy_artifact: Path, clip_pair, tmp_path: Path) -> None:
    clip, _ = clip_pair
    seen: dict[int, np.ndarray] = {}
    with Upscaler(dy_artifact) as upscaler:
        upscale_video(upscaler, clip, tmp_path / "off.mp4", on_frame=lambda i, planes: seen.__setitem__(i, planes))
        with VideoReader(clip) as reader:
            frames = [item.planes for item in reader.items() if hasattr(item, "planes")]
        assert len(seen) == len(frames) == 12
        for index, planes in enumerate(frames):
            assert np.array_equal(seen[index], upscaler.upscale_planar(planes))
        smoothed: dict[int, np.ndarray] = {}
        result = upscale_video(upscaler, clip, tmp_path / "on.mp4", VideoOptions(smoothing=SmoothingConfig(0.9)),
                               on_frame=lambda i, planes: smoothed.__setitem__(i, planes))
    differences = [float(np.abs(smoothed[i] - seen[i]).max()) for i in range(12)]
    assert differences[0] < 1e-4 and max(differences) > 0  # the first frame has no history; later ones do
    assert result.statistics_step is not None and result.scene_cuts == []


def test_corrupt_and_truncated_refused_in_one_line_leaving_nothing(dy_artifact: Path, clip_pair,
                                                                   tmp_path: Path) -> None:
    clip, pan = clip_pair
    data = clip.read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.mp4").write_bytes(data[: len(data) // 2])
    (tmp_path / "in" / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    mkv = write_clip(tmp_path / "whole.mkv", pan.lr_frames(), 25, container="matroska")
    raw = mkv.read_bytes()
    (tmp_path / "in" / "cut.mkv").write_bytes(raw[: int(len(raw) * 0.6)])
    for name in ("cut.mp4", "noise.mp4", "cut.mkv"):
        code, err = run_infer(dy_artifact, tmp_path / "in" / name, "-o", tmp_path / "out", "-q")
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'in' / name}: "), err
        assert "truncated" in lines[0] or "corrupt" in lines[0], err
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_overwrite_refused_then_allowed(dy_artifact: Path, clip_pair, tmp_path: Path) -> None:
    clip, _ = clip_pair
    out = tmp_path / "out"
    assert run_infer(dy_artifact, clip, "-o", out, "-q")[0] == 0
    first = (out / "pan_x2.mp4").stat().st_mtime_ns
    code, err = run_infer(dy_artifact, clip, "-o", out, "-q")
    assert code == 1 and "exists; pass --overwrite" in err
    assert (out / "pan_x2.mp4").stat().st_mtime_ns == first
    assert run_infer(dy_artifact, clip, "-o", out, "-q", "--overwrite", "--crf", "30")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["pan_x2.mp4"]


def test_video_path_runs_without_torch(dy_artifact: Path, clip_pair, tmp_path: Path) -> None:
    clip, _ = clip_pair
    code = (f"{BLOCK_TORCH}; from runtime.infer import main; "
            f"main({[str(dy_artifact), str(clip), '-o', str(tmp_path), '--smooth', '0.5']!r})")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("upscaled 1 of 1 video(s) x2 into"), result.stderr
    assert streams(tmp_path / "pan_x2.mp4")["size"] == (128, 96)


def test_scene_cut_resets_smoothing_and_a_pan_does_not() -> None:
    from runtime.video import PooledSmoother

    pan = PannedClip(photo(), 1, (96, 64), 4, step=(4, 4))
    frames = [np.ascontiguousarray(f.transpose(2, 0, 1), dtype=np.float32) / 255 for f in pan.hr_frames()]
    other = np.full_like(frames[0], 0.1)
    smoother = PooledSmoother(SmoothingConfig(0.8))
    assert [smoother.next_frame(f) for f in [*frames, other]] == [True, False, False, False, True]
    assert smoother.cuts == [4]


def test_a_folder_gives_its_videos_and_images(dy_artifact: Path, clip_pair, tmp_path: Path) -> None:
    clip, _ = clip_pair
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "Pan.MKV").write_bytes(clip.read_bytes())  # the suffix rules of images: any case
    (folder / "pan.mp4").write_bytes(clip.read_bytes())
    Image.fromarray(photo()[:40, :50]).save(folder / "still.png")
    (folder / "notes.txt").write_text("neither")
    code, err = run_infer(dy_artifact, folder, "-o", tmp_path / "out")
    assert code == 0, err
    assert "upscaled 3 of 3 file(s) x2 into" in err
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["pan_x2.mp4", "still_x2.png", "sub/Pan_x2.mp4"]
    assert streams(tmp_path / "out" / "sub" / "Pan_x2.mp4")["size"] == (128, 96)
    empty = tmp_path / "empty"
    (empty / "x").mkdir(parents=True)
    code, err = run_infer(dy_artifact, empty, "-o", tmp_path / "out2", "-q")
    assert code == 1 and "folder holds no image or video files" in err and ".mp4" in err


def test_frames_convert_as_ffmpeg_rgb24_and_round_half_up(clip_pair) -> None:
    """Decoded planes are swscale's 8-bit RGB scaled (its float output is off on fine chroma); written
    planes are rounded half up, clipped, as image frames are."""
    from runtime.video.decode import planar_format
    from runtime.video.encode import fill_planar

    clip, _ = clip_pair
    with VideoReader(clip) as reader:
        planes = next(item.planes for item in reader.items() if hasattr(item, "planes"))
    with av.open(str(clip)) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(planes.transpose(1, 2, 0) * 255 - rgb).max() < 1e-3
    values = np.linspace(-0.1, 1.1, 3 * 70 * 90, dtype=np.float32).reshape(3, 70, 90)
    frame = av.VideoFrame(90, 70, planar_format(8)[0])
    fill_planar(frame, values)
    got = frame.to_ndarray(format="rgb24").transpose(2, 0, 1)
    assert np.array_equal(got, (np.clip(values, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8))


def test_video_rows_time_the_engine_and_the_pipeline_and_skip_files_of_another_shape(tmp_path: Path) -> None:
    from export.artifact import ExportOptions, export_artifact
    from runtime import catalogue
    from runtime.bench.schema import MEASURED
    from runtime.video.bench import video_rows
    from train.models import create_model

    folder = tmp_path / "a"
    manifest = export_artifact(create_model("dyconvsr_tiny"), folder, ExportOptions(
        mobile_shape=None, strategy="branches", extra_strategies=(), fixed_shapes=[(24, 32)], precisions=(),
        ort_format=False, tensorrt=(), openvino=()))
    fixed = next(v.file for v in manifest.variants if v.fixed_input_shape)
    # A LiteRT tile of 24 px cannot hold the halo (14) on both sides: skipped with the reason, not a failed export.
    assert catalogue.litert_file(24, 32, "fp32") in manifest.notes["skipped"]
    rows = {r.variant: r for r in video_rows(folder, manifest, ["model.onnx", fixed], ["40x30"], threads=1, frames=4)}
    whole = rows["model.onnx"]
    assert whole.status == MEASURED and whole.frames == 4 and whole.output_hw == [60, 80]
    assert whole.engine_fps > 0 and whole.end_to_end_fps > 0 and whole.decode_ms > 0 and whole.encode_ms > 0
    assert rows[fixed].status == "not measured: fixed input shape 32x24"


def test_overwrite_of_a_frames_folder_never_deletes_inputs_or_foreign_files(dy_artifact: Path, clip_pair,
                                                                            tmp_path: Path) -> None:
    """runtime.infer DIR -o DIR --overwrite --video-format frames, where DIR/<clip>_x2/ holds the user's files or
    this run's own inputs: refused in one line, everything kept; a folder of our own frames is replaced."""
    import shutil

    clip, _ = clip_pair
    folder = tmp_path / "dir"
    folder.mkdir()
    shutil.copy(clip, folder / "pan.mp4")
    frames = folder / "pan_x2"
    frames.mkdir()
    (frames / "frame_000001.png").write_bytes(b"old frame")
    (frames / "notes.txt").write_text("mine")
    code, err = run_infer(dy_artifact, folder, "-o", folder, "--overwrite", "--video-format", "frames", "-q")
    assert code == 1 and "not frames this tool wrote" in err and "notes.txt" in err
    assert (frames / "notes.txt").read_text() == "mine" and (folder / "pan.mp4").is_file()
    # The frame files are this run's inputs too (DIR is searched recursively): refused, kept.
    (frames / "notes.txt").unlink()
    Image.new("RGB", (16, 16)).save(frames / "frame_000001.png")
    code, err = run_infer(dy_artifact, folder, "-o", folder, "--overwrite", "--video-format", "frames", "-q")
    assert code == 1 and "or are inputs" in err and (frames / "frame_000001.png").is_file()
    (frames / "frame_000001_x2.png").unlink()  # that run's upscaled image input, beside it
    # A folder of our own frames alone (not inputs: the run names the clip only) is replaced.
    code, _ = run_infer(dy_artifact, folder / "pan.mp4", "-o", folder, "--overwrite", "--video-format", "frames", "-q")
    assert code == 0 and len(list(frames.glob("frame_*.png"))) == 12, _
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", ["concat:pan.mp4", "file:pan.mp4", "a:b.mp4", "subfile,,start,0,end,0,,:pan.mp4"])
def test_a_video_file_named_like_an_ffmpeg_protocol_is_that_file(dy_artifact: Path, clip_pair, tmp_path: Path,
                                                                  name: str, monkeypatch) -> None:
    """A real file whose bare name FFmpeg would read as a protocol or URL is read as itself, and written as named."""
    import shutil

    clip, pan = clip_pair
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(clip, folder / name)
    (folder / "pan.mp4").write_bytes(b"not the input")  # what concat:/file: would read instead
    monkeypatch.chdir(folder)
    code, err = run_infer(dy_artifact, name, "-o", name.replace(":", "_") + ".out", "-q")
    assert code == 0, err
    (written,) = (folder / (name.replace(":", "_") + ".out")).iterdir()
    assert written.name == f"{Path(name).stem}_x2.mp4"
    assert streams(written)["size"] == (128, 96) and len(streams(written)["pts"]) == 12


def test_a_frame_size_change_or_a_frame_above_max_pixels_is_refused_leaving_nothing(dy_artifact: Path,
                                                                                   tmp_path: Path) -> None:
    """A stream whose frames change size (64x64, then 64x96) is refused instead of cropped; --max-pixels holds for
    video frames, checked on the header before anything is decoded."""
    first = write_clip(tmp_path / "a.h264", iter([np.full((64, 64, 3), 20 * i, np.uint8) for i in range(5)]),
                       tone_hz=None, container="h264")
    second = write_clip(tmp_path / "b.h264", iter([np.full((96, 64, 3), 20 * i, np.uint8) for i in range(5)]),
                        tone_hz=None, container="h264")
    changing = tmp_path / "changing.mkv"  # raw H.264 inside: FFmpeg probes the content
    changing.write_bytes(first.read_bytes() + second.read_bytes())
    code, err = run_infer(dy_artifact, changing, "-o", tmp_path / "out", "-q")
    assert code == 1 and "frame size changes mid-stream (64x64 at frame 0, 64x96 at frame 5)" in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    small = first.rename(tmp_path / "small.mkv")
    code, err = run_infer(dy_artifact, small, "-o", tmp_path / "out2", "-q", "--max-pixels", "4000")
    assert code == 1 and "64x64 = 4,096 pixels, above the limit 4,000 (--max-pixels)" in err
    assert run_infer(dy_artifact, small, "-o", tmp_path / "out3", "-q", "--max-pixels", "4096")[0] == 0
