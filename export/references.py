"""Reference inputs: small crops of the natural images that ship inside scikit-image.

Sizes cover an even size, an odd size and a batch of two, so every variant is checked where the
models' pad-to-even and crop logic matters. Crops are deterministic (fixed images and offsets).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReferenceSpec:
    images: tuple[str, ...]  # skimage.data names, one per batch element
    height: int
    width: int


REFERENCE_SPECS = (
    ReferenceSpec(("astronaut",), 40, 48),
    ReferenceSpec(("chelsea",), 35, 45),
    ReferenceSpec(("coffee", "rocket"), 24, 29),
)


def skimage_rgb(name: str) -> np.ndarray:
    """An RGB image from skimage.data as float32 HxWx3 in [0, 1] (grayscale images are repeated)."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3]
    return (image.astype(np.float32) / (65535.0 if image.dtype == np.uint16 else 255.0)).astype(np.float32)


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """HxWx3 -> 3xhxw crop around the image centre; an image smaller than that is mirrored out
    to the size first (reference inputs at a large ``--fixed`` shape)."""
    grow_h, grow_w = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if grow_h or grow_w:
        image = np.pad(image, ((grow_h // 2, grow_h - grow_h // 2), (grow_w // 2, grow_w - grow_w // 2), (0, 0)),
                       mode="reflect")
    top = (image.shape[0] - height) // 2
    left = (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width].transpose(2, 0, 1))


def reference_batch(spec: ReferenceSpec) -> np.ndarray:
    """float32 NCHW in [0, 1]."""
    return np.stack([center_crop(skimage_rgb(n), spec.height, spec.width) for n in spec.images])


def reference_inputs() -> list[tuple[str, np.ndarray]]:
    """(source description, batch) for every reference input."""
    return [
        (f"skimage.data {'+'.join(s.images)} centre crop {s.height}x{s.width}", reference_batch(s))
        for s in REFERENCE_SPECS
    ]


FIXED_SHAPE_IMAGES = ("astronaut", "coffee", "rocket", "chelsea")


def fixed_shape_reference(batch: int, height: int, width: int) -> tuple[str, np.ndarray]:
    """A reference input of exactly (batch, 3, height, width) for a fixed-shape variant."""
    names = tuple(FIXED_SHAPE_IMAGES[i % len(FIXED_SHAPE_IMAGES)] for i in range(batch))
    return (f"skimage.data {'+'.join(names)} centre crop {height}x{width} (fixed-shape variants)",
            reference_batch(ReferenceSpec(names, height, width)))
