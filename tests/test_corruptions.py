"""The corruption registry: every corruption at every severity, and the noise statistics."""
import io

import numpy as np
import pytest
from PIL import Image

from datasets.corruptions import (CONSTANTS, NOISE, constant, corrupt, corrupt_reference,
                                  output_pmf)
from datasets import CORRUPTIONS
from helpers import textured

SPEC_NAMES = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
              "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
              "elastic_transform", "pixelate", "jpeg_compression"]
# The published constants of these three do not order the change by severity (see the
# docstring of datasets/corruptions.py); every other corruption must grow.
NOT_MONOTONE = {"glass_blur", "elastic_transform", "frost"}


def test_all_spec_corruptions_registered():
    assert set(SPEC_NAMES) <= set(CORRUPTIONS.names())


@pytest.mark.parametrize("size,channels", [(32, 3), (28, 1)])
@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_corruption_every_severity(name, size, channels):
    images = textured(12, size, channels)
    changes = []
    for severity in range(1, 6):
        out = corrupt(images, name, severity, np.random.default_rng(0))
        assert out.shape == images.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, corrupt(images, name, severity, np.random.default_rng(0)))
        changes.append(np.abs(out.astype(float) - images).mean())
    assert changes[0] > 0
    if name in NOT_MONOTONE:
        return  # shape, dtype, determinism and a non-zero change were checked above
    assert all(b > a for a, b in zip(changes, changes[1:])), changes


def test_constants_by_image_size():
    assert constant("gaussian_noise", 5, 32) == 0.10 and constant("gaussian_noise", 5, 28) == 0.10
    assert constant("gaussian_noise", 5, 64) == 0.18
    assert constant("jpeg_compression", 1, 32) == 80 and constant("jpeg_compression", 5, 64) == 25
    assert constant("gaussian_noise", 5, 32, table="imagenet_c") == 0.38
    for name, table in CONSTANTS.items():
        assert all(len(v) == 5 for v in table.values()), name


@pytest.mark.parametrize("severity", range(1, 6))
def test_gaussian_sigma_at_mid_grey(severity):
    grey = np.full((100, 32, 32, 3), 128, np.uint8)
    out = corrupt(grey, "gaussian_noise", severity, np.random.default_rng(0)) / 255.0
    assert out.std() == pytest.approx(constant("gaussian_noise", severity, 32), rel=0.05)


@pytest.mark.parametrize("value", [64, 128, 200])
def test_shot_noise_variance(value):
    x = np.full((100, 32, 32, 3), value, np.uint8)
    c = constant("shot_noise", 5, 32)
    out = corrupt(x, "shot_noise", 5, np.random.default_rng(0)) / 255.0
    assert out.var() == pytest.approx((value / 255.0) / c, rel=0.10)


def test_impulse_fraction():
    x = np.full((50, 32, 32, 3), 128, np.uint8)
    out = corrupt(x, "impulse_noise", 5, np.random.default_rng(0))
    assert (out != x).mean() == pytest.approx(constant("impulse_noise", 5, 32), rel=0.05)


@pytest.mark.parametrize("channels", [3, 1])
def test_jpeg_equals_pillow(channels):
    images = textured(4, 32, channels)
    out = corrupt(images, "jpeg_compression", 3, np.random.default_rng(0))
    for img, got in zip(images, out):
        buffer = io.BytesIO()
        Image.fromarray(img[..., 0] if channels == 1 else img).save(buffer, "JPEG", quality=58)
        want = np.asarray(Image.open(buffer)).reshape(img.shape)
        np.testing.assert_array_equal(got, want)


def test_noise_is_vectorised_and_seeded():
    images = textured(8, 32, 3)
    a = corrupt(images, "gaussian_noise", 3, np.random.default_rng(1))
    b = corrupt(images, "gaussian_noise", 3, np.random.default_rng(2))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", NOISE)
def test_noise_table_matches_the_float_definition(name):
    """The table sampler draws from the same output distribution as the float formula:
    per input level, the histograms of 20000 draws agree (two-sample chi-square)."""
    c = constant(name, 4, 32)
    pmf = output_pmf(name, c)
    np.testing.assert_allclose(pmf.sum(1), 1.0, atol=1e-9)
    for level in (0, 40, 128, 250):
        x = np.full((20000, 1, 1, 1), level, np.uint8)
        a = np.bincount(corrupt(x, name, 4, np.random.default_rng(0)).ravel(), minlength=256)
        b = np.bincount(corrupt_reference(x, name, c, np.random.default_rng(1)).ravel(),
                        minlength=256)
        both = (a + b) > 0
        chi2 = (((a - b) ** 2)[both] / (a + b)[both]).sum()
        dof = max(int(both.sum()) - 1, 1)
        assert chi2 < dof + 5 * np.sqrt(2 * dof), (level, chi2, dof)
        # and the empirical histogram matches the computed distribution
        expected = pmf[level] * len(x)
        assert np.abs(a - expected).max() < 5 * np.sqrt(expected.max()) + 5, level


