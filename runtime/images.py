"""Image files: finding them, and the robust decode/encode ``runtime.infer`` relies on
(EXIF orientation, alpha, palette, CMYK, 16-bit grayscale, bad files refused with a reason)."""
from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import UserError
from .files import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


def find_images(folder: str | os.PathLike[str], suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Every image file under ``folder`` (recursively), sorted by path."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"image folder {root} not found")
    wanted = tuple(s.lower() for s in suffixes)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 with rounding (what saving to an 8-bit file does)."""
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ---- robust single-file I/O for runtime.infer ------------------------------------------------
# Every failure below is a UserError whose message names the reason; callers add the file name.

OUTPUT_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF", "tif": "TIFF", "bmp": "BMP"}
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


def read_picture(path: str | os.PathLike[str], max_pixels: int | None = None) -> Picture:
    """Decode one file robustly; raises :class:`UserError` naming the reason on any bad input.

    Pillow's decompression-bomb *warning* is treated as an error (``max_pixels`` overrides
    ``Image.MAX_IMAGE_PIXELS``); truncated files are refused, never padded with grey.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError("not a file" if path.exists() else "no such file")
    if path.stat().st_size == 0:
        raise UserError("empty file (0 bytes)")
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    pillow_limit = Image.MAX_IMAGE_PIXELS
    try:
        # Our own check below applies ``limit`` exactly (Pillow only warns between 1x and 2x its
        # limit); Pillow's is switched off for the open so a raised --max-pixels takes effect.
        Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if limit and width * height > limit:
                    raise UserError(
                        f"{width}x{height} = {width * height} pixels exceeds the decompression-bomb limit "
                        f"of {limit} (raise it with --max-pixels if the file is trusted)"
                    )
                frames = getattr(image, "n_frames", 1)
                if frames > 1:
                    raise UserError(f"multi-frame image ({frames} frames); extract the frame to upscale first")
                _refuse_truncating_decode(image)
                image.load()
                return picture_from_pil(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UserError(f"decompression bomb refused: {exc}") from None
    except Image.UnidentifiedImageError:
        raise UserError("not an image file Pillow can read (or corrupt header)") from None
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error) as exc:
        if isinstance(exc, UserError):
            raise
        reason = str(exc) or type(exc).__name__
        raise UserError(f"corrupt or truncated image ({reason})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit


def _refuse_truncating_decode(image: Image.Image) -> None:
    # Pillow decodes 16-bit RGB/RGBA/LA into 8-bit modes without a word; only the decoder's raw
    # mode (e.g. "RGB;16B") tells. Refuse rather than silently truncate.
    rawmodes = [tile.args if isinstance(tile.args, str) else (tile.args or ("",))[0] for tile in image.tile]
    if image.mode not in _SIXTEEN_BIT_GRAY + ("I",) and any(";16" in str(raw) for raw in rawmodes):
        raise UserError(
            f"16-bit {image.mode} image: Pillow can only decode it truncated to 8 bits, and this runtime "
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
    has_alpha = image.mode in ("RGBA", "LA", "La", "RGBa") or (image.mode in ("L", "RGB") and "transparency" in image.info)
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


def save_picture(picture: Picture, path: str | os.PathLike[str], pil_format: str) -> None:
    """Write atomically (temp file + rename); refuses a format that would drop alpha or bits."""
    check_savable(picture, pil_format)
    image = picture_to_pil(picture)
    options: dict[str, object] = {}
    if picture.icc_profile and pil_format in ("PNG", "JPEG", "WEBP", "TIFF"):
        options["icc_profile"] = picture.icc_profile
    if pil_format in ("JPEG", "WEBP"):
        options["quality"] = 95
    with atomic_path(path) as tmp:
        image.save(tmp, format=pil_format, **options)

