"""The artifact folder's manifest: the contract between export/ (writer) and runtime/ (reader).

An artifact folder ``artifacts/<model-name>/`` holds the engines of one checkpoint, reference
inputs/outputs computed by PyTorch, and ``manifest.json`` describing all of it::

    manifest.json
    model.onnx, model.*.onnx, model.ort, model.*.plan, model.openvino*.xml/.bin
                                engine variants: names, kinds, sources and tolerances in runtime/catalogue.py
    tiling/stats_<i>.onnx       per dynamic layer: tile -> features whose mean drives attention i
    tiling/main.onnx            tile + pooled statistics -> upscaled tile
    reference/input_<j>.npy     float32 NCHW in [0, 1]
    reference/output_<j>.npy    PyTorch output for input j

Everything here is plain JSON with dataclasses around it; no torch.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .backends import companion_files
from .catalogue import REDUCED_ONNX_PRECISIONS
from .errors import UserError
from .files import atomic_write_bytes, json_bytes, read_json_document, sha256_file
from .manifest_rules import (
    FORMAT,
    MAX_ARTIFACT_BYTES,
    MAX_CHANNELS,
    MAX_MANIFEST_BYTES,
    MAX_SCALE,
    artifact_file,
    build_typed,
    check_listing,
    check_sha256,
    check_shape,
    check_tiling,
    check_variant,
    in_range,
    invalid,
)

MANIFEST_NAME = "manifest.json"


@dataclass
class TensorSpec:
    """One graph input or output."""

    name: str
    layout: str = "NCHW"
    channels: int = 3
    dtype: str = "float32"
    value_range: tuple[float, float] = (0.0, 1.0)
    colour: str = "RGB"


@dataclass
class Parity:
    """A variant's agreement with the PyTorch reference outputs, as measured at export time.

    In memory the measures are floats, infinite where they are (identical outputs: PSNR inf; NaN in
    the output: |diff| inf, PSNR -inf). JSON has no infinity: :func:`runtime.files.json_bytes` writes
    them as null, and a null read back here is the infinity it stood for (the sign of the PSNR from
    ``finite``).
    """

    max_abs_diff: float | None
    mean_abs_diff: float | None
    psnr_db: float | None
    finite: bool
    # runtime.catalogue.tolerance of the variant's precision, as applied at export time.
    tolerance: dict[str, float]
    passed: bool

    def __post_init__(self) -> None:
        self.max_abs_diff = math.inf if self.max_abs_diff is None else self.max_abs_diff
        self.mean_abs_diff = math.inf if self.mean_abs_diff is None else self.mean_abs_diff
        if self.psnr_db is None:
            self.psnr_db = math.inf if self.finite else -math.inf

    def __bool__(self) -> bool:
        return self.passed


@dataclass
class Variant:
    """One engine file in the artifact folder."""

    file: str
    kind: str  # "onnx" | "ort" | "tensorrt" | "openvino"
    strategy: str  # lowering of the dynamic conv: "branches", "aggregate", ...
    precision: str  # one of runtime.catalogue.PRECISIONS
    dynamic_batch: bool
    dynamic_spatial: bool
    # For fixed-shape variants: [N, C, H, W] of the input; None when fully dynamic.
    fixed_input_shape: list[int] | None = None
    opset: int | None = None
    parity: Parity | None = None
    # Free-form facts: TensorRT version and GPU name for plans, quantisation recipe, ...
    notes: dict[str, Any] = field(default_factory=dict)
    # The batch size the graph was exported for when ``dynamic_batch`` is False (run larger
    # batches in chunks of this size); None for dynamic-batch variants.
    batch: int | None = None
    # The artifact file this one was converted from (fp16/int8 ONNX, .ort, plans, OpenVINO IR);
    # None for fp32 ONNX exported from PyTorch. Manifests from before the field: recorded_source below.
    source: str | None = None
    # A fixed-shape variant's own tiling graphs (LiteRT: fixed-size tiles at its shape, whole-image
    # attention), used instead of the artifact's ``tiling`` for images that are not exactly its shape.
    tiling: Tiling | None = None

    def engine_files(self) -> list[str]:
        """The files running this variant reads: the engine and its companions (an OpenVINO IR's weights)."""
        return companion_files(self.file)


@dataclass
class Tiling:
    """The tiling-ready split of the network (see runtime/tiling.py for how it is used).

    For dynamic layer i (in network order), ``stats[i]`` maps an LR tile (and the pooled
    statistics of layers < i, as inputs named ``pooled_<k>``) to the feature map whose global
    mean over the whole image is layer i's attention input. ``feature_scale`` is that map's size
    relative to the LR input (0.5 for DyConvSR, s for the DCNN). ``main`` maps an LR tile plus
    ``pooled_<i>`` of shape (N, C_i) for every i to the upscaled tile. Tiles must overlap by at
    least ``halo`` LR pixels and start at multiples of ``align``.
    """

    stats: list[str]
    main: str
    pooled_inputs: list[str]
    pooled_channels: list[int]
    feature_scale: float
    halo: int
    align: int
    # Export's own proof: a reference image split into overlapping tiles by runtime/tiling.py (the
    # tiler devices run; export/tiling.py:certify_tiling) against the PyTorch reference output.
    parity: Parity | None = None
    # Fixed-shape graphs (LiteRT): the name of the (N, 1, H*feature_scale, W*feature_scale) input that
    # marks the part of a tile inside the image (runtime/fixed_tiling.py); None for dynamic-shape graphs.
    valid_input: str | None = None
    # What a fixed-size tile holds where it overhangs the (align-padded) image: "edge" (replicated: what a
    # replicate-padded blur reads there) or "reflect" (mirrored about the edge pixel: the authors' blur).
    border: str = "edge"


@dataclass
class Reference:
    input: str
    output: str
    input_shape: list[int]
    output_shape: list[int]
    source: str


@dataclass
class Manifest:
    model_name: str  # the registry name, e.g. "dyconvsr"
    model_kwargs: dict[str, Any]
    scale: int
    checkpoint: str
    checkpoint_sha256: str | None
    input: TensorSpec
    output: TensorSpec
    default_variant: str
    variants: list[Variant]
    references: list[Reference]
    tiling: Tiling | None
    files: dict[str, str]  # relative path -> sha256, every file but the manifest itself
    versions: dict[str, str]
    created: str
    format: str = FORMAT
    # Free-form facts about the whole artifact, e.g. {"untrained": true} for a fresh model.
    notes: dict[str, Any] = field(default_factory=dict)

    # ---- lookup -------------------------------------------------------------------------
    def variant(self, file: str) -> Variant:
        for variant in self.variants:
            if variant.file == file:
                return variant
        raise UserError(
            f"artifact has no variant {file!r}; variants: {', '.join(v.file for v in self.variants)}"
        )

    @property
    def default(self) -> Variant:
        return self.variant(self.default_variant)

    # ---- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, folder: str | os.PathLike[str]) -> Path:
        path = Path(folder) / MANIFEST_NAME
        atomic_write_bytes(path, json_bytes(self.to_dict()))
        return path

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Build and validate a manifest: every field's type and range, every path confined to the
        folder (runtime.manifest_rules.check_listing); raises :class:`UserError` naming the first bad field."""
        manifest = build_typed(cls, data, "")
        for variant, raw in zip(manifest.variants, data["variants"], strict=True):
            if "source" not in raw:  # written before the field existed
                variant.source = recorded_source(variant)
        manifest.validate()
        return manifest

    def paths(self) -> list[tuple[str, str]]:
        """(field, relative path) of every file the manifest names outside ``files``."""
        named = [(f"variants[{i}].file", v.file) for i, v in enumerate(self.variants)]
        for i, ref in enumerate(self.references):
            named += [(f"references[{i}].input", ref.input), (f"references[{i}].output", ref.output)]
        for where, tiling in self.tilings():
            named += [(f"{where}.stats[{i}]", name) for i, name in enumerate(tiling.stats)]
            named.append((f"{where}.main", tiling.main))
        return named

    def tilings(self) -> list[tuple[str, Tiling]]:
        """(field, tiling graphs) of the artifact's ``tiling`` and of every variant's own, where present."""
        named = [("tiling", self.tiling)] + [(f"variants[{i}].tiling", v.tiling) for i, v in enumerate(self.variants)]
        return [(where, tiling) for where, tiling in named if tiling is not None]

    def validate(self) -> None:
        """Ranges and consistency; :meth:`from_dict` has checked the types (a bool is never an int)."""
        if self.format != FORMAT:
            raise invalid("format", repr(FORMAT), self.format)
        in_range("scale", self.scale, 1, MAX_SCALE)
        if self.checkpoint_sha256 is not None:
            check_sha256("checkpoint_sha256", self.checkpoint_sha256)
        for where, spec in (("input", self.input), ("output", self.output)):
            in_range(f"{where}.channels", spec.channels, 1, MAX_CHANNELS)
            low, high = spec.value_range
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise invalid(f"{where}.value_range", "[low, high], finite, low < high", list(spec.value_range))
        if not self.variants:
            raise invalid("variants", "a non-empty list of engine files", [])
        files = [v.file for v in self.variants]
        for i, variant in enumerate(self.variants):
            check_variant(f"variants[{i}]", variant, files)
            if files.index(variant.file) != i:
                raise invalid(f"variants[{i}].file", "a file no other variant names", variant.file)
        if self.default_variant not in files:
            raise invalid("default_variant", f"one of the variants' files ({', '.join(files)})",
                           self.default_variant)
        for i, ref in enumerate(self.references):
            check_shape(f"references[{i}].input_shape", ref.input_shape, self.input.channels)
            n, _, height, width = ref.input_shape
            expected = [n, self.output.channels, height * self.scale, width * self.scale]
            if ref.output_shape != expected:
                raise invalid(f"references[{i}].output_shape",
                               f"{expected} (scale {self.scale} x input_shape {ref.input_shape})", ref.output_shape)
        for _, tiling in self.tilings():
            check_tiling(tiling)
        check_listing(list(self.paths()), self.files)


def read_manifest(folder: str | os.PathLike[str]) -> Manifest:
    """Read and validate ``<folder>/manifest.json``; raises :class:`UserError` with the reason if unusable."""
    path = Path(folder) / MANIFEST_NAME
    if not Path(folder).is_dir():
        raise UserError(f"artifact folder {folder} not found (make one with `python -m export`)")
    if not os.path.lexists(path):
        raise UserError(f"{folder} has no {MANIFEST_NAME}: not an artifact folder written by export")
    try:
        artifact_file(folder, MANIFEST_NAME, MAX_MANIFEST_BYTES)
        data = read_json_document(path, FORMAT, "manifest")
    except UserError as exc:
        raise UserError(f"{folder}/{exc}" if str(exc).startswith(MANIFEST_NAME) else str(exc)) from None
    try:
        return Manifest.from_dict(data)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def file_problem(folder: str | os.PathLike[str], rel: str, expected: str) -> str | None:
    """Why ``folder/rel`` is not the file whose sha256 the manifest records, or None if it is."""
    try:
        path = artifact_file(folder, rel)
    except UserError as exc:
        return str(exc)
    if sha256_file(path) != expected:
        return f"{rel}: sha256 differs from the manifest (file changed or corrupt)"
    return None


def hash_files(folder: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 of every file under ``folder`` except the manifest, keyed by POSIX relative path."""
    root = Path(folder)
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME and not p.name.endswith(".tmp")
    }


