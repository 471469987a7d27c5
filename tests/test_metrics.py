"""runtime.metrics against scikit-image, published numbers and properties that must hold."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from runtime.errors import UserError
from runtime.images import find_images
from runtime.metrics import (
    crop_border,
    ms_ssim,
    noise_visibility,
    psnr,
    score_pair,
    ssim,
    weighted_psnr,
    y_channel,
)
from runtime.resize import imresize


def _skimage_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )


@pytest.fixture(scope="module")
def real_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """(degraded, original) uint8 RGB pairs from real photographs: bicubic x3 round trip and JPEG-ish noise."""
    rng = np.random.default_rng(0)
    pairs = []
    for image in (data.astronaut()[:240, :300], data.coffee()[:180, :270], data.chelsea()[:150, :210]):
        blurred = imresize(imresize(image, 1 / 3), 3)[: image.shape[0], : image.shape[1]]
        noisy = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
        pairs += [(blurred, image), (noisy, image)]
    return pairs


def test_y_channel_matches_skimage_bt601(real_pairs) -> None:
    for _, image in real_pairs:
        expected = color.rgb2ycbcr(image)[..., 0]  # skimage: Y in [16, 235] from uint8 RGB
        np.testing.assert_allclose(y_channel(image), expected, atol=1e-9)


def test_psnr_matches_skimage_on_y_and_rgb(real_pairs) -> None:
    for degraded, original in real_pairs:
        a, b = y_channel(degraded), y_channel(original)
        assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-10)
        assert psnr(degraded, original) == pytest.approx(
            peak_signal_noise_ratio(original, degraded, data_range=255), abs=1e-10
        )


def test_ssim_matches_skimage_gaussian_window(real_pairs) -> None:
    for degraded, original in real_pairs:
        a, b = y_channel(degraded), y_channel(original)
        assert ssim(a, b) == pytest.approx(_skimage_ssim(a, b), abs=1e-10)


def test_score_pair_crops_border_and_matches_skimage(real_pairs) -> None:
    degraded, original = real_pairs[0]
    scores = score_pair(degraded, original, border=3)
    a, b = y_channel(degraded)[3:-3, 3:-3], y_channel(original)[3:-3, 3:-3]
    assert scores.psnr_y == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-10)
    assert scores.ssim_y == pytest.approx(_skimage_ssim(a, b), abs=1e-10)
    assert scores.psnr_rgb == pytest.approx(
        peak_signal_noise_ratio(original[3:-3, 3:-3], degraded[3:-3, 3:-3], data_range=255), abs=1e-10
    )
    # Garbage confined to the 3-pixel border changes nothing.
    spoiled = degraded.copy()
    spoiled[:3] = 0
    spoiled[:, -3:] = 255
    assert score_pair(spoiled, original, border=3) == scores


def test_identical_images() -> None:
    image = data.astronaut()
    scores = score_pair(image, image, border=2)
    assert scores.psnr_y == float("inf") and scores.psnr_rgb == float("inf") and scores.wpsnr_y == float("inf")
    assert scores.ssim_y == pytest.approx(1.0) and scores.msssim_y == pytest.approx(1.0)


def test_ms_ssim_is_one_for_identical_and_falls_with_noise() -> None:
    rng = np.random.default_rng(3)
    y = y_channel(data.astronaut())
    assert ms_ssim(y, y) == pytest.approx(1.0, abs=1e-12)
    values = [ms_ssim(y + rng.normal(0, sigma, y.shape), y) for sigma in (2, 8, 25)]
    assert 1.0 > values[0] > values[1] > values[2] > 0.0


def test_ms_ssim_single_scale_is_ssim() -> None:
    y = y_channel(data.coffee())
    other = y_channel(imresize(imresize(data.coffee(), 1 / 2), 2))
    assert ms_ssim(other, y, weights=(1.0,)) == pytest.approx(ssim(other, y), abs=1e-12)


def test_ms_ssim_small_image_uses_fewer_scales() -> None:
    rng = np.random.default_rng(4)
    small = rng.random((40, 40)) * 255
    value = ms_ssim(small + rng.normal(0, 5, small.shape), small)
    assert 0.0 < value < 1.0
    with pytest.raises(UserError, match="at least 11x11"):
        ms_ssim(small[:8, :8], small[:8, :8])


def test_weighted_psnr_properties() -> None:
    rng = np.random.default_rng(5)
    flat = np.full((64, 64), 120.0)
    noise = rng.normal(0, 4, flat.shape)
    # A flat reference has NVF = 1 everywhere: WPSNR is PSNR.
    assert weighted_psnr(flat, flat + noise) == pytest.approx(psnr(flat + noise, flat))
    # Half texture, half flat: the same error counts less on the texture.
    reference = flat.copy()
    reference[:, :32] += rng.normal(0, 40, (64, 32))
    on_texture, on_flat = np.zeros_like(flat), np.zeros_like(flat)
    on_texture[8:56, 8:24] = 10.0
    on_flat[8:56, 40:56] = 10.0
    assert psnr(reference + on_texture, reference) == pytest.approx(psnr(reference + on_flat, reference))
    assert weighted_psnr(reference, reference + on_texture) > weighted_psnr(reference, reference + on_flat) + 10
    nvf = noise_visibility(reference)
    assert nvf.min() > 0 and nvf.max() <= 1
    assert weighted_psnr(reference, reference + noise) >= psnr(reference + noise, reference)


def test_errors_name_what_was_received() -> None:
    with pytest.raises(UserError, match=r"\(4, 4\) vs \(4, 5\)"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(UserError, match="too small for a border crop of 3"):
        crop_border(np.zeros((6, 20)), 3)
    with pytest.raises(UserError, match="HxWx3"):
        score_pair(np.zeros((20, 20)), np.zeros((20, 20)), 2)


# Bicubic columns of the dynamic-CNN paper's Table 1 (Set5 averages): independent numbers that
# our resize + metrics must reproduce (the paper's pipeline rounds Y to uint8; ours does not).
PUBLISHED_SET5_BICUBIC = {2: (0.9299, 0.9942), 3: (0.8686, 0.9784), 4: (0.8113, 0.9618)}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_set5_bicubic_ssim_and_ms_ssim_match_published(shared_data, scale: int) -> None:
    folder = shared_data / "set5"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    values = []
    for path in find_images(folder):
        with Image.open(path) as handle:
            image = np.asarray(handle.convert("RGB"))
        hr = image[: image.shape[0] // scale * scale, : image.shape[1] // scale * scale]
        scores = score_pair(imresize(imresize(hr, 1 / scale), scale), hr, border=scale)
        values.append((scores.ssim_y, scores.msssim_y))
    ssim_mean, msssim_mean = np.mean(values, axis=0)
    published_ssim, published_msssim = PUBLISHED_SET5_BICUBIC[scale]
    assert ssim_mean == pytest.approx(published_ssim, abs=0.001)
    assert msssim_mean == pytest.approx(published_msssim, abs=0.0005)


def test_runtime_modules_do_not_import_torch() -> None:
    """runtime/ ships to devices without torch."""
    import subprocess
    import sys

    code = "import sys, runtime.metrics, runtime.resize; print('torch' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


# ---- the evaluation protocol (runtime/quality.py) and the one float -> uint8 rounding ---------------
def test_to_uint8_rounds_half_up_after_clipping() -> None:
    from runtime.images import to_uint8

    # MATLAB's round (half away from zero) on the clipped values; independent expected numbers.
    values = np.array([-3.0, 0.0, 0.49, 0.5, 1.5, 2.4999, 127.5, 254.5, 255.0, 300.0])
    assert to_uint8(values, peak=255.0).tolist() == [0, 0, 0, 1, 2, 2, 128, 255, 255, 255]
    levels = np.arange(256)
    for dtype in (np.float32, np.float64):  # k / 255 comes back as k whichever float the engine used
        assert np.array_equal(to_uint8((levels / 255).astype(dtype)), levels)
    assert to_uint8(np.array([-0.2, 1.7])).tolist() == [0, 255]
    assert to_uint8(np.array([257.0 * 7, 65535.0]), peak=65535.0).tolist() == [7, 255]


def test_imresize_rounds_as_to_uint8_does() -> None:
    """A one-pass uint8 resize is the float resize rounded by the project's to_uint8."""
    from runtime.images import to_uint8

    image = data.astronaut()[:60, :80]
    for shape in ((60, 37), (25, 80)):  # one axis each, so one rounding
        assert np.array_equal(imresize(image, output_shape=shape),
                              to_uint8(imresize(image.astype(np.float64), output_shape=shape), peak=255.0))


