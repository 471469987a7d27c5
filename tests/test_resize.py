"""runtime.resize.imresize against facts that do not come from the code under test."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from runtime.color import rgb_to_y
from runtime.errors import UserError
from runtime.images import find_images
from runtime.resize import imresize

# Keys' cubic (a = -0.5) evaluated by hand: k(x) = 1.5|x|^3 - 2.5|x|^2 + 1 on [0, 1],
# -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on [1, 2].
K025, K075, K125, K175 = 0.8671875, 0.2265625, -0.0703125, -0.0234375


def test_upscale_interior_and_mirrored_edge_by_hand() -> None:
    v = np.array([[10.0, 20.0, 40.0, 80.0, 160.0, 320.0]])
    out = imresize(v, 2)
    assert out.shape == (2, 12)
    # Output pixel 4 (1-based) samples u = 4/2 + 0.25 = 2.25: taps 1..4 at distances 1.25, 0.25, 0.75, 1.75.
    assert out[0, 3] == pytest.approx(K125 * 10 + K025 * 20 + K075 * 40 + K175 * 80)
    # Output pixel 1 samples u = 0.75: taps 0 and -1 mirror onto pixels 1 and 2 (MATLAB 'symmetric').
    assert out[0, 0] == pytest.approx((K075 + K025) * 10 + (K175 + K125) * 20)
    # One input row: every vertical tap mirrors onto it, so both output rows are equal.
    np.testing.assert_array_equal(out[0], out[1])


def test_downscale_stretches_kernel_by_hand() -> None:
    v = np.array([[3.0, 7.0, 20.0, 50.0]])
    out = imresize(v, (1.0, 0.5))
    assert out.shape == (1, 2)
    # Scale 1/2: kernel 0.5 * k(0.5 d), u = 1.5, taps at d = +-0.5, +-1.5, +-2.5, +-3.5 (mirrored at both ends).
    expected = 0.5 * (
        (K075 + K025) * 3 + (K125 + K025) * 7 + (K175 + K075) * 20 + (K125 + K175) * 50
    )
    assert out[0, 0] == pytest.approx(expected)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_constant_image_stays_constant(scale: float) -> None:
    image = np.full((24, 36, 3), 137, dtype=np.uint8)
    out = imresize(image, scale)
    assert out.dtype == np.uint8
    assert np.all(out == 137)
    floats = imresize(image.astype(np.float64) / 255, scale)
    np.testing.assert_allclose(floats, 137 / 255, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "scale", "expected"),
    [((256, 255), 1 / 3, (86, 85)), ((255, 256), 1 / 2, (128, 128)), ((85, 10), 3, (255, 30)),
     ((7, 9), 4, (28, 36)), ((64, 64), 1 / 4, (16, 16))],
)
def test_output_shape_is_ceil_of_scaled_size(shape, scale, expected) -> None:
    out = imresize(np.zeros(shape + (3,), dtype=np.uint8), scale)
    assert out.shape == expected + (3,)


def test_explicit_output_shape_and_grayscale() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(30, 40), dtype=np.uint8)
    out = imresize(gray, output_shape=(15, 20))
    assert out.shape == (15, 20) and out.dtype == np.uint8
    # output_shape (15, 20) on 30x40 is the same as scale 1/2.
    np.testing.assert_array_equal(out, imresize(gray, 0.5))


def test_uint8_output_is_rounded_float_result_within_one_level() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(30, 226, size=(40, 40, 3), dtype=np.uint8)  # no clipping
    as_uint8 = imresize(image, 1 / 3).astype(np.float64)
    as_float = imresize(image.astype(np.float64), 1 / 3)
    # Two rounded passes: at most one level per pass away from the unrounded result.
    assert np.max(np.abs(as_uint8 - np.clip(as_float, 0, 255))) <= 1.0 + 1e-9


def test_channels_are_independent() -> None:
    rng = np.random.default_rng(2)
    image = rng.random((20, 22, 3))
    out = imresize(image, 1 / 2)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], imresize(image[..., c], 1 / 2))


@pytest.mark.parametrize("bad", [dict(scale=0), dict(scale=-2), dict(scale=float("nan")), dict(),
                                 dict(scale=2, output_shape=(4, 4))])
def test_bad_arguments_raise_user_errors(bad) -> None:
    with pytest.raises(UserError):
        imresize(np.zeros((4, 4)), **bad)


def test_rejects_non_image_shapes() -> None:
    with pytest.raises(UserError, match="shape"):
        imresize(np.zeros((2, 2, 2, 2)), 2)


def _bicubic_y_psnr(folder, scale: int) -> float:
    values = []
    for path in find_images(folder):
        with Image.open(path) as handle:
            image = np.asarray(handle.convert("RGB"))
        hr = image[: image.shape[0] // scale * scale, : image.shape[1] // scale * scale]
        sr = imresize(imresize(hr, 1 / scale), scale)
        a = rgb_to_y(hr / 255.0)[scale:-scale, scale:-scale] * 255
        b = rgb_to_y(sr / 255.0)[scale:-scale, scale:-scale] * 255
        values.append(10 * np.log10(255**2 / np.mean((a - b) ** 2)))
    return float(np.mean(values))


def test_set5_x2_bicubic_matches_literature(shared_data) -> None:
    """The headline: MATLAB-style bicubic on Set5 x2 gives the literature's 33.66 dB (Y, border 2)."""
    folder = shared_data / "set5"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    assert _bicubic_y_psnr(folder, 2) == pytest.approx(33.66, abs=0.05)
