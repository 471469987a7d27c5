"""``python -m runtime.check ARTIFACT_DIR``: prove every engine in an artifact on this device.

Verifies each file's sha256 against the manifest, runs every engine variant present (plus the
tiled path) on the stored reference inputs, compares with the stored PyTorch reference outputs
and prints a table. :func:`check_artifact` returns a :class:`CheckReport` whose truth value is
the verdict; the CLI exits 1 when it is false.
"""
from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import click
import numpy as np

from .catalogue import tolerance
from .cli_options import ArtifactPath, NamedPath, Verbosity, runner_options, verbosity_options
from .cpu import describe_isa
from .errors import BackendUnavailable, UserError, cli_errors, printable, writing
from .files import atomic_write_bytes, json_bytes
from .manifest import Manifest, Reference, Variant, artifact_file, read_manifest, verify_files
from .parity import compare, merge, run_in_chunks, tolerance_for
from .runners import RunnerConfig, backend_for, make_runner
from .runners.openvino import hinted_precision, with_openvino_hint
from .runners.plan_origin import PlanOrigin
from .upscaler import Upscaler

PASS, FAIL, SKIP = "pass", "FAIL", "skip"
DEFAULT_CHECK_TILE = 16  # small enough to split every stored reference into several tiles


@dataclass
class CheckRow:
    """One engine (or the tiled path) against the references."""

    name: str
    engine: str
    status: str
    parity: dict | None = None  # runtime.manifest.Parity as a dict (JSON-ready)
    note: str = ""

    def __bool__(self) -> bool:
        return self.status != FAIL


@dataclass
class CheckReport:
    artifact: str
    model: str
    scale: int
    file_problems: list[str] = field(default_factory=list)
    rows: list[CheckRow] = field(default_factory=list)
    cpu: str = field(default_factory=describe_isa)  # the proof holds on this CPU (and ISA cap) only

    @property
    def passed(self) -> bool:
        ran = [row for row in self.rows if row.status != SKIP]
        return not self.file_problems and bool(ran) and all(ran)

    def __bool__(self) -> bool:
        return self.passed

    def table(self) -> str:
        header = ("variant", "runs on", "max|diff|", "mean|diff|", "PSNR dB", "finite", "tolerance", "verdict")
        lines = [header]
        for row in self.rows:
            p = row.parity
            if p is None:
                lines.append((row.name, row.engine, "-", "-", "-", "-", "-",
                              f"{row.status}: {row.note}" if row.note else row.status))
                continue
            tol = ", ".join(f"{k.replace('_db', '').replace('_abs_diff', '|d|')} {v:g}"
                            for k, v in p["tolerance"].items())
            verdict = f"{row.status}: {row.note}" if row.note else row.status
            lines.append((row.name, row.engine, _num(p["max_abs_diff"]), _num(p["mean_abs_diff"]),
                          _db(p["psnr_db"]), "yes" if p["finite"] else "NO", tol, verdict))
        lines = [tuple(printable(cell) for cell in line) for line in lines]  # names come from files on disk
        widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
        # Every column but the last is padded; zip stops at the shorter ``widths`` on purpose.
        text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + "  " + line[-1]
                for line in lines]
        files = (
            f"files: {len(self.file_problems)} problem(s): " + "; ".join(self.file_problems)
            if self.file_problems else "files: every sha256 matches the manifest"
        )
        verdict = "PASS" if self.passed else "FAIL"
        return "\n".join([printable(f"{self.model} x{self.scale}  {self.artifact}"), printable(files),
                          printable(f"cpu: {self.cpu}"), *text,
                          f"verdict: {verdict}"])


def _num(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2e}"


def _db(value: float) -> str:
    return "inf" if math.isinf(value) and value > 0 else f"{value:.1f}"