@pytest.fixture(scope="module")
def butterfly(shared_data) -> np.ndarray:
    """Set5's smallest image (256x256), read the way the protocol reads folders."""
    from runtime.quality import read_hr_folder

    images = dict(read_hr_folder(shared_data / "set5"))
    return images["butterfly.png"]


def test_protocol_lr_and_bicubic_on_a_real_image(butterfly) -> None:
    from runtime.quality import bicubic_sr, modcrop, protocol_image

    crop = butterfly[:251, :247]
    assert [modcrop(crop, s).shape[:2] for s in (2, 3, 4)] == [(250, 246), (249, 246), (248, 244)]
    image = protocol_image("butterfly", crop, 3)
    assert image.hr.shape == (249, 246, 3) and image.lr.shape == (83, 82, 3)
    assert image.lr.dtype == np.uint8 and bicubic_sr(image.lr, 3).shape == image.hr.shape


def test_protocol_score_matches_skimage_and_the_published_bicubic(butterfly) -> None:
    """SRCNN (Dong et al., TPAMI 2016), Table 2: bicubic x3 on Set5's butterfly is 24.04 dB (Y)."""
    from runtime.quality import bicubic_sr, protocol_image, score

    image = protocol_image("butterfly.png", butterfly, 3)
    sr = bicubic_sr(image.lr, 3)
    scores = score(sr, image.hr, 3)
    sr_y, hr_y = (color.rgb2ycbcr(a)[3:-3, 3:-3, 0] for a in (sr, image.hr))
    assert scores.psnr_y == pytest.approx(peak_signal_noise_ratio(hr_y, sr_y, data_range=255), abs=1e-9)
    assert scores.ssim_y == pytest.approx(_skimage_ssim(hr_y, sr_y), abs=1e-9)
    assert scores.psnr_y == pytest.approx(24.04, abs=0.02)


