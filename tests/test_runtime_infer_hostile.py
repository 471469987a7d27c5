"""python -m runtime.infer against hostile outputs, inputs and signals ("no silent loss, no escape,
no hang, no traceback"): one test per class, each asserting the message, the exit code, that the
good files of the same batch were written and that nothing partial or foreign is left."""
from __future__ import annotations

import errno
import io
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.errors import UserError
from runtime.files import atomic_path
from runtime.images import read_picture
from runtime.runners.base import MAX_THREADS
from runtime.upscaler import Upscaler
from test_runtime_infer import png_bytes, run

ROOT = Path(__file__).resolve().parents[1]
TRUNCATED = ("-bit {mode} image: Pillow can only decode it truncated to 8 bits, and this runtime keeps 16-bit "
             "precision only for grayscale; convert it to 8-bit (or 16-bit grayscale) first")


def infer_command(artifact: Path, *args: object) -> list[str]:
    return [sys.executable, "-m", "runtime.infer", str(artifact), *map(str, args)]


def cli(artifact: Path, *args: object, timeout: float = 300, **kwargs: object
        ) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process (real signals, real stderr), --quiet, bounded in time."""
    return subprocess.run(infer_command(artifact, *args, "--quiet"), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kwargs)


def lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def save(path: Path, rgb: np.ndarray, **options: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **options)
    return path


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()  # complete, not just a header
        return image.size


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# ---- 1. lost data ------------------------------------------------------------------------------
def _no_hard_links(src: object, dst: object, **kwargs: object) -> None:
    raise OSError(errno.EPERM, "Operation not permitted")  # what FAT and some network file systems say


def test_no_output_is_lost_to_a_concurrent_writer_an_own_input_or_a_dangling_link(
        dy_artifact, tmp_path, sample_rgb, monkeypatch) -> None:
    # The helper, interleaved by hand: another writer takes the name while this one writes.
    target = tmp_path / "helper" / "result.bin"
    for hard_links in (True, False):
        with monkeypatch.context() as patch:
            if not hard_links:
                patch.setattr(os, "link", _no_hard_links)
            rivals = (lambda: target.write_bytes(b"theirs"), lambda: target.symlink_to(tmp_path / "nowhere"))
            for rival in rivals:
                with pytest.raises(FileExistsError), atomic_path(target, replace=False) as tmp:
                    tmp.write_bytes(b"mine")
                    rival()
                assert os.listdir(target.parent) == ["result.bin"]
                assert target.is_symlink() or target.read_bytes() == b"theirs"
                target.unlink()
            with atomic_path(target, replace=False) as tmp:  # and a free name is published
                tmp.write_bytes(b"mine")
            assert target.read_bytes() == b"mine" and os.listdir(target.parent) == ["result.bin"]
            target.unlink()

    # Two real processes: a rival run writes out/a_x2.png after this run checked the name was free.
    a = save(tmp_path / "in" / "a.png", sample_rgb[:40, :30])
    b = save(tmp_path / "in" / "b.png", sample_rgb[:16, :18])
    rival_input = save(tmp_path / "rival" / "a.png", sample_rgb[100:112, 100:110])  # same output name
    out = tmp_path / "out"
    upscale, rival = Upscaler.upscale_picture, {}

    def upscale_while_a_rival_writes(self: Upscaler, picture: object) -> object:
        if not rival:
            rival["run"] = cli(dy_artifact, rival_input, "-o", out)
            rival["bytes"] = (out / "a_x2.png").read_bytes()
        return upscale(self, picture)

    monkeypatch.setattr(Upscaler, "upscale_picture", upscale_while_a_rival_writes)
    code, err = run(dy_artifact, a, b, "-o", out)
    assert rival["run"].returncode == 0, rival["run"].stderr
    assert code == 1
    assert lines(err) == [f"error: {a}: {out / 'a_x2.png'} exists: another process wrote it meanwhile, "
                          "and it is kept; pass --overwrite to replace it"]
    assert (out / "a_x2.png").read_bytes() == rival["bytes"] and size_of(out / "a_x2.png") == (20, 24)
    assert size_of(out / "b_x2.png") == (36, 32)
    assert listing(out) == ["a_x2.png", "b_x2.png"]
    monkeypatch.undo()

    # --overwrite into the input folder: foo.png -> foo_x2.png, which is itself an input.
    same = tmp_path / "same"
    foo = save(same / "foo.png", sample_rgb[:40, :30])
    foo_x2 = save(same / "foo_x2.png", sample_rgb[50:70, 50:74])
    before = foo_x2.read_bytes()
    code, err = run(dy_artifact, same, "-o", same, "--overwrite")
    assert code == 1
    assert lines(err) == [f"error: {foo}: output {foo_x2} is one of this run's inputs, and inputs are never "
                          "written over; choose another -o folder"]
    assert foo_x2.read_bytes() == before
    assert size_of(same / "foo_x2_x2.png") == (48, 40)  # made from the untouched input
    assert listing(same) == ["foo.png", "foo_x2.png", "foo_x2_x2.png"]

    # A dangling symlink at the output name counts as existing.
    links = tmp_path / "links"
    links.mkdir()
    (links / "a_x2.png").symlink_to(tmp_path / "elsewhere" / "a_x2.png")
    code, err = run(dy_artifact, a, b, "-o", links)
    assert code == 1
    assert lines(err) == [f"error: {a}: {links / 'a_x2.png'} exists; pass --overwrite to replace it"]
    assert os.readlink(links / "a_x2.png") == str(tmp_path / "elsewhere" / "a_x2.png")
    assert not (tmp_path / "elsewhere").exists()
    assert size_of(links / "b_x2.png") == (36, 32)
    assert listing(links) == ["a_x2.png", "b_x2.png"]


# ---- 2. partial files and signals --------------------------------------------------------------
def test_a_terminated_or_killed_run_leaves_nothing_partial(dy_artifact, tmp_path, sample_rgb) -> None:
    out = tmp_path / "out"
    out.mkdir()
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    # Left by writers killed with SIGKILL: one whose PID is gone, one whose PID now names a
    # process started after the file was written (PID 1 in 1970).
    stale = [out / f".old_x2.png.pid{finished.pid}.0123abcd.tmp", out / ".older_x2.png.pid1.89abcdef.tmp"]
    for path in stale:
        path.write_bytes(os.urandom(3 << 20))
    os.utime(stale[1], (1_000_000, 1_000_000))
    # A live writer's temp file (this process) and files of other tools stay.
    kept = [out / f".live_x2.png.pid{os.getpid()}.fedcba98.tmp", out / ".notes.tmp",
            out / f".x.pid{finished.pid}.tmp"]
    for path in kept:
        path.write_bytes(b"not ours to remove")

    long_input = save(tmp_path / "in" / ("n" * 239 + ".png"), sample_rgb[:20, :16])
    long_output = out / ("n" * 239 + "_x2.png")
    assert len(long_output.name) == 246  # its temp name would exceed NAME_MAX unshortened
    noise = np.random.default_rng(0).integers(0, 256, (1800, 1800, 3), dtype=np.uint8)
    big = save(tmp_path / "in" / "big.png", noise, compress_level=1)
    after = save(tmp_path / "in" / "after.png", sample_rgb[:10, :10])

    child = subprocess.Popen(infer_command(dy_artifact, long_input, big, after, "-o", out, "--quiet"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        # Terminate while big_x2.png is being written: its temp file exists.
        big_temp = f".big_x2.png.pid{child.pid}."
        while not (long_output.exists() and any(n.startswith(big_temp) for n in os.listdir(out))):
            assert child.poll() is None, f"finished before it could be terminated: {child.communicate()}"
            assert time.monotonic() < deadline, "big_x2.png never started"
            time.sleep(0.005)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 143
    assert lines(err) == ["terminated"]
    assert size_of(long_output) == (32, 40)
    assert listing(out) == sorted([long_output.name, *(p.name for p in kept)])


# ---- 3. global state ---------------------------------------------------------------------------
def test_the_bomb_limit_is_per_call_and_pillows_global_is_never_changed(dy_artifact, tmp_path, monkeypatch) -> None:
    # Pillow alone now warns above 20,000 pixels and raises above 40,000.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)
    medium = tmp_path / "in" / "medium.png"  # 300x200 = 60,000 pixels
    medium.parent.mkdir()
    medium.write_bytes(png_bytes(300, 200, 8, 0, b"\x00" * (301 * 200)))
    bomb = tmp_path / "in" / "bomb.png"
    bomb.write_bytes(png_bytes(10000, 10000, 8, 0, b""))

    def read(kind: str) -> None:
        if kind == "raised":
            assert read_picture(medium, max_pixels=100_000).size == (300, 200)
        elif kind == "lowered":
            with pytest.raises(UserError, match="60000 pixels exceeds the decompression-bomb limit of 50000 "):
                read_picture(medium, max_pixels=50_000)
        elif kind == "default":
            with pytest.raises(UserError, match="100000000 pixels exceeds the decompression-bomb limit of 20000 "):
                read_picture(bomb)
        else:  # other code's Image.open in the same process keeps Pillow's own check
            with pytest.raises(Image.DecompressionBombError):
                Image.open(medium)

    failures: list[str] = []
    kinds = ["raised", "lowered", "default", "pillow", "raised", "default"]
    start = threading.Barrier(len(kinds))

    def reader(kind: str) -> None:
        start.wait()
        try:
            for _ in range(25):
                read(kind)
                assert Image.MAX_IMAGE_PIXELS == 20_000
        except BaseException as exc:  # reported by the main thread
            failures.append(f"{kind}: {exc!r}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=reader, args=(kind,), daemon=True) for kind in kinds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert [w.message for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []
    assert Image.MAX_IMAGE_PIXELS == 20_000

    # The CLI in this process: --max-pixels above Pillow's limit takes effect, the bomb is refused.
    out = tmp_path / "out"
    code, err = run(dy_artifact, bomb, medium, "-o", out, "--max-pixels", "100000")
    assert code == 1
    assert lines(err) == [f"error: {bomb}: 10000x10000 = 100000000 pixels exceeds the decompression-bomb limit of "
                          "100000 (raise it with --max-pixels if the file is trusted)"]
    assert Image.MAX_IMAGE_PIXELS == 20_000
    monkeypatch.undo()
    assert size_of(out / "medium_x2.png") == (600, 400)
    assert listing(out) == ["medium_x2.png"]


# ---- 4. hangs ----------------------------------------------------------------------------------
def test_symlink_loops_never_hang_a_folder_walk_or_a_glob(dy_artifact, tmp_path, sample_rgb) -> None:
    src = tmp_path / "src"
    save(src / "a.png", sample_rgb[:12, :14])
    save(src / "sub" / "b.png", sample_rgb[:10, :8])
    # glob.glob("src/**/*.png", recursive=True) follows these and never ends.
    for link, to in [("self", "."), ("sub/up", ".."), ("sub/again", "../sub"), ("sub/deeper", ".")]:
        (src / link).symlink_to(to, target_is_directory=True)
    (src / "alias.png").symlink_to("a.png")  # one file under two names: upscaled once
    (src / "ring.png").symlink_to("ring.png")  # a link to itself
    out = tmp_path / "out"
    result = cli(dy_artifact, src, f"{src}/**/*.png", src / "ring.png", "-o", out, timeout=240)
    assert result.returncode == 1
    assert lines(result.stderr) == [f"error: {src / 'ring.png'}: no such file or folder"]
    assert listing(out) == ["a_x2.png", "sub", "sub/b_x2.png"]
    assert size_of(out / "a_x2.png") == (28, 24) and size_of(out / "sub" / "b_x2.png") == (16, 20)


# ---- 5. 16-bit RGB(A) --------------------------------------------------------------------------
def _jpeg2000(rgb: np.ndarray, container: bool, bits: int | None = None) -> bytes:
    """An 8-bit JPEG 2000 file from Pillow; with ``bits``, its codestream header (SIZ) says so."""
    data = io.BytesIO()
    Image.fromarray(rgb).save(data, "JPEG2000", no_jp2=not container)
    raw = bytearray(data.getvalue())
    if bits:
        siz = raw.index(b"\xff\x4f\xff\x51") + 2  # after SOC; components' Ssiz at +40, +43, +46
        for component in range(3):
            raw[siz + 40 + 3 * component] = bits - 1
    return bytes(raw)


def _bmp_565(width: int, height: int, pixel: int) -> bytes:
    """A 16-bit-a-pixel 5-6-5 BMP: fewer than 8 bits a sample, not to be mistaken for deep colour."""
    rows = b"".join(struct.pack(f"<{width}H", *[pixel] * width).ljust((width * 2 + 3) // 4 * 4, b"\0")
                    for _ in range(height))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 16, 3, len(rows), 2835, 2835, 0, 0)
    info += struct.pack("<III", 0xF800, 0x07E0, 0x001F)
    offset = 14 + len(info)
    return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + info + rows


def test_more_than_8_bits_a_colour_sample_is_refused_never_truncated(dy_artifact, tmp_path, sample_rgb) -> None:
    import tifffile

    src = tmp_path / "in"
    src.mkdir()
    deep = np.full((4, 5, 3), 40000, dtype=">u2")
    deep_rgba = np.concatenate([deep, np.full((4, 5, 1), 65535, ">u2")], axis=2)

    def png_rows(array: np.ndarray) -> bytes:
        return b"".join(b"\x00" + row.tobytes() for row in array)

    refused = {  # file -> (bits, mode) Pillow would have decoded it to 8 bits from
        "png_rgb16.png": (png_bytes(5, 4, 16, 2, png_rows(deep)), 16, "RGB"),
        "png_rgba16.png": (png_bytes(5, 4, 16, 6, png_rows(deep_rgba)), 16, "RGBA"),
        "ppm_rgb16.ppm": (b"P6 5 4 65535\n" + deep.tobytes(), 16, "RGB"),
        "ppm_rgb10.ppm": (b"P6 5 4 1023\n" + np.full((4, 5, 3), 700, ">u2").tobytes(), 10, "RGB"),
        "ppm_plain16.ppm": (b"P3 2 1 65535\n40000 1 2 3 4 5\n", 16, "RGB"),
        "jp2_rgb16.jp2": (_jpeg2000(sample_rgb[:8, :8], container=True, bits=16), 16, "RGB"),
    }
    for name, (data, _, _) in refused.items():
        (src / name).write_bytes(data)
    tifffile.imwrite(src / "tif_rgb16.tif", deep.astype("<u2"), photometric="rgb")
    # zlib-compressed: decoded through libtiff
    tifffile.imwrite(src / "tif_zip16.tif", deep.astype("<u2"), photometric="rgb", compression="zlib")
    refused["tif_rgb16.tif"] = refused["tif_zip16.tif"] = (b"", 16, "RGB")
    codestream = tmp_path / "j2k_rgb16.j2k"  # not picked by folder walks: named on the command line
    codestream.write_bytes(_jpeg2000(sample_rgb[:8, :8], container=False, bits=16))

    # The 8-bit (and 16-bit grayscale) files of the same batch, each format's twin.
    save(src / "good_png.png", sample_rgb[:4, :5])
    save(src / "good_tif.tif", sample_rgb[:4, :5])
    save(src / "good_ppm.ppm", sample_rgb[:4, :5])
    (src / "gray16.ppm").write_bytes(b"P5 5 4 65535\n" + deep[..., 0].tobytes())
    (src / "good_jp2.jp2").write_bytes(_jpeg2000(sample_rgb[:8, :8], container=True))
    (src / "good565.bmp").write_bytes(_bmp_565(5, 4, 0xF800))
    good_codestream = tmp_path / "good_j2k.j2k"
    good_codestream.write_bytes(_jpeg2000(sample_rgb[:8, :8], container=False))

    out = tmp_path / "out"
    code, err = run(dy_artifact, src, codestream, good_codestream, "-o", out)
    assert code == 1
    expected = [f"error: {src / name}: {bits}{TRUNCATED.format(mode=mode)}"
                for name, (_, bits, mode) in refused.items()]
    expected.append(f"error: {codestream}: 16{TRUNCATED.format(mode='RGB')}")
    assert sorted(lines(err)) == sorted(expected)
    assert listing(out) == ["good565_x2.png", "good_j2k_x2.png", "good_jp2_x2.png", "good_png_x2.png",
                            "good_ppm_x2.png", "good_tif_x2.png", "gray16_x2.png"]
    assert size_of(out / "good_ppm_x2.png") == (10, 8) and size_of(out / "good_j2k_x2.png") == (16, 16)
    with Image.open(out / "good565_x2.png") as red, Image.open(out / "gray16_x2.png") as gray:
        assert red.getpixel((0, 0))[0] > 200 and gray.mode.startswith("I")


# ---- 6. output hygiene -------------------------------------------------------------------------
def test_file_names_and_library_noise_cannot_split_or_forge_error_lines(dy_artifact, tmp_path, sample_rgb) -> None:
    src = tmp_path / "in"
    src.mkdir()
    forged = src / "bad\nerror: good.png: forged line.png"
    forged.write_text("not an image")
    escape = src / "esc\x1b[2K\x1b[1Ared.png"  # "erase the line, go up one": would hide the line above
    escape.write_text("not an image")
    good = save(src / "good.png", sample_rgb[:10, :12])
    # EXIF whose tag points past its data: Pillow warns (a UserWarning) while reading it.
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHII", 0x010F, 2, 100, 4096) + bytes(4)
    noisy = save(src / "noisy.jpg", sample_rgb[:10, :12], exif=b"Exif\x00\x00" + tiff)
    out = tmp_path / "out"
    always_warn = {**os.environ, "PYTHONWARNINGS": "always"}
    result = cli(dy_artifact, forged, escape, noisy, good, "-o", out, env=always_warn)
    assert result.returncode == 1
    reason = "not an image file Pillow can read (or corrupt header)"
    assert result.stderr.splitlines() == [
        f"error: {src}/bad\\nerror: good.png: forged line.png: {reason}",
        f"error: {src}/esc\\x1b[2K\\x1b[1Ared.png: {reason}",
    ]
    assert result.stdout == ""
    assert listing(out) == ["good_x2.png", "noisy_x2.png"]
    assert size_of(out / "good_x2.png") == (24, 20)

    # Command-level errors: one escaped line, exit 2, nothing written.
    for args, message in [
        (["--threads", "100000"], f"error: --threads must be 0 (library default) to {MAX_THREADS} "),
        (["--variant", "evil\n\x1b[2J.onnx"], "error: "),
    ]:
        code, err = run(dy_artifact, good, "-o", tmp_path / "nothing", *args)
        assert code == 2
        assert len(err.splitlines()) == 1 and err.startswith(message) and "\x1b" not in err, err
        assert not (tmp_path / "nothing").exists()
    assert "evil\\n\\x1b[2J.onnx" in err
