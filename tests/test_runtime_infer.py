"""python -m runtime.infer: inputs, naming, overwrite, image modes, and one test per bad input."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from runtime.images import read_picture
from runtime.infer import main
from runtime.upscaler import Upscaler
from test_runtime_fixtures import SAMPLE


def run(artifact: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(artifact), *map(str, args), "--quiet"], catch_exceptions=False)
    return result.exit_code, result.stderr


def png_bytes(width: int, height: int, bits: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG built by hand (for headers Pillow will not write: 16-bit RGB, huge sizes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp")


@pytest.fixture()
def good(tmp_path: Path, sample_rgb: np.ndarray) -> Path:
    path = tmp_path / "in" / "good.png"
    path.parent.mkdir()
    Image.fromarray(sample_rgb[:40, :30]).save(path)
    return path


# ---- the happy path -------------------------------------------------------------------------
def test_upscales_files_folders_and_globs_keeping_names(dy_artifact, tmp_path, sample_rgb) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(sample_rgb[:20, :24]).save(src / "a.png")
    Image.fromarray(sample_rgb[:11, :13]).save(src / "sub" / "b.jpg")
    Image.fromarray(sample_rgb[:9, :9]).save(tmp_path / "c.webp")
    code, err = run(dy_artifact, src, str(tmp_path / "*.webp"), "-o", tmp_path / "out")
    assert code == 0, err
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["a_x2.png", "c_x2.png", "sub/b_x2.png"]
    with Image.open(tmp_path / "out" / "sub" / "b_x2.png") as out:
        assert out.size == (26, 22)
    assert leftovers(tmp_path / "out") == []


def test_cli_output_equals_the_python_api(dy_artifact, tmp_path) -> None:
    code, err = run(dy_artifact, SAMPLE, "-o", tmp_path, "--tile", "64")
    assert code == 0, err
    with Image.open(SAMPLE) as image, Upscaler(dy_artifact) as up:
        expected = np.asarray(up.upscale(image))
    with Image.open(tmp_path / "astronaut_crop_x2.png") as out:
        assert out.size == (400, 400)
        assert np.abs(np.asarray(out).astype(int) - expected).max() <= 1  # tiled vs untiled, after rounding


def test_refuses_to_overwrite_unless_asked(dy_artifact, good, tmp_path) -> None:
    target = tmp_path / "out" / "good_x2.png"
    target.parent.mkdir()
    target.write_bytes(b"keep me")
    code, err = run(dy_artifact, good, "-o", tmp_path / "out")
    assert code == 1 and f"{target} exists; pass --overwrite" in err
    assert target.read_bytes() == b"keep me"
    code, err = run(dy_artifact, good, "-o", tmp_path / "out", "--overwrite")
    assert code == 0, err
    assert Image.open(target).size == (60, 80)


def test_format_option_and_alpha_refused_by_jpeg(dy_artifact, good, tmp_path) -> None:
    rgba = good.parent / "alpha.png"
    Image.new("RGBA", (8, 6), (10, 20, 30, 40)).save(rgba)
    code, err = run(dy_artifact, good, rgba, "-o", tmp_path / "out", "--format", "jpg")
    assert code == 1
    assert "alpha.png: image has alpha, which JPEG cannot store; use --format png" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good_x2.jpg"]


def test_bad_engine_is_a_usage_error(tmp_path, good) -> None:
    (tmp_path / "art").mkdir()
    code, err = run(tmp_path / "art", good, "-o", tmp_path / "out")
    assert code == 2 and "has no manifest.json" in err


# ---- image modes ----------------------------------------------------------------------------
def _roundtrip(artifact: Path, image: Image.Image, tmp_path: Path, name: str, **save: object) -> Image.Image:
    path = tmp_path / name
    image.save(path, **save)
    code, err = run(artifact, path, "-o", tmp_path / "out")
    assert code == 0, err
    out = Image.open(tmp_path / "out" / (path.stem + "_x2.png"))
    out.load()
    return out


def test_grayscale_stays_grayscale(dy_artifact, tmp_path, sample_rgb) -> None:
    out = _roundtrip(dy_artifact, Image.fromarray(sample_rgb[:15, :17]).convert("L"), tmp_path, "g.png")
    assert (out.mode, out.size) == ("L", (34, 30))


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_upscaled_and_kept(dy_artifact, tmp_path, sample_rgb, mode: str) -> None:
    alpha = np.zeros((16, 20), np.uint8)
    alpha[:, 10:] = 255
    image = Image.fromarray(np.dstack([sample_rgb[:16, :20], alpha]), "RGBA").convert(mode)
    out = _roundtrip(dy_artifact, image, tmp_path, "a.png")
    assert (out.mode, out.size) == (mode, (40, 32))
    out_alpha = np.asarray(out.getchannel("A"))
    assert (out_alpha[:, :16] == 0).all() and (out_alpha[:, 24:] == 255).all()


def test_palette_with_transparency_becomes_rgba(dy_artifact, tmp_path, sample_rgb) -> None:
    palette = Image.fromarray(sample_rgb[:12, :12]).quantize(16)
    palette.info["transparency"] = 0
    out = _roundtrip(dy_artifact, palette, tmp_path, "p.png", transparency=0)
    assert (out.mode, out.size) == ("RGBA", (24, 24))
    assert _roundtrip(dy_artifact, Image.fromarray(sample_rgb[:12, :12]).quantize(16), tmp_path, "q.png").mode == "RGB"


def test_cmyk_becomes_rgb(dy_artifact, tmp_path, sample_rgb) -> None:
    out = _roundtrip(dy_artifact, Image.fromarray(sample_rgb[:10, :14]).convert("CMYK"), tmp_path, "c.jpg")
    assert (out.mode, out.size) == ("RGB", (28, 20))


def test_exif_orientation_is_applied(dy_artifact, tmp_path, sample_rgb) -> None:
    image = Image.fromarray(sample_rgb[:6, :10])  # stored 10 wide, 6 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = _roundtrip(dy_artifact, image, tmp_path, "rotated.jpg", exif=exif)
    assert out.size == (12, 20)


def test_sixteen_bit_grayscale_is_kept_sixteen_bit(dy_artifact, tmp_path) -> None:
    ramp = (np.linspace(0, 65535, 12 * 16).reshape(12, 16)).astype(np.uint16)
    out = _roundtrip(dy_artifact, Image.fromarray(ramp), tmp_path, "deep.png")
    assert out.mode.startswith("I") and out.size == (32, 24)
    values = np.asarray(out).astype(np.int64)
    assert values.max() > 255 and (values % 257 != 0).mean() > 0.5  # not 8-bit data scaled up
    code, err = run(dy_artifact, tmp_path / "deep.png", "-o", tmp_path / "jpg", "--format", "jpg")
    assert code == 1 and "16-bit image cannot be saved as JPEG without truncation" in err


# ---- bad input: one line naming the file, the batch goes on, nothing partial, exit 1 ----------
def _bad_truncated(folder: Path, sample: np.ndarray) -> Path:
    data = io.BytesIO()
    Image.fromarray(sample[:64, :64]).save(data, "PNG")
    (folder / "truncated.png").write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    return folder / "truncated.png"


def _bad_corrupt(folder: Path, sample: np.ndarray) -> Path:
    data = io.BytesIO()
    Image.fromarray(sample[:32, :32]).save(data, "JPEG")
    raw = bytearray(data.getvalue())
    raw[len(raw) // 2 : len(raw) // 2 + 400] = bytes(400)
    raw[2:4] = b"\x00\x00"  # break the first marker too
    (folder / "corrupt.jpg").write_bytes(bytes(raw))
    return folder / "corrupt.jpg"


def _bad_zero(folder: Path, sample: np.ndarray) -> Path:
    (folder / "zero.png").write_bytes(b"")
    return folder / "zero.png"


def _bad_text(folder: Path, sample: np.ndarray) -> Path:
    (folder / "notes.png").write_text("this is not an image\n")
    return folder / "notes.png"


def _bad_bomb(folder: Path, sample: np.ndarray) -> Path:
    # 10000 x 10000 = 1e8 pixels: above Pillow's limit (89.5M), where Pillow itself only warns.
    (folder / "bomb.png").write_bytes(png_bytes(10000, 10000, 8, 0, b""))
    return folder / "bomb.png"


def _bad_multiframe(folder: Path, sample: np.ndarray) -> Path:
    frames = [Image.fromarray(sample[:8, :8]), Image.fromarray(sample[8:16, :8])]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    return folder / "anim.gif"


def _bad_small(folder: Path, sample: np.ndarray) -> Path:
    Image.fromarray(sample[:3, :5]).save(folder / "tiny.png")
    return folder / "tiny.png"


def _bad_rgb16(folder: Path, sample: np.ndarray) -> Path:
    rows = np.full((4, 5, 3), 40000, dtype=">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    (folder / "deep_rgb.png").write_bytes(png_bytes(5, 4, 16, 2, raw))
    return folder / "deep_rgb.png"


BAD_INPUTS = {
    "truncated": (_bad_truncated, "corrupt or truncated image"),
    "corrupt": (_bad_corrupt, "not an image file Pillow can read"),
    "zero-byte": (_bad_zero, "empty file (0 bytes)"),
    "non-image": (_bad_text, "not an image file Pillow can read"),
    "decompression-bomb": (_bad_bomb, "10000x10000 = 100000000 pixels exceeds the decompression-bomb limit"),
    "multi-frame": (_bad_multiframe, "multi-frame image (2 frames)"),
    "too-small": (_bad_small, "image is 5x3; this model needs at least 4x4"),
    "16-bit-rgb": (_bad_rgb16, "16-bit RGB image: Pillow can only decode it truncated to 8 bits"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_reported_and_the_batch_goes_on(dy_artifact, tmp_path, good, sample_rgb, case: str) -> None:
    make, reason = BAD_INPUTS[case]
    bad = make(good.parent, sample_rgb)
    out = tmp_path / "out"
    code, err = run(dy_artifact, bad, good, "-o", out, "--min-size", "4")
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {bad}: ") and reason in lines[0], lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["good_x2.png"]  # nothing for the bad file, no temp files
    assert Image.open(out / "good_x2.png").size == (60, 80)


def test_missing_input_and_empty_glob_are_reported(dy_artifact, tmp_path, good) -> None:
    code, err = run(dy_artifact, tmp_path / "nope.png", str(tmp_path / "*.tif"), good, "-o", tmp_path / "out")
    assert code == 1
    assert "nope.png: no such file or folder" in err and "*.tif: pattern matches no files" in err
    assert (tmp_path / "out" / "good_x2.png").is_file()


def test_a_failing_write_leaves_nothing_behind(dy_artifact, tmp_path, good, monkeypatch) -> None:
    def broken_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    code, err = run(dy_artifact, good, "-o", tmp_path / "out")
    assert code == 1 and "good.png: OSError: disk full" in err
    assert list((tmp_path / "out").iterdir()) == []


def test_bomb_limit_can_be_raised_for_trusted_files(tmp_path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(300, 200, 8, 0, b"\x00" * (301 * 200)))
    with pytest.raises(Exception, match="60000 pixels exceeds the decompression-bomb limit of 50000"):
        read_picture(path, max_pixels=50_000)
    assert read_picture(path, max_pixels=100_000).size == (300, 200)


def test_engine_flags_and_strict_provider_on_the_command_line(dy_artifact, good, tmp_path) -> None:
    code, err = run(dy_artifact, good, "-o", tmp_path / "a", "--threads", "1", "--provider", "cpu", "--batch", "3",
                    "--tile", "16")
    assert code == 0, err
    with Image.open(tmp_path / "a" / "good_x2.png") as tiled, Upscaler(dy_artifact) as up:
        expected = np.asarray(up.upscale(Image.open(good)))
        assert np.abs(np.asarray(tiled).astype(int) - expected).max() <= 1
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        code, err = run(dy_artifact, good, "-o", tmp_path / "b", "--provider", "cuda")
        assert code == 2 and "CUDAExecutionProvider not running" in err
        assert not (tmp_path / "b").exists()