def test_protocol_refuses_what_it_cannot_score(tmp_path, butterfly) -> None:
    from runtime.quality import protocol_image, read_hr_folder, score

    with pytest.raises(UserError, match="nowhere: not a folder"):
        read_hr_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        read_hr_folder(tmp_path / "empty")
    with pytest.raises(UserError, match=r"dot.png: image of shape \(1, 1, 3\) is smaller than the scale 2"):
        protocol_image("dot.png", butterfly[:1, :1], 2)
    tiny = protocol_image("tiny.png", butterfly[:16, :16], 4)  # 8x8 after the border: below SSIM's window
    with pytest.raises(UserError, match="tiny.png at x4: SSIM needs"):
        score(tiny.hr, tiny.hr, 4, "tiny.png")


def test_read_hr_folder_rounds_sixteen_bit_gray_and_drops_alpha(tmp_path, butterfly) -> None:
    from runtime.quality import read_hr_folder

    levels = np.arange(0, 256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(levels * 257).save(tmp_path / "deep.png")  # 16-bit grayscale: k * 257 is k in 8 bits
    rgba = np.dstack([butterfly[:20, :20], np.full((20, 20), 9, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    images = dict(read_hr_folder(tmp_path))
    assert np.array_equal(images["deep.png"], np.repeat(levels.astype(np.uint8)[..., None], 3, axis=2))
    assert np.array_equal(images["alpha.png"], butterfly[:20, :20])


def test_the_authors_protocol_is_their_metric_functions_re_derived(real_pairs) -> None:
    """The authors' eval.py: calculate_psnr/ssim(crop_border=0, test_y_channel=True) of SwinIR, whose Y is
    bgr2ycbcr of an RGB array (R and B weights swapped), SSIM with an 11x11 Gaussian (sigma 1.5) over the valid
    region. Re-derived independently: scikit-image's rgb2ycbcr on the channel-reversed image, and skimage's SSIM."""
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from runtime.quality import PROTOCOLS, score

    authors = PROTOCOLS["authors"]
    for sr, hr in real_pairs:
        got = score(sr, hr, 3, protocol=authors)
        y_sr, y_hr = (rgb2ycbcr(image[..., ::-1])[..., 0] for image in (sr, hr))
        assert abs(got.psnr_y - peak_signal_noise_ratio(y_hr, y_sr, data_range=255)) < 1e-4
        assert abs(got.ssim_y - structural_similarity(y_hr, y_sr, gaussian_weights=True, sigma=1.5,
                                                      use_sample_covariance=False, data_range=255)) < 1e-6
        # Not the standard figure: border 0 and the swapped weights both move it.
        assert abs(got.psnr_y - score(sr, hr, 3).psnr_y) > 1e-3


def test_the_authors_protocol_crops_hr_to_a_multiple_of_twelve(butterfly) -> None:
    from runtime.quality import PROTOCOLS, STANDARD

    crop = butterfly[:251, :247]
    assert [PROTOCOLS["authors"].hr(crop, s).shape[:2] for s in (2, 3, 4)] == [(240, 240)] * 3
    assert [STANDARD.hr(crop, s).shape[:2] for s in (2, 3, 4)] == [(250, 246), (249, 246), (248, 244)]
    assert (PROTOCOLS["authors"].border_for(4), STANDARD.border_for(4)) == (0, 4)