def load_reference(folder: Path, rel: str, shape: list[int]) -> np.ndarray:
    """A float32 reference ``.npy``, its header checked against the manifest's ``shape`` and the
    file's size before any data is read (a header may claim terabytes); else UserError naming ``rel``."""
    path = artifact_file(folder, rel)
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in readers:
                raise ValueError(f"npy format version {version[0]}.{version[1]}; expected 1.0 or 2.0")
            stored, fortran, dtype = readers[version](handle)
        except ValueError as exc:
            raise UserError(f"{rel}: not a .npy reference numpy can read ({exc})") from None
        if tuple(stored) != tuple(shape) or dtype != np.dtype(np.float32):
            raise UserError(f"{rel}: holds {dtype} {tuple(stored)}; the manifest records float32 {tuple(shape)}")
        size = handle.tell() + math.prod(shape) * dtype.itemsize
        if path.stat().st_size != size:
            raise UserError(f"{rel}: {path.stat().st_size} bytes; its header needs exactly {size} "
                            "(truncated or padded)")
        data = np.fromfile(handle, dtype=dtype, count=math.prod(shape))
    return data.reshape(shape, order="F" if fortran else "C")


Pairs = list[tuple[np.ndarray, np.ndarray]]


def _load_references(folder: Path, references: list[Reference]) -> tuple[Pairs, list[CheckRow]]:
    """The (input, output) pairs that load, and one FAIL row per reference file that does not."""
    if not references:
        raise UserError(f"{folder}: the manifest lists no reference inputs to check against")
    pairs, failures = [], []
    for ref in references:
        loaded = []
        for rel, shape in ((ref.input, ref.input_shape), (ref.output, ref.output_shape)):
            try:
                loaded.append(load_reference(folder, rel, shape))
            except UserError as exc:
                failures.append(CheckRow(rel, "-", FAIL, note=str(exc).removeprefix(f"{rel}: ")))
        if len(loaded) == 2:
            pairs.append((loaded[0], loaded[1]))
    return pairs, failures


def _variant_config(variant: Variant, config: RunnerConfig) -> RunnerConfig:
    """``config`` for this variant: its own backend where the asked one cannot run it (--backend openvino
    on a .plan), and on OpenVINO the catalogue's precision hint unless --precision names one (fp32 and
    int8 in f32: left to itself, OpenVINO computes fp32 graphs in bf16 on CPUs that have it)."""
    try:
        backend = backend_for(variant.file, config)
    except UserError:
        config = replace(config, backend="auto", provider="auto", strict=None)
        backend = backend_for(variant.file, config)
    if backend == "openvino" and variant.precision == "bf16" and config.strict is None:
        config = replace(config, strict=True)  # proven in bf16 or not at all (a CPU without it: skip)
    return with_openvino_hint(config, variant.precision, backend)


def is_required(manifest: Manifest, variant: Variant) -> bool:
    """The one variant every device must run: the default fp32 lowering (model.onnx). Every other one (reduced
    precision, optional backends, fixed-shape extras) is optional: skipped, with the reason, where it cannot run."""
    return variant.file == manifest.default_variant


def check_variant(folder: Path, manifest: Manifest, variant: Variant, config: RunnerConfig,
                  pairs: list[tuple[np.ndarray, np.ndarray]]) -> CheckRow:
    config = _variant_config(variant, config)
    try:
        for rel in variant.engine_files():
            artifact_file(folder, rel)
        runner = make_runner(folder / variant.file, config, PlanOrigin.from_notes(variant.notes))
        with runner:
            judged = tolerance_for(variant, runner.computed_in)
            results, skipped = [], []
            fixed = runner.inputs[0].shape[-2:]
            chunk = variant.batch or runner.inputs[0].shape[0]
            dtype = runner.inputs[0].dtype

            def run(batch: np.ndarray) -> np.ndarray:
                return runner.infer(batch.astype(dtype, copy=False))

            for x, y in pairs:
                if None not in fixed and tuple(x.shape[-2:]) != tuple(fixed):
                    skipped.append(f"{x.shape[-1]}x{x.shape[-2]}")
                    continue
                results.append(compare(run_in_chunks(run, x, chunk), y, judged, _peak(manifest)))
            engine = runner.description
    except BackendUnavailable as exc:
        # What this machine or install lacks (a library, a GPU, bf16 instructions) is no verdict on an optional
        # engine: a skip, whatever its backend. The required variant, or an engine on a provider the user named,
        # is what was asked for, and its absence a failure.
        status = FAIL if is_required(manifest, variant) or config.provider != "auto" else SKIP
        return CheckRow(variant.file, backend_for(variant.file, config), status, note=_short(exc))
    except UserError as exc:
        return CheckRow(variant.file, backend_for(variant.file, config), FAIL, note=_short(exc))
    except Exception as exc:  # an engine failing at run time is a verdict, not a crash
        return CheckRow(variant.file, backend_for(variant.file, config), FAIL, note=_short(exc))
    if not results:
        why = ("; a packaged engine keeps the small references only: its tiling graphs are proven here, the whole "
               "file in the exported artifact" if "packaged" in manifest.notes else "")
        return CheckRow(variant.file, engine, SKIP, note=f"fixed input {fixed}: no reference of that size{why}")
    note = f"references {', '.join(skipped)} skipped (fixed shape)" if skipped else ""
    merged = merge(results)
    return CheckRow(variant.file, engine, PASS if merged else FAIL, asdict(merged), note)


