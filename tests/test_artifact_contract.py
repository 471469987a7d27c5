"""The artifact contract under attack: no silent loss, no escape, no hang, no traceback.

One test per class of failure, each over every example of its class: what the user sees (one
line, the exit code), that the good files of the same batch are still written, and that nothing
partial or foreign is left behind. Artifacts are tiny real exports; images are real photo crops.
"""
from __future__ import annotations

import json
import os
import re
import signal
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from runtime.bench.cli import main as bench_main
from runtime.check import main as check_main
from runtime.errors import UserError
from runtime.files import sha256_file
from runtime.infer import main as infer_main
from runtime.runners.base import MAX_THREADS
from runtime.upscaler import Upscaler
from test_runtime_check import copy_artifact
from test_runtime_infer import leftovers

Manifest = dict  # the parsed manifest.json, edited in place by a case


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from export.artifact import ExportOptions, export_artifact
    from train.models import create_model

    folder = tmp_path_factory.mktemp("hardening") / "dyconvsr_tiny_x2"
    torch.manual_seed(0)
    export_artifact(create_model("dyconvsr_tiny"), folder, ExportOptions(precisions=(), ort_format=False, tensorrt=(),
                                                                         strategy="branches", openvino=(),
                                                                         mobile_shape=None))
    return folder


@pytest.fixture()
def inputs(tmp_path: Path, sample_rgb: np.ndarray) -> dict[str, Path]:
    """Four real crops: small ones run whole, large ones tiled at --tile 16; the dark ones hold a black pixel."""
    folder = tmp_path / "in"
    folder.mkdir()
    bright = np.clip(sample_rgb, 40, 255)
    dark = bright.copy()
    dark[5, 7] = 0
    paths = {}
    for name, pixels, (height, width) in [("small", bright, (10, 12)), ("large", bright, (30, 40)),
                                          ("dark_small", dark, (10, 12)), ("dark_large", dark, (30, 40))]:
        paths[name] = folder / f"{name}.png"
        Image.fromarray(pixels[:height, :width]).save(paths[name])
    return paths


def edit_manifest(folder: Path, change: Callable[[Manifest], object]) -> None:
    data = json.loads((folder / "manifest.json").read_text())
    change(data)
    (folder / "manifest.json").write_text(json.dumps(data))


def rehash(folder: Path, *names: str) -> None:
    edit_manifest(folder, lambda m: m["files"].update({name: sha256_file(folder / name) for name in names}))


def infer(artifact: Path, *args: object) -> tuple[int, list[str]]:
    result = CliRunner().invoke(infer_main, [str(artifact), *map(str, args), "--quiet"], catch_exceptions=False)
    return result.exit_code, [line for line in result.stderr.splitlines() if line.strip()]


