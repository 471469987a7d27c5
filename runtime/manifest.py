"""The artifact folder's manifest: the contract between export/ (writer) and runtime/ (reader).

An artifact folder ``artifacts/<model-name>/`` holds the engines of one checkpoint, reference
inputs/outputs computed by PyTorch, and ``manifest.json`` describing all of it::

    manifest.json
    model.onnx                  default strategy, dynamic N/H/W (fp32)
    model.<variant>.onnx        other strategies / precisions / fixed shapes
    model.ort                   ONNX Runtime Mobile format
    model.<precision>.plan      TensorRT plans (only where built)
    model.openvino[.bf16|.int8].xml  OpenVINO IR (+ .bin weights): fp32, bf16, NNCF INT8 (where openvino is installed)
    tiling/stats_<i>.onnx       per dynamic layer: tile -> features whose mean drives attention i
    tiling/main.onnx            tile + pooled statistics -> upscaled tile
    reference/input_<j>.npy     float32 NCHW in [0, 1]
    reference/output_<j>.npy    PyTorch output for input j

Everything here is plain JSON with dataclasses around it; no torch.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .files import atomic_write_bytes, read_json_document, sha256_file

FORMAT = "dyconvsr-toolchain/artifact-v1"
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
    """A variant's agreement with the PyTorch reference outputs, as measured at export time."""

    max_abs_diff: float
    mean_abs_diff: float
    psnr_db: float
    finite: bool
    # fp32 variants: {"max_abs_diff": 1e-4}; reduced precision: {"min_psnr_db": <floor>}.
    tolerance: dict[str, float]
    passed: bool

    def __bool__(self) -> bool:
        return self.passed


@dataclass
class Variant:
    """One engine file in the artifact folder."""

    file: str
    kind: str  # "onnx" | "ort" | "tensorrt" | "openvino"
    strategy: str  # lowering of the dynamic conv: "branches", "aggregate", ...
    precision: str  # "fp32" | "fp16" | "int8" | "bf16"
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
    # Export's own proof: a reference image split into overlapping tiles (numpy + ONNX Runtime,
    # export/tiling.py:run_tiled) against the PyTorch reference output.
    parity: Parity | None = None


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
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            variants = [
                Variant(**{**v, "parity": Parity(**v["parity"]) if v.get("parity") else None})
                for v in data["variants"]
            ]
            tiling_data = data.get("tiling")
            tiling = (
                Tiling(**{**tiling_data, "parity": Parity(**tiling_data["parity"]) if tiling_data.get("parity") else None})
                if tiling_data
                else None
            )
            return cls(
                **{
                    **data,
                    "input": TensorSpec(**{**data["input"], "value_range": tuple(data["input"]["value_range"])}),
                    "output": TensorSpec(**{**data["output"], "value_range": tuple(data["output"]["value_range"])}),
                    "variants": variants,
                    "references": [Reference(**r) for r in data["references"]],
                    "tiling": tiling,
                }
            )
        except (KeyError, TypeError) as exc:
            raise UserError(f"manifest does not follow {FORMAT}: {exc}") from None


def read_manifest(folder: str | os.PathLike[str]) -> Manifest:
    """Read ``<folder>/manifest.json``; raises :class:`UserError` with the reason if unusable."""
    path = Path(folder) / MANIFEST_NAME
    if not Path(folder).is_dir():
        raise UserError(f"artifact folder {folder} not found (make one with `python -m export`)")
    if not path.is_file():
        raise UserError(f"{folder} has no {MANIFEST_NAME}: not an artifact folder written by export")
    return Manifest.from_dict(read_json_document(path, FORMAT, "manifest"))


def hash_files(folder: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 of every file under ``folder`` except the manifest, keyed by POSIX relative path."""
    root = Path(folder)
    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME and not p.name.endswith(".tmp")
    }


def verify_files(folder: str | os.PathLike[str], manifest: Manifest) -> list[str]:
    """Problems found comparing the folder's files with the manifest's sha256 list (empty = ok)."""
    root = Path(folder)
    problems = []
    for rel, expected in manifest.files.items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel}: sha256 differs from the manifest (file changed or corrupt)")
    return problems
