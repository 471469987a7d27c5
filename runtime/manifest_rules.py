"""What a valid manifest is: limits, typed building of its JSON (a bool is never an int), and the
confinement of every path it names to the artifact folder. ``runtime.manifest`` applies them."""
from __future__ import annotations

import dataclasses
import math
import os
import stat
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin, get_type_hints

from .catalogue import CATALOGUE, PRECISIONS
from .errors import UserError
from .files import MAX_JSON_BYTES

if TYPE_CHECKING:
    from .manifest import Tiling, Variant

FORMAT = "dyconvsr-toolchain/artifact-v1"
MAX_SCALE = 16
MAX_CHANNELS = 1 << 16
MAX_HALO = 256  # LR pixels; export measures receptive fields of at most 47
MAX_ALIGN = 64
MAX_BATCH = 1 << 16
KINDS = tuple(dict.fromkeys(entry.kind for entry in CATALOGUE))  # onnx, ort, tensorrt, openvino
# One artifact file (engine, weights, reference): far above any engine this toolchain writes, and
# compared with st_size before a byte is hashed or loaded, so a sparse 1 TB file costs nothing.
MAX_FILE_BYTES = 4 << 30
MAX_ARTIFACT_BYTES = 8 << 30  # every listed file together (a real artifact is about 20 MB)
MAX_MANIFEST_BYTES = MAX_JSON_BYTES
_HEX = frozenset("0123456789abcdef")


def invalid(where: str, wanted: str, got: object) -> UserError:
    shown = type(got).__name__ if isinstance(got, dict) else repr(got)
    if isinstance(got, bool):
        shown += " (a bool)"
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return UserError(f"manifest does not follow {FORMAT}: {where or 'the document'} must be {wanted}; got {shown}")