def verify_files(folder: str | os.PathLike[str], manifest: Manifest) -> list[str]:
    """Problems found comparing the folder's files with the manifest's sha256 list (empty = ok).

    Nothing outside the folder is read, nothing but regular files, and nothing above
    :data:`MAX_FILE_BYTES` is hashed, nor anything when all add up to more than
    :data:`MAX_ARTIFACT_BYTES`."""
    problems, sizes = [], {}
    for rel in manifest.files:
        try:
            sizes[rel] = artifact_file(folder, rel).stat().st_size
        except UserError as exc:
            problems.append(str(exc))
    total = sum(sizes.values())
    if total > MAX_ARTIFACT_BYTES:  # sized before a byte is hashed: 50 sparse 4 GiB files cost nothing
        return [*problems, f"the files listed add up to {total} bytes, above the limit of {MAX_ARTIFACT_BYTES} "
                           "bytes for one artifact; none was hashed"]
    found = (file_problem(folder, rel, manifest.files[rel]) for rel in sizes)
    return problems + [problem for problem in found if problem]


def verify_used(folder: str | os.PathLike[str], manifest: Manifest, used: list[str]) -> None:
    """Raise :class:`UserError` unless each of ``used`` is listed in ``files`` with its sha256 matching."""
    for rel in used:
        if rel not in manifest.files:
            raise UserError(f"{rel}: not listed in the manifest's files, so its sha256 cannot be verified")
        problem = file_problem(folder, rel, manifest.files[rel])
        if problem:
            raise UserError(problem)


def recorded_source(variant: Variant) -> str | None:
    """A variant's source for manifests written before ``source`` was a field: the ``notes["source"]``
    that ORT-format and OpenVINO variants carried, or for fp16/int8 ONNX the fp32 file their name came
    from; None where nothing says (fp32 ONNX exported from PyTorch; old TensorRT plans)."""
    noted = variant.notes.get("source")
    if isinstance(noted, str):
        return noted
    suffix = f".{variant.precision}.onnx"
    if variant.kind == "onnx" and variant.precision in REDUCED_ONNX_PRECISIONS and variant.file.endswith(suffix):
        return variant.file.removesuffix(suffix) + ".onnx"
    return None