def check(artifact: Path, *args: object) -> tuple[int, str, list[str]]:
    result = CliRunner().invoke(check_main, [str(artifact), *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture()
def deadline() -> Iterator[None]:
    """Turn a hang (reading a FIFO, hashing a terabyte) into a failure instead of a stuck run."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("hung: over 60 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# ---- 1. wrong pictures ----------------------------------------------------------------------
def poison(folder: Path, name: str) -> None:
    """Rewrite graph ``name`` so its output turns NaN wherever its input holds a pixel below 0.01
    (a real engine that overflows on dark inputs), and record the new sha256."""
    import onnx
    from onnx import helper

    model = onnx.load(str(folder / name))
    graph = model.graph
    out, source = graph.output[0].name, graph.input[0].name
    for node in graph.node:
        node.output[:] = [f"{o}_clean" if o == out else o for o in node.output]
    graph.initializer.extend([helper.make_tensor("p_floor", onnx.TensorProto.FLOAT, [], [0.01]),
                              helper.make_tensor("p_zero", onnx.TensorProto.FLOAT, [], [0.0])])
    graph.node.extend([
        helper.make_node("ReduceMin", [source], ["p_min"], keepdims=0),
        helper.make_node("Sub", ["p_min", "p_floor"], ["p_margin"]),
        helper.make_node("Sqrt", ["p_margin"], ["p_root"]),
        helper.make_node("Mul", ["p_root", "p_zero"], ["p_nan"]),
        helper.make_node("Add", [f"{out}_clean", "p_nan"], [out]),
    ])
    onnx.save(model, str(folder / name))
    rehash(folder, name)


def _scale_everywhere(m: Manifest) -> None:
    m["scale"] = 3
    for ref in m["references"]:
        n, c, h, w = ref["input_shape"]
        ref["output_shape"] = [n, c, 3 * h, 3 * w]


def _tiling(key: str, value: object) -> Callable[[Manifest], None]:
    return lambda m: m["tiling"].update({key: value})


def _reference(index: int, key: str, value: object) -> Callable[[Manifest], None]:
    return lambda m: m["references"][index].update({key: value})


@dataclass
class Wrong:
    edit: Callable[[Manifest], object] | None
    code: int
    message: str  # regex
    failing: tuple[str, ...] = ()  # inputs that fail (code 1); code 2 touches none
    poisoned: tuple[str, ...] = ()  # graphs rewritten by poison()


WRONG_PICTURES = {
    # The manifest is refused when read: exit 2 before any input is touched.
    "scale 3 on a x2 engine": Wrong(lambda m: m.update(scale=3), 2,
                                    r"references\[0\]\.output_shape must be \[1, 3, 120, 144\] "
                                    r"\(scale 3 x input_shape"),
    "scale 1": Wrong(lambda m: m.update(scale=1), 2, r"references\[0\]\.output_shape must be \[1, 3, 40, 48\]"),
    "scale true": Wrong(lambda m: m.update(scale=True), 2, r"scale must be an integer; got True \(a bool\)"),
    "scale 1000": Wrong(lambda m: m.update(scale=1000), 2, r"scale must be an integer from 1 to 16; got 1000"),
    "halo not on the grid": Wrong(_tiling("halo", 13), 2,
                                  r"tiling\.halo must be a multiple of tiling\.align \(2\); got 13"),
    "halo negative": Wrong(_tiling("halo", -2), 2, r"tiling\.halo must be an integer from 0 to 256; got -2"),
    "align 0": Wrong(_tiling("align", 0), 2, r"tiling\.align must be an integer from 1 to 64; got 0"),
    "feature scale 0": Wrong(_tiling("feature_scale", 0), 2,
                             r"tiling\.feature_scale must be a number above 0 and at most 16; got 0"),
    "pooled channels bool": Wrong(_tiling("pooled_channels", [True]), 2,
                                  r"tiling\.pooled_channels\[0\] must be an integer; got True \(a bool\)"),
    "no variants": Wrong(lambda m: m.update(variants=[]), 2,
                         r"variants must be a non-empty list of engine files; got \[\]"),
    "default not listed": Wrong(lambda m: m.update(default_variant="model.fp16.onnx"), 2,
                                r"default_variant must be one of the variants' files \(model\.onnx, .*\); "
                                r"got 'model\.fp16\.onnx'"),
    "file not a string": Wrong(lambda m: m["variants"][0].update(file=7), 2,
                               r"variants\[0\]\.file must be a string; got 7"),
    "reference shape float": Wrong(_reference(0, "input_shape", [1, 3, 40.0, 48]), 2,
                                   r"references\[0\]\.input_shape\[2\] must be an integer; got 40\.0"),
    "sha256 not hex": Wrong(lambda m: m["files"].update({"model.onnx": "abc"}), 2,
                            r"files\['model\.onnx'\] must be a sha256: 64 lowercase hex digits; got 'abc'"),
    # A consistent manifest whose engine disagrees: the engine's output is checked, per file.
    "scale 3 everywhere": Wrong(_scale_everywhere, 1, r"returned \(1, 3, \d+, \d+\) for an input of .* of scale 3: "
                                "engine and manifest disagree", ("small", "large", "dark_small", "dark_large")),
    "halo too small": Wrong(_tiling("halo", 4), 1,
                            r"tiling graphs are not seamless with the manifest's halo 4 and align 2",
                            ("large", "dark_large")),
    "align off the grid": Wrong(_tiling("align", 1), 1, r"not seamless with the manifest's halo 14 and align 1",
                                ("large", "dark_large")),
    "feature scale wrong": Wrong(_tiling("feature_scale", 0.25), 1,
                                 r"tiling/stats_0\.onnx returned features \(1, 8, \d+, \d+\) "
                                 r".* feature_scale 0\.25 need",
                                 ("large", "dark_large")),
    "engine outputs NaN": Wrong(None, 1, r"(model|tiling/main)\.onnx returned \d+ NaN/Inf value\(s\) in \d+: refusing",
                                ("dark_small", "dark_large"), ("model.onnx", "tiling/main.onnx")),
}


@pytest.mark.parametrize("case", list(WRONG_PICTURES))
def test_a_wrong_picture_is_never_written(artifact, tmp_path, inputs, case: str) -> None:
    wrong = WRONG_PICTURES[case]
    folder = copy_artifact(artifact, tmp_path)
    if wrong.edit:
        edit_manifest(folder, wrong.edit)
    for name in wrong.poisoned:
        poison(folder, name)
    out = tmp_path / "out"
    code, errors = infer(folder, *inputs.values(), "-o", out, "--tile", 16)
    assert code == wrong.code, errors
    if code == 2:
        assert len(errors) == 1, errors
        assert errors[0].startswith(f"error: {folder}/manifest.json: manifest does not follow"), errors
        assert re.search(wrong.message, errors[0]), errors[0]
        assert not out.exists()
        return
    assert len(errors) == len(wrong.failing), errors
    for name, line in zip(wrong.failing, errors, strict=True):
        assert line.startswith(f"error: {inputs[name]}: "), line
        assert re.search(wrong.message, line), line
    written = sorted(p.name for p in out.iterdir()) if out.exists() else []
    good = [name for name in inputs if name not in wrong.failing]
    assert written == sorted(f"{name}_x2.png" for name in good)
    for name in good:
        with Image.open(inputs[name]) as lr, Image.open(out / f"{name}_x2.png") as sr:
            assert sr.size == (2 * lr.width, 2 * lr.height)
    assert leftovers(tmp_path) == []


# ---- 2. escapes from the artifact folder ------------------------------------------------------
def outside_copy(folder: Path, name: str) -> Path:
    """A byte-identical copy of ``name`` outside the folder: what an escaping path would run or hash."""
    target = folder.parent / f"outside_{Path(name).name}"
    target.write_bytes((folder / name).read_bytes())
    return target


def _point_outside(key: str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        target = outside_copy(folder, "model.onnx")
        rel = os.path.relpath(target, folder) if key != "tiling" else str(target)

        def change(m: Manifest) -> None:
            if key == "variant":
                m["variants"][0]["file"] = m["default_variant"] = rel
            elif key == "tiling":
                m["tiling"]["main"] = rel
            elif key == "files":
                m["files"][rel] = sha256_file(target)
            else:
                m["references"][0]["input"] = "/etc/passwd"
            m["files"].setdefault(rel, sha256_file(target))

        edit_manifest(folder, change)
    return setup


def _replace(name: str, how: str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        target = outside_copy(folder, name)
        (folder / name).unlink()
        if how == "symlink":
            (folder / name).symlink_to(target)
        elif how == "fifo":
            os.mkfifo(folder / name)
        else:  # a sparse terabyte: hashing it would take an hour
            with open(folder / name, "wb") as handle:
                handle.truncate(1 << 40)
    return setup


def failed_rows(table: str) -> list[str]:
    """Names of the FAIL rows of a check table (between the header line and the verdict)."""
    return [line.split("  ")[0] for line in table.splitlines()[3:-1] if "  FAIL" in line]


@dataclass
class Escape:
    setup: Callable[[Path], None]
    infer_code: int
    message: str  # regex
    check_code: int
    rows: tuple[str, ...] = ()  # check rows that fail (exit 1): the file's problem fails what uses it


OUTSIDE = "a relative POSIX path inside the artifact folder"
ESCAPES = {
    # In the manifest itself: refused when read, by every command.
    "default variant ../": Escape(_point_outside("variant"), 2,
                                  rf"variants\[0\]\.file must be {OUTSIDE} .*; got '\.\./outside_model\.onnx'", 2),
    "absolute tiling graph": Escape(_point_outside("tiling"), 2, rf"tiling\.main must be {OUTSIDE} .*; got '/", 2),
    "files key ../": Escape(_point_outside("files"), 2,
                            rf"files key must be {OUTSIDE} .*; got '\.\./outside_model\.onnx'", 2),
    "absolute reference": Escape(_point_outside("reference"), 2,
                                 rf"references\[0\]\.input must be {OUTSIDE} .*; got '/etc/passwd'", 2),
    # On disk: infer refuses its engine; check reports the file and fails what uses it, reading none of it.
    "engine symlinked out": Escape(_replace("model.onnx", "symlink"), 2,
                                   r"model\.onnx: resolves to .*outside_model\.onnx, outside the artifact folder", 1,
                                   ("model.onnx", "tiled")),
    "tiling graph symlinked out": Escape(_replace("tiling/main.onnx", "symlink"), 2,
                                         r"tiling/main\.onnx: resolves to .*, outside the artifact folder", 1,
                                         ("tiled",)),
    "reference symlinked out": Escape(_replace("reference/output_0.npy", "symlink"), 0,
                                      r"reference/output_0\.npy: resolves to .*, outside the artifact folder", 1,
                                      ("reference/output_0.npy",)),
    "engine is a FIFO": Escape(_replace("model.onnx", "fifo"), 2, r"model\.onnx: not a regular file", 1,
                               ("model.onnx", "tiled")),
    "engine of a terabyte": Escape(_replace("model.onnx", "sparse"), 2,
                                   r"model\.onnx: 1099511627776 bytes, above the limit of 4294967296 bytes", 1,
                                   ("model.onnx", "tiled")),
}


@pytest.mark.parametrize("case", list(ESCAPES))
def test_nothing_outside_the_artifact_folder_is_read(artifact, tmp_path, inputs, deadline, case: str) -> None:
    escape = ESCAPES[case]
    folder = copy_artifact(artifact, tmp_path)
    escape.setup(folder)
    out = tmp_path / "out"
    code, errors = infer(folder, inputs["small"], "-o", out)
    assert code == escape.infer_code, errors
    if code == 2:
        assert len(errors) == 1 and re.search(escape.message, errors[0]), errors
        assert not out.exists()
    else:  # the engine is sound; only check uses references
        assert errors == [] and sorted(p.name for p in out.iterdir()) == ["small_x2.png"]
    code, table, errors = check(folder)
    assert code == escape.check_code, (table, errors)
    if code == 2:  # no table for a manifest that is refused
        assert table == "" and len(errors) == 1 and re.search(escape.message, errors[0]), errors
    else:
        assert errors == [] and table.splitlines()[-1] == "verdict: FAIL"
        assert table.splitlines()[1].startswith("files: 1 problem(s): ")
        assert re.search(escape.message, table.splitlines()[1]), table
        failed = failed_rows(table)
        assert len(failed) == len(escape.rows), table
        assert all(row.startswith(name) for row, name in zip(failed, escape.rows, strict=True)), table
    assert leftovers(tmp_path) == []


def test_a_manifest_that_is_a_fifo_or_folder_is_refused_without_blocking(artifact, tmp_path, inputs, deadline) -> None:
    """The manifest is read by infer (its tuning key, then the manifest itself) and check: never waited on."""
    for kind in ("fifo", "folder"):
        folder = copy_artifact(artifact, tmp_path / kind)
        (folder / "manifest.json").unlink()
        os.mkfifo(folder / "manifest.json") if kind == "fifo" else (folder / "manifest.json").mkdir()
        code, errors = infer(folder, inputs["small"], "-o", tmp_path / kind / "out")
        assert code == 2 and errors == [f"error: {folder / 'manifest.json'}: not a regular file"], errors
        code, table, errors = check(folder)
        assert code == 2 and table == "" and errors == [f"error: {folder / 'manifest.json'}: not a regular file"]
        assert not (tmp_path / kind / "out").exists()


def test_check_bounds_the_total_of_the_listed_files_before_hashing_any(artifact, tmp_path, deadline) -> None:
    """50 sparse files of 3 GiB, each under the one-file limit, listed with made-up digests: check sizes them
    all first and hashes none (hashing 150 GiB would take minutes); the engines still run and pass."""
    folder = copy_artifact(artifact, tmp_path)
    listed = {}
    for i in range(50):
        with open(folder / f"pad_{i}.bin", "wb") as handle:
            handle.truncate(3 << 30)
        listed[f"pad_{i}.bin"] = f"{i:064x}"
    edit_manifest(folder, lambda m: m["files"].update(listed))
    code, table, errors = check(folder)
    assert code == 1 and errors == [], (table, errors)
    lines = table.splitlines()
    total = sum((folder / rel).stat().st_size for rel in json.loads((folder / "manifest.json").read_text())["files"])
    assert lines[1] == (f"files: 1 problem(s): the files listed add up to {total} bytes, above the limit of "
                        "8589934592 bytes for one artifact; none was hashed"), table
    assert failed_rows(table) == [] and lines[-1] == "verdict: FAIL", table


# ---- 3. one line, never a traceback -----------------------------------------------------------
def _manifest_text(text: Callable[[str], bytes]) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        path = folder / "manifest.json"
        path.write_bytes(text(path.read_text()))
    return setup


def _npy_header(shape: tuple[int, ...]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _break_reference(name: str, how: str) -> Callable[[Path], None]:
    def setup(folder: Path) -> None:
        path = folder / "reference" / name
        if how == "missing":
            path.unlink()
        elif how == "huge header":  # 4 TB claimed, 128 bytes present
            path.write_bytes(_npy_header((100000, 100000, 100)))
        elif how == "truncated":
            path.write_bytes(path.read_bytes()[:-64])
        else:  # pickled objects
            np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return setup


@dataclass
class Broken:
    setup: Callable[[Path], None] | None
    infer_code: int
    check_code: int
    message: str  # regex: the one stderr line, or the failing row's note
    rows: tuple[str, ...] = ()  # check rows that fail
    check_args: tuple[str, ...] = ()


NESTED = '{"format": "dyconvsr-toolchain/artifact-v1", "notes": ' + "[" * 100_000 + "]" * 100_000 + "}"
HUGE_SCALE = '"scale": ' + "7" * 5000
BROKEN = {
    "manifest not UTF-8": Broken(_manifest_text(lambda t: b"\xff" + t.encode()), 2, 2,
                                 r"manifest\.json is not UTF-8 text \(byte 0: invalid start byte\)$"),
    "manifest nested 100000 deep": Broken(_manifest_text(lambda t: NESTED.encode()), 2, 2,
                                          r"manifest\.json nests deeper than the JSON parser can follow"),
    "integer of 5000 digits": Broken(_manifest_text(lambda t: t.replace('"scale": 2', HUGE_SCALE).encode()),
                                     2, 2, r"manifest\.json is not valid JSON: Exceeds the limit \(4300 digits\)"),
    "reference header claims 4 TB": Broken(_break_reference("input_0.npy", "huge header"), 0, 1,
                                           r"holds float32 \(100000, 100000, 100\); "
                                           r"the manifest records float32 \(1, 3, 40, 48\)",
                                           ("reference/input_0.npy",)),
    "reference truncated": Broken(_break_reference("output_1.npy", "truncated"), 0, 1,
                                  r"^\d+ bytes; its header needs exactly \d+ \(truncated or padded\)",
                                  ("reference/output_1.npy",)),
    "reference pickled": Broken(_break_reference("output_0.npy", "pickle"), 0, 1,
                                r"holds object \(1,\); the manifest records float32 \(1, 3, 80, 96\)",
                                ("reference/output_0.npy",)),
    "reference missing": Broken(_break_reference("input_2.npy", "missing"), 0, 1, r"^missing$",
                                ("reference/input_2.npy",)),
    "check --json on a full disk": Broken(None, 0, 2,
                                          r"^error: cannot write the JSON report /dev/full: "
                                          r"No space left on device$",
                                          check_args=("--json", "/dev/full")),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_files_end_in_one_line_not_a_traceback(artifact, tmp_path, inputs, case: str) -> None:
    broken = BROKEN[case]
    folder = copy_artifact(artifact, tmp_path)
    if broken.setup:
        broken.setup(folder)
    out = tmp_path / "out"
    code, errors = infer(folder, inputs["small"], "-o", out)  # catch_exceptions=False: a traceback fails here
    assert code == broken.infer_code, errors
    if code == 2:
        assert len(errors) == 1 and errors[0].startswith(f"error: manifest {folder}/manifest.json ")
        assert re.search(broken.message, errors[0]), errors
        assert not out.exists()
    else:
        assert errors == [] and sorted(p.name for p in out.iterdir()) == ["small_x2.png"]
    code, table, errors = check(folder, *broken.check_args)
    assert code == broken.check_code, (table, errors)
    if broken.rows:  # a FAIL row naming the reference, the engines checked on the others
        assert errors == [] and table.splitlines()[-1] == "verdict: FAIL"
        assert failed_rows(table) == list(broken.rows), table
        row = next(line for line in table.splitlines() if line.startswith(broken.rows[0]))
        assert re.search(broken.message, row.split("FAIL: ", 1)[1]), row
        assert sum("  pass" in line for line in table.splitlines()) == 4  # three variants and the tiled path
    elif broken.check_args:  # the verdict was printed, then the report could not be written
        assert table.splitlines()[-1] == "verdict: PASS"
        assert len(errors) == 1 and re.search(broken.message, errors[0]), errors
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)  # written through, never renamed onto
    else:
        assert table == "" and len(errors) == 1 and re.search(broken.message, errors[0]), errors
    assert leftovers(tmp_path) == [] and not list(Path("/dev").glob(".full.*"))


# ---- 4. --verify ------------------------------------------------------------------------------
def test_verify_refuses_any_used_file_that_differs_from_the_manifest(artifact, tmp_path, sample_rgb) -> None:
    image = sample_rgb[:30, :40]
    with Upscaler(artifact, tile=16, verify=True) as checked, Upscaler(artifact, tile=16) as plain:
        assert np.array_equal(checked.upscale_array(image), plain.upscale_array(image))  # tiled: every graph used
    for name in ("model.onnx", "tiling/main.onnx", "tiling/stats_0.onnx"):
        folder = copy_artifact(artifact, tmp_path / name.replace("/", "_"))
        data = bytearray((folder / name).read_bytes())
        data[-100] ^= 0x01  # one bit inside the weights: runs fine, computes something else
        (folder / name).write_bytes(bytes(data))
        with pytest.raises(UserError, match=rf"^{name}: sha256 differs from the manifest \(file changed or corrupt\)$"):
            Upscaler(folder, verify=True)
        with Upscaler(folder, tile=16) as unverified:  # what verify is for: without it, this runs
            unverified.upscale_array(image[:8, :8])
    (tmp_path / "bare.onnx").write_bytes((artifact / "model.onnx").read_bytes())
    with pytest.raises(UserError, match="verify needs an artifact folder; a bare engine has no manifest"):
        Upscaler(tmp_path / "bare.onnx", verify=True)


# ---- 5. bounds on the runner path -------------------------------------------------------------
THREADS = f"error: --threads must be 0 (library default) to {MAX_THREADS} (4 x {os.cpu_count() or 1} CPUs); got 30000"
BOUNDS = {
    "bench -r 30000x30000": (bench_main, ["-r", "30000x30000", "-q"],
                             "error: resolution '30000x30000': each side must be 1 to 8192 pixels (LR input); "
                             "got 30000x30000"),
    "bench --threads": (bench_main, ["--threads", "30000", "-q", "--no-check"], THREADS),
    "check --threads": (check_main, ["--threads", "30000"], THREADS),
    "infer --threads": (infer_main, ["{image}", "-o", "{out}", "--threads", "30000"], THREADS),
}


@pytest.mark.parametrize("case", list(BOUNDS))
def test_runner_bounds_are_refused_in_one_line(artifact, tmp_path, inputs, monkeypatch, case: str) -> None:
    command, args, message = BOUNDS[case]
    monkeypatch.chdir(tmp_path)  # bench writes bench-<machine>.json here when it gets that far
    out = tmp_path / "out"
    args = [a.format(image=inputs["small"], out=out) for a in args]
    result = CliRunner().invoke(command, [str(artifact), *args], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message]
    assert result.stdout == "" and not out.exists() and not list(tmp_path.glob("bench-*.json"))