def check_tiled(folder: Path, manifest: Manifest, config: RunnerConfig, tile: int,
                pairs: list[tuple[np.ndarray, np.ndarray]]) -> CheckRow:
    """The tiling graphs with tiles smaller than each reference, against the untiled reference."""
    assert manifest.tiling is not None
    name = f"tiled ({manifest.tiling.main}, tile {tile})"
    config = with_openvino_hint(config, "fp32", config.backend)  # the tiling graphs are fp32
    judged = tolerance(hinted_precision(config) or "fp32")
    try:
        with Upscaler(folder, config=config, tile=tile) as upscaler:
            results = []
            for x, y in pairs:
                for sample, expected in zip(x, y, strict=True):
                    out = upscaler.upscale_array(np.ascontiguousarray(sample.transpose(1, 2, 0), dtype=np.float32))
                    results.append(compare(out.transpose(2, 0, 1), expected, judged, _peak(manifest)))
            engine = upscaler.tiling_description.split(" on ", 1)[1]
    except Exception as exc:  # an engine failing is a verdict, not a crash
        backend = "onnxruntime" if config.backend in ("auto", "tensorrt") else config.backend
        return CheckRow(name, backend, FAIL, note=_short(exc))
    merged = merge(results)
    return CheckRow(name, engine, PASS if merged else FAIL, asdict(merged))


def check_fixed_tiled(folder: Path, manifest: Manifest, variant: Variant, config: RunnerConfig,
                      pairs: list[tuple[np.ndarray, np.ndarray]]) -> CheckRow:
    """A fixed-shape variant's own tiling graphs (LiteRT) as the upscaler runs them on every reference of another
    size than the file's (fixed tiles, whole-image statistics), against the untiled reference, judged at the
    variant's own tolerance: a tiling graph swapped or of another precision fails here."""
    assert variant.tiling is not None
    name = f"tiled ({variant.tiling.main})"
    fixed = tuple(variant.fixed_input_shape[-2:]) if variant.fixed_input_shape else None
    judged = tolerance_for(variant)
    config = _variant_config(variant, config)
    try:
        with Upscaler(folder, variant=variant.file, config=config) as upscaler:
            results = []
            for x, y in pairs:
                if tuple(x.shape[-2:]) == fixed:
                    continue
                for sample, expected in zip(x, y, strict=True):
                    out = upscaler.upscale_array(np.ascontiguousarray(sample.transpose(1, 2, 0), dtype=np.float32))
                    results.append(compare(out.transpose(2, 0, 1), expected, judged, _peak(manifest)))
            engine = upscaler.tiling_description.split(" on ", 1)[-1]
    except BackendUnavailable as exc:
        return CheckRow(name, backend_for(variant.file, config), SKIP, note=_short(exc))
    except Exception as exc:  # an engine failing is a verdict, not a crash
        return CheckRow(name, backend_for(variant.file, config), FAIL, note=_short(exc))
    if not results:
        return CheckRow(name, engine, SKIP, note="every reference has the file's own shape")
    merged = merge(results)
    return CheckRow(name, engine, PASS if merged else FAIL, asdict(merged))


def _short(exc: Exception, limit: int = 300) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _peak(manifest: Manifest) -> float:
    low, high = manifest.output.value_range
    return float(high - low) or 1.0


