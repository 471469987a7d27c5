"""Image files <-> float arrays: the one image loader every layer uses.

Arrays are float32 HxWx3 (or HxW for ``load_gray``) in [0, 1]. EXIF orientation is applied.
runtime/ builds the robust batch I/O (alpha, palette, 16-bit, bad files) on top of this module.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


def find_images(folder: str | os.PathLike[str], suffixes: Iterable[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Every image file under ``folder`` (recursively), sorted by path."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"image folder {root} not found")
    wanted = tuple(s.lower() for s in suffixes)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def to_float(image: Image.Image) -> np.ndarray:
    """PIL image (any mode) -> float32 RGB HxWx3 in [0, 1], EXIF orientation applied."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        data = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(data[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def load_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return to_float(image)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UserError(f"{path}: cannot read image ({exc})") from None


def to_uint8(array: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 with rounding (what saving to an 8-bit file does)."""
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_rgb(path: str | os.PathLike[str], array: np.ndarray) -> None:
    Image.fromarray(to_uint8(array)).save(path)
