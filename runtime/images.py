"""Image files: finding them, and the robust decode/encode ``runtime.infer`` relies on
(EXIF orientation, alpha, palette, CMYK, 16-bit grayscale, bad files refused with a reason)."""
from __future__ import annotations

import contextlib
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from .errors import UserError
from .files import atomic_path, unique_files, walk_tree

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


def find_images(folder: str | os.PathLike[str], suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Every image file under ``folder`` (recursively, symlinked sub-folders not entered), sorted
    by path, each file once however many links name it."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"image folder {root} not found")
    wanted = tuple(s.lower() for s in suffixes)
    found = (here / name for here, _, names in walk_tree(root) for name in names)
    return unique_files(sorted(p for p in found if p.suffix.lower() in wanted and p.is_file()))


def to_uint8(array: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Floats in [0, ``peak``] -> uint8, the project's one float-to-8-bit rounding (what saving to an
    8-bit file does): in float64, clipped, scaled to 0-255, rounded half up (MATLAB's round for x >= 0)."""
    values = np.clip(np.asarray(array, dtype=np.float64), 0.0, peak) * (255.0 / peak)
    return np.floor(values + 0.5).astype(np.uint8)


# ---- robust single-file I/O for runtime.infer ------------------------------------------------
# Every failure below is a UserError whose message names the reason; callers add the file name.

OUTPUT_FORMATS = {
    "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF", "tif": "TIFF", "bmp": "BMP",
}
SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")
ALPHA_FORMATS = ("PNG", "WEBP", "TIFF")
_SIXTEEN_BIT_GRAY = ("I;16", "I;16B", "I;16L", "I;16N")


@dataclass
class Picture:
    """A decoded image ready for an RGB model, plus what is needed to write it back alike.

    ``rgb`` is HxWx3 uint8 (8-bit sources) or uint16 (16-bit grayscale); ``alpha`` is HxW of
    the same dtype or None; ``gray`` sources are written back as grayscale.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    gray: bool = False
    source_mode: str = "RGB"
    icc_profile: bytes | None = None

    @property
    def bits(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL reports sizes."""
        return self.rgb.shape[1], self.rgb.shape[0]


def max_image_pixels() -> int:
    """The default decompression-bomb limit of images and video frames: Pillow's (read, never changed)."""
    return int(Image.MAX_IMAGE_PIXELS or 178_956_970)


def read_picture(path: str | os.PathLike[str], max_pixels: int | None = None) -> Picture:
    """Decode one file robustly; raises :class:`UserError` naming the reason on any bad input.

    Images above ``max_pixels`` (default: ``Image.MAX_IMAGE_PIXELS``, read, never changed) are
    refused from their header, before any pixel is decoded; truncated files are refused, never
    padded with grey; so are files Pillow would decode to fewer bits than they hold.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("not a file" if path.exists() else "no such file")
    if path.stat().st_size == 0:
        raise UserError("empty file (0 bytes)")
    limit = max_image_pixels() if max_pixels is None else max_pixels
    try:
        with _pixel_limit(limit), Image.open(path) as image:
            _check_pixels(image.size, limit)
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                raise UserError(f"multi-frame image ({frames} frames); extract the frame to upscale first")
            _refuse_truncating_decode(image, path)
            image.load()
            return picture_from_pil(image)
    except Image.DecompressionBombError as exc:  # only if another hook replaced ours
        raise UserError(f"decompression bomb refused: {exc}") from None
    except Image.UnidentifiedImageError:
        raise UserError("not an image file Pillow can read (or corrupt header)") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error) as exc:
        if isinstance(exc, UserError):
            raise
        reason = str(exc) or type(exc).__name__
        raise UserError(f"corrupt or truncated image ({reason})") from None


# ---- the decompression-bomb limit, per call and per thread -------------------------------------
# Pillow checks sizes against the process-wide Image.MAX_IMAGE_PIXELS in Image.open and again in
# some plugins (TIFF load, WebP open, GIF frames), warning between 1x and 2x of it and raising
# above. Toggling that global (or warning filters) per call races between threads. Instead
# Pillow's check function is wrapped once: inside read_picture it applies that thread's limit
# (exactly, as an error), everywhere else it is Pillow's own check, unchanged.
_active = threading.local()
_hook_lock = threading.Lock()


def _check_pixels(size: tuple[int, int], limit: int | None) -> None:
    width, height = size
    if limit and width * height > limit:
        raise UserError(
            f"{width}x{height} = {width * height} pixels exceeds the decompression-bomb limit "
            f"of {limit} (raise it with --max-pixels if the file is trusted)"
        )


def _hooked(pillow_check: Callable[..., None]) -> Callable[..., None]:
    def check(size: tuple[int, int], *args: Any, **kwargs: Any) -> None:
        limits = getattr(_active, "limits", None)
        if not limits:
            return pillow_check(size, *args, **kwargs)
        _check_pixels(size, limits[-1])

    check._runtime_hook = True  # type: ignore[attr-defined]
    return check


@contextlib.contextmanager
def _pixel_limit(limit: int | None) -> Iterator[None]:
    with _hook_lock:
        current = Image._decompression_bomb_check
        if not getattr(current, "_runtime_hook", False):
            Image._decompression_bomb_check = _hooked(current)
    stack = _active.__dict__.setdefault("limits", [])
    stack.append(limit)
    try:
        yield
    finally:
        stack.pop()


# ---- sources Pillow would decode to fewer bits than they hold ---------------------------------
# Pillow decodes 16-bit RGB(A)/LA/CMYK into its 8-bit modes without a word. What tells depends on
# the decoder: the raw mode (PNG, SGI, TIFF: "RGB;16B", "LA;16B"; BMP's "BGR;16" is 5-6-5, not 16
# bits a sample), TIFF's BitsPerSample, PPM's maxval, the JPEG 2000 codestream header. (AVIF
# above 8 bits does not tell: a documented limit in runtime/README.md.)
_DEEP_RAWMODE = re.compile(r";16[BLN]$")
_WIDE_MODES = (*_SIXTEEN_BIT_GRAY, "I", "F")


def _declared_bits(image: Image.Image, path: Path) -> int:
    bits = 8
    for tile in image.tile:
        args = tile.args if isinstance(tile.args, tuple) else (tile.args,)
        raw = str(args[0]) if args else ""
        if _DEEP_RAWMODE.search(raw):
            bits = max(bits, 16)
        if tile.codec_name in ("ppm", "ppm_plain") and len(args) > 1 and isinstance(args[-1], int):
            bits = max(bits, int(args[-1]).bit_length())  # maxval 65535 -> 16, 1023 -> 10
    if image.format == "TIFF":
        samples = image.tag_v2.get(258, (8,))
        bits = max((bits, *(samples if isinstance(samples, tuple) else (samples,))))
    elif image.format == "JPEG2000":
        bits = max(bits, _jpeg2000_bits(path))
    return bits


def _boxes(handle: Any, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, payload size) of the JPEG 2000 (ISO base media) boxes from here to ``end``."""
    while handle.tell() + 8 <= end:
        start = handle.tell()
        size, kind = struct.unpack(">I4s", handle.read(8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", handle.read(8))
            header = 16
        elif size == 0:
            size = end - start
        if size < header:
            return
        yield kind, start + header, size - header
        handle.seek(start + size)


_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"


def _jpeg2000_bits(path: Path) -> int:
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        if handle.read(4) != _J2K_SOC_SIZ:  # a .jp2: the codestream is the jp2c box
            handle.seek(0)
            offset = next((o for kind, o, _ in _boxes(handle, end) if kind == b"jp2c"), None)
            if offset is None:
                return 0
            handle.seek(offset)
            if handle.read(4) != _J2K_SOC_SIZ:
                return 0
        siz = handle.read(38)  # Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz
        if len(siz) < 38:
            return 0
        (components,) = struct.unpack_from(">H", siz, 36)
        ssiz = handle.read(3 * components)[0::3]  # Ssiz XRsiz YRsiz each: bits - 1 (low 7 bits)
        return max(((b & 0x7F) + 1 for b in ssiz), default=0)


def _refuse_truncating_decode(image: Image.Image, path: Path) -> None:
    if image.mode in _WIDE_MODES:
        return
    bits = _declared_bits(image, path)
    if bits > 8:
        raise UserError(
            f"{bits}-bit {image.mode} image: Pillow can only decode it truncated to 8 bits, and this runtime "
            "keeps 16-bit precision only for grayscale; convert it to 8-bit (or 16-bit grayscale) first"
        )


def picture_from_pil(image: Image.Image) -> Picture:
    """Any PIL image -> :class:`Picture` (EXIF orientation applied, palette/CMYK converted)."""
    image = ImageOps.exif_transpose(image)
    icc = image.info.get("icc_profile")
    mode = image.mode
    if image.width < 1 or image.height < 1:
        raise UserError(f"image has no pixels ({image.width}x{image.height})")
    if mode in _SIXTEEN_BIT_GRAY or mode == "I":
        data = np.asarray(image)
        if data.min(initial=0) < 0 or data.max(initial=0) > 65535:
            raise UserError(f"32-bit integer image (mode {mode}) with values outside 0..65535; not supported")
        gray = data.astype(np.uint16)
        return Picture(np.repeat(gray[..., None], 3, axis=2), gray=True, source_mode=mode, icc_profile=icc)
    if mode == "F":
        raise UserError("32-bit float image (mode F) not supported; save it as 8- or 16-bit")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "CMYK":
        icc = None  # a CMYK profile does not describe the RGB output
    gray = image.mode in ("1", "L", "LA", "La")
    has_alpha = (image.mode in ("RGBA", "LA", "La", "RGBa")
                 or (image.mode in ("L", "RGB") and "transparency" in image.info))
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return Picture(np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3]), gray, mode, icc)
    return Picture(np.asarray(image.convert("RGB")), None, gray, mode, icc)


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, as PIL's convert("L") computes it, on float arrays (HxWx3 -> HxW)."""
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)


def picture_to_pil(picture: Picture) -> Image.Image:
    """Inverse of :func:`picture_from_pil` for 8-bit pictures and 16-bit grayscale."""
    if picture.bits == 16:
        if not picture.gray or picture.alpha is not None:
            raise UserError("16-bit output is only supported for grayscale without alpha")
        return Image.fromarray(np.ascontiguousarray(picture.rgb[..., 0]))  # uint16 -> mode I;16
    base = picture.rgb[..., 0] if picture.gray else picture.rgb
    if picture.alpha is None:
        return Image.fromarray(np.ascontiguousarray(base))
    if picture.gray:
        return Image.fromarray(np.stack([base, picture.alpha], axis=2), "LA")
    return Image.fromarray(np.concatenate([picture.rgb, picture.alpha[..., None]], axis=2), "RGBA")


def output_format(name: str) -> tuple[str, str]:
    """``--format`` value -> (file suffix, Pillow format); raises on unknown names."""
    key = name.lower().lstrip(".")
    if key not in OUTPUT_FORMATS:
        raise UserError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}; got {name!r}")
    return ("jpg" if key == "jpeg" else "tif" if key == "tiff" else key), OUTPUT_FORMATS[key]


def check_savable(picture: Picture, pil_format: str) -> None:
    """Raise :class:`UserError` if ``pil_format`` would drop the picture's alpha or bit depth."""
    if picture.bits == 16 and pil_format not in SIXTEEN_BIT_FORMATS:
        raise UserError(f"16-bit image cannot be saved as {pil_format} without truncation; use --format png or tiff")
    if picture.alpha is not None and pil_format not in ALPHA_FORMATS:
        raise UserError(f"image has alpha, which {pil_format} cannot store; use --format png, webp or tiff")


def save_picture(picture: Picture, path: str | os.PathLike[str], pil_format: str, replace: bool = True) -> None:
    """Write atomically (temp file + rename); refuses a format that would drop alpha or bits.

    ``replace=False``: FileExistsError if ``path`` exists when the file is published (see
    :func:`runtime.files.atomic_path`), so concurrent writers never replace each other.
    """
    check_savable(picture, pil_format)
    image = picture_to_pil(picture)
    options: dict[str, object] = {}
    if picture.icc_profile and pil_format in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = picture.icc_profile
    if pil_format in ("JPEG", "WEBP"):
        options["quality"] = 95
    with atomic_path(path, replace=replace) as tmp:
        image.save(tmp, format=pil_format, **options)