def build_typed(hint: Any, value: Any, where: str) -> Any:
    """Parsed JSON ``value`` as the annotated type ``hint`` (dataclass, list, dict, scalar), or UserError."""
    if hint is Any:
        return value
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return build_typed(inner, value, where)
    if dataclasses.is_dataclass(hint):
        if type(value) is not dict:
            raise invalid(where, "a JSON object", value)
        fields = {f.name: f for f in dataclasses.fields(hint)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise invalid(where, f"an object of {', '.join(fields)}", f"unknown field {unknown[0]!r}")
        hints = get_type_hints(hint)
        kwargs = {}
        for name, spec in fields.items():
            key = f"{where}.{name}" if where else name
            if name in value:
                kwargs[name] = build_typed(hints[name], value[name], key)
            elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise invalid(key, "present", "nothing")
        return hint(**kwargs)
    if origin is list:
        if type(value) is not list:
            raise invalid(where, "a list", value)
        return [build_typed(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is tuple:
        if type(value) is not list or len(value) != len(args):
            raise invalid(where, f"a list of {len(args)}", value)
        return tuple(build_typed(a, item, f"{where}[{i}]") for i, (a, item) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if type(value) is not dict:
            raise invalid(where, "a JSON object", value)
        return {key: build_typed(args[1], item, f"{where}[{key!r}]") for key, item in value.items()}
    if hint is float:
        if type(value) not in (int, float):
            raise invalid(where, "a number", value)
        return float(value)
    names = {int: "an integer", bool: "true or false", str: "a string"}
    if hint not in names:
        raise TypeError(f"manifest field {where}: build_typed does not know the annotation {hint}")
    if type(value) is not hint:  # exact: True is not an integer here
        raise invalid(where, names[hint], value)
    return value


def in_range(where: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise invalid(where, f"an integer from {low} to {high}", value)


def check_sha256(where: str, digest: str) -> None:
    if len(digest) != 64 or not set(digest) <= _HEX:
        raise invalid(where, "a sha256: 64 lowercase hex digits", digest)


def check_shape(where: str, shape: list[int], channels: int | None = None) -> None:
    if len(shape) != 4 or min(shape) < 1 or (channels is not None and shape[1] != channels):
        raise invalid(where, f"[N, {'C' if channels is None else channels}, H, W] of positive integers", shape)
    if math.prod(shape) * 4 > MAX_FILE_BYTES:
        raise invalid(where, f"a shape whose float32 data fits in {MAX_FILE_BYTES} bytes", shape)


def check_variant(where: str, variant: Variant, files: list[str]) -> None:
    """Kind, precision, shapes, and a ``source`` that is another variant of the manifest (``files``)."""
    if variant.kind not in KINDS:
        raise invalid(f"{where}.kind", f"one of {', '.join(KINDS)}", variant.kind)
    if variant.precision not in PRECISIONS:
        raise invalid(f"{where}.precision", f"one of {', '.join(PRECISIONS)}", variant.precision)
    if variant.fixed_input_shape is not None:
        check_shape(f"{where}.fixed_input_shape", variant.fixed_input_shape)
    if variant.batch is not None:
        in_range(f"{where}.batch", variant.batch, 1, MAX_BATCH)
    if variant.source is not None and (variant.source == variant.file or variant.source not in files):
        raise invalid(f"{where}.source", "null or the file of another variant (the one it was converted from)",
                      variant.source)


TILE_BORDERS = ("edge", "reflect")


def check_tiling(tiling: Tiling) -> None:
    layers = len(tiling.stats)
    if len(tiling.pooled_inputs) != layers or len(tiling.pooled_channels) != layers:
        raise invalid("tiling", f"as many pooled_inputs and pooled_channels as stats graphs ({layers})",
                       f"{len(tiling.pooled_inputs)} and {len(tiling.pooled_channels)}")
    if len(set(tiling.pooled_inputs)) != layers or not all(tiling.pooled_inputs):
        raise invalid("tiling.pooled_inputs", "distinct non-empty input names", tiling.pooled_inputs)
    for i, channels in enumerate(tiling.pooled_channels):
        in_range(f"tiling.pooled_channels[{i}]", channels, 1, MAX_CHANNELS)
    if not (math.isfinite(tiling.feature_scale) and 0 < tiling.feature_scale <= MAX_SCALE):
        raise invalid("tiling.feature_scale", f"a number above 0 and at most {MAX_SCALE}", tiling.feature_scale)
    in_range("tiling.align", tiling.align, 1, MAX_ALIGN)
    in_range("tiling.halo", tiling.halo, 0, MAX_HALO)
    if tiling.halo % tiling.align:
        raise invalid("tiling.halo", f"a multiple of tiling.align ({tiling.align})", tiling.halo)
    if tiling.border not in TILE_BORDERS:
        raise invalid("tiling.border", f"one of {', '.join(TILE_BORDERS)}", tiling.border)


def check_relative(where: str, rel: str) -> None:
    """A path the manifest names: relative POSIX, without '..', '.', empty parts, backslashes, NUL or a drive."""
    parts = rel.split("/")
    if (rel.startswith("/") or "\\" in rel or "\0" in rel or ":" in parts[0]
            or any(part in ("", ".", "..") for part in parts)):
        raise invalid(where, "a relative POSIX path inside the artifact folder (no '..', no leading '/')", rel)


def check_listing(paths: list[tuple[str, str]], files: dict[str, str]) -> None:
    """Every path the manifest names (``(field, path)`` pairs) and every ``files`` key is confined
    (:func:`check_relative`), every digest is a sha256, and every named path is listed in ``files``."""
    for where, rel in paths:
        check_relative(where, rel)
    for rel, digest in files.items():
        check_relative("files key", rel)
        check_sha256(f"files[{rel!r}]", digest)
    for where, rel in paths:
        if rel not in files:
            raise invalid(where, "a file listed in files (its sha256 is what check and verify compare)", rel)


# ---- the folder -------------------------------------------------------------------------------
def artifact_file(folder: str | os.PathLike[str], rel: str, limit: int = MAX_FILE_BYTES) -> Path:
    """``folder/rel`` once it is a regular file of at most ``limit`` bytes that stays inside
    ``folder`` with every symlink resolved; else :class:`UserError` starting with ``rel``.

    Checked as the path is now: a file swapped between this check and its use is not caught
    (whoever can do that can rewrite the manifest too).
    """
    check_relative("path", rel)
    root = Path(folder).resolve()
    path = Path(folder) / rel
    try:
        real = path.resolve(strict=True)
        info = real.stat()
    except FileNotFoundError:
        raise UserError(f"{rel}: missing") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, no permission
        raise UserError(f"{rel}: cannot be resolved ({exc})") from None
    if not real.is_relative_to(root):
        raise UserError(f"{rel}: resolves to {real}, outside the artifact folder {root}")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{rel}: not a regular file")
    if info.st_size > limit:
        raise UserError(f"{rel}: {info.st_size} bytes, above the limit of {limit} bytes for one artifact file")
    return path