@pytest.mark.parametrize("bad,message", [
    (dict(name="fogg"), r"unknown corruption 'fogg'.*did you mean 'fog'"),
    (dict(severity=0), "severity must be an integer in 1..5"),
    (dict(severity=2.5), "severity must be an integer in 1..5"),
    (dict(images=np.zeros((2, 8, 8, 3), np.float32)), "uint8"),
    (dict(images=np.zeros((8, 8, 3), np.uint8)), "N x H x W x C"),
])
def test_bad_input(bad, message):
    args = dict(images=np.zeros((2, 8, 8, 3), np.uint8), name="gaussian_noise", severity=1)
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        corrupt(args["images"], args["name"], args["severity"], np.random.default_rng(0))


@pytest.mark.parametrize("size,channels", [(32, 3), (28, 1), (64, 3)])
def test_batched_pixelate_equals_pillow(size, channels):
    """The batch matrices reproduce Pillow's BOX resampling, fixed-point rounding included."""
    images = np.random.default_rng(0).integers(0, 256, (6, size, size, channels), dtype=np.uint8)
    for severity in range(1, 6):
        c = constant("pixelate", severity, size)
        out = corrupt(images, "pixelate", severity, np.random.default_rng(0))
        small = (int(size * c), int(size * c))
        for img, got in zip(images, out):
            pil = Image.fromarray(img[..., 0] if channels == 1 else img)
            want = np.asarray(pil.resize(small, Image.BOX).resize((size, size), Image.BOX))
            np.testing.assert_array_equal(got, want.reshape(img.shape))


@pytest.mark.parametrize("name", NOISE)
def test_truncation_shifts_the_noise_down_by_half_a_level(name):
    """rounding="truncate" (the authors' uint8 conversion) samples floor(255 y) instead of
    rint(255 y): on a mid-grey image about half a grey level darker, never brighter
    (impulse noise only writes 0, 255 or the pixel itself: no change)."""
    x = np.full((200, 32, 32, 3), 128, np.uint8)
    rounded = corrupt(x, name, 3, np.random.default_rng(0)).astype(float)
    truncated = corrupt(x, name, 3, np.random.default_rng(0), rounding="truncate").astype(float)
    assert (truncated <= rounded).all()
    shift = 0.0 if name == "impulse_noise" else 0.5
    assert rounded.mean() - truncated.mean() == pytest.approx(shift, abs=0.1)
    with pytest.raises(ValueError, match="rounding must be one of"):
        corrupt(x[:1], name, 3, np.random.default_rng(0), rounding="floor")


def test_frost_without_the_published_photographs_says_how_to_get_them(monkeypatch):
    import importlib.util

    from datasets import corruptions

    monkeypatch.setattr(corruptions, "_FROST", {})
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="pip install --no-deps imagecorruptions==1.1.2"):
        corrupt(textured(2, 32, 3), "frost", 1, np.random.default_rng(0))


@pytest.mark.parametrize("channels", [1, 3])
def test_stacked_channels_equal_one_call_per_image(channels):
    """Images side by side along OpenCV's channel axis (several calls of up to 512
    channels) give what one call per image gives: a filter exactly, a resize to within
    float rounding of OpenCV's multi-channel path."""
    import cv2

    from datasets.corruptions import _clipped_zoom, _on_stacked_channels

    rng = np.random.default_rng(0)
    x = rng.random((600, 12, 10, channels)).astype(np.float32)  # > 512 channels: 2+ calls
    kernel = rng.random((5, 5)).astype(np.float32)
    per_image = np.stack([cv2.filter2D(img, -1, kernel).reshape(img.shape) for img in x])
    np.testing.assert_array_equal(_on_stacked_channels(lambda s: cv2.filter2D(s, -1, kernel), x),
                                  per_image)
    zoomed = _on_stacked_channels(lambda s: _clipped_zoom(s, 1.7), x)
    per_image = np.stack([_clipped_zoom(img, 1.7).reshape(img.shape) for img in x])
    np.testing.assert_allclose(zoomed, per_image, rtol=0, atol=1e-5)
    assert zoomed.shape == x.shape and zoomed.flags.c_contiguous