def check_artifact(folder: str | Path, config: RunnerConfig = RunnerConfig(), tile: int = DEFAULT_CHECK_TILE,
                   variants: list[str] | None = None) -> CheckReport:
    """Verify files and run every variant (or those named) plus the tiled path; see :class:`CheckReport`."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    chosen = [manifest.variant(name) for name in variants] if variants else manifest.variants
    report = CheckReport(str(folder), manifest.model_name, manifest.scale, verify_files(folder, manifest))
    pairs, report.rows = _load_references(folder, manifest.references)
    if not pairs:  # every reference failed: its rows are the verdict
        return report
    for variant in chosen:
        report.rows.append(check_variant(folder, manifest, variant, config, pairs))
        if variant.tiling is not None:
            report.rows.append(check_fixed_tiled(folder, manifest, variant, config, pairs))
    if manifest.tiling is not None and not variants:
        report.rows.append(check_tiled(folder, manifest, config, tile, pairs))
    return report


def write_report_json(path: Path, report: CheckReport) -> None:
    """``report`` as JSON at ``path``: atomically for a file, written through for a device or pipe
    (never renamed onto ``/dev/stdout``); a failing write (a full disk) is a UserError."""
    with writing(path, "JSON report"):
        atomic_write_bytes(path, json_bytes(asdict(report), default=str))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("artifact_dir", metavar="ARTIFACT", type=ArtifactPath(file_okay=False))
@click.option("--variant", "variants", multiple=True, help="Check only this variant file (repeatable).")
@click.option("--tile", type=click.IntRange(min=1), default=DEFAULT_CHECK_TILE, show_default=True,
              help="Tile size for the tiled-path check (smaller than the references, so they split).")
@click.option("--json", "json_path", type=NamedPath(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON to this file.")
@click.option("--tune", is_flag=True,
              help="Then time every variant that passed here (through the upscaler, 640x360) and store the fastest "
                   "in the user's cache: runtime.infer / dyconvsr-upscale without --variant run it on this machine "
                   "(until the CPU, its ISA cap, a library or the artifact changes).")
@click.option("--tune-rounds", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Timed runs per variant with --tune (after one warm-up).")
@cli_errors
@runner_options
@verbosity_options
def main(artifact_dir: Path, variants: tuple[str, ...], tile: int, json_path: Path | None, tune: bool,
         tune_rounds: int, runner: RunnerConfig, verbosity: Verbosity) -> None:
    """Check ARTIFACT_DIR on this device: sha256 of every file, then every engine variant (and the
    seamless-tiling graphs) on the stored reference inputs against the stored PyTorch outputs.

    Each engine is judged against the tolerance the manifest records for its precision (a max |diff| on
    [0, 1] images for fp32, a PSNR floor for fp16, bf16 and int8: runtime/catalogue.py); NaN/Inf always fail.
    Exits 0 when every engine that could run here passed, 1 otherwise. The default fp32 variant must run;
    every other one is skipped, with the reason, where this machine or install cannot run it (no GPU, no
    OpenVINO or LiteRT, no bf16).
    With -q the table is printed only when the verdict is FAIL.
    """
    report = check_artifact(artifact_dir, runner, tile, list(variants) or None)
    if not verbosity.quiet or not report:
        print(report.table(), flush=True)
    if json_path is not None:
        write_report_json(json_path, report)
    if not report:
        sys.exit(1)
    if tune:
        from .tuning import tune as measure

        manifest = read_manifest(artifact_dir)
        candidates = [row.name for row in report.rows if row.status == PASS and runs_any_size(manifest, row.name)]
        verbosity.say(f"tuning: timing {len(candidates)} proven variant(s) at 640x360 ...")
        print(measure(artifact_dir, candidates, runner, tune_rounds).summary(), flush=True)


def runs_any_size(manifest: Manifest, name: str) -> bool:
    """Whether the variant ``name`` upscales an image of any size (dynamic H/W, or fixed tiles with its graphs)."""
    variant = next((v for v in manifest.variants if v.file == name), None)
    return variant is not None and (variant.dynamic_spatial or variant.tiling is not None)


if __name__ == "__main__":
    main()
