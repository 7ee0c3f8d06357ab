"""Every corruption against the published implementation: Hendrycks' corruption scripts as
packaged in ``imagecorruptions`` 1.1.2 (ImageNet-C constants, so ours run with
``table="imagenet_c"``), on the same colour images at 32 and 64 px.

- Deterministic corruptions: within 1 grey level mean absolute difference.
- Random ones: the same mean change from the clean image, within 10 % per severity.

Where we deliberately differ, the test states the difference it expects:

- elastic_transform: ours is Hendrycks' original (a random affine warp, then an elastic
  field, with the constants of CIFAR-10-C / ImageNet-C), the one that made the official
  corrupted sets. imagecorruptions replaced it with an elastic field alone and other
  constants. Our mean change is 1.3-1.7x theirs at severities 1-2 (the affine part) and
  0.6-0.95x at 3-5.
- pixelate upsamples with BOX, as Hendrycks' scripts; imagecorruptions with NEAREST. At
  these sizes the two give the same pixels, so it is held to the deterministic bound.

The package needs scikit-image's old ``multichannel`` keyword; the test maps it to
``channel_axis``. With SHARPDRO_REQUIRE_DATA=1 (CI) a missing package fails instead of
skipping.
"""
import os

import numpy as np
import pytest

from datasets.corruptions import CONSTANTS, corrupt
from helpers import textured

if os.environ.get("SHARPDRO_REQUIRE_DATA") == "1":
    import imagecorruptions  # noqa: F401  (CI: must be installed)
ic = pytest.importorskip("imagecorruptions")

DETERMINISTIC = ["defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                 "jpeg_compression"]
RANDOM = ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur",
          "motion_blur", "snow", "frost", "fog"]
# ours / published mean change per severity, and the relative band around it
EXPECTED_RATIO = {"elastic_transform": ((1.5, 1.45, 0.7, 0.77, 0.9), 0.2)}
IMAGES = 40
# a random photograph crop or fractal per image: the mean change needs more images to settle
MORE_IMAGES = {"frost": 240, "fog": 240}


@pytest.fixture(scope="module", autouse=True)
def old_skimage_keyword():
    import imagecorruptions.corruptions as published
    import skimage.filters

    def gaussian(image, sigma=1, multichannel=None, **kwargs):
        if multichannel is not None:
            kwargs["channel_axis"] = -1 if multichannel else None
        return skimage.filters.gaussian(image, sigma=sigma, **kwargs)

    original = published.gaussian
    published.gaussian = gaussian
    yield
    published.gaussian = original


def both(name, size, severity, rounding="round"):
    images = textured(MORE_IMAGES.get(name, IMAGES), size, 3, seed=size)
    np.random.seed(severity)
    theirs = np.stack([ic.corrupt(img, severity=severity, corruption_name=name) for img in images])
    ours = corrupt(images, name, severity, np.random.default_rng(severity), "imagenet_c", rounding)
    return images.astype(float), ours.astype(float), theirs.astype(float)


def test_the_comparison_covers_every_corruption():
    assert sorted(DETERMINISTIC + RANDOM + list(EXPECTED_RATIO)) == sorted(CONSTANTS)
    # the 15 of the benchmark, and speckle_noise from its validation set
    assert sorted(CONSTANTS) == sorted(ic.get_corruption_names("common") + ["speckle_noise"])


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_corruptions_match_within_one_grey_level(name, size):
    for severity in range(1, 6):
        for rounding in ("round", "truncate"):
            _, ours, theirs = both(name, size, severity, rounding)
            assert np.abs(ours - theirs).mean() <= 1.0, (severity, rounding)
        # the published code truncates: with truncation too, within a fifth of a level
        # (pixelate and jpeg_compression give identical pixels)
        assert np.abs(ours - theirs).mean() <= 0.25, severity


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", RANDOM)
def test_random_corruptions_change_the_image_as_much(name, size):
    for severity in range(1, 6):
        clean, ours, theirs = both(name, size, severity)
        mine, published = np.abs(ours - clean).mean(), np.abs(theirs - clean).mean()
        assert mine == pytest.approx(published, rel=0.10), (severity, mine, published)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", sorted(EXPECTED_RATIO))
def test_deliberate_differences_are_the_documented_ones(name, size):
    ratios, band = EXPECTED_RATIO[name]
    for severity, expected in zip(range(1, 6), ratios):
        clean, ours, theirs = both(name, size, severity)
        ratio = np.abs(ours - clean).mean() / np.abs(theirs - clean).mean()
        assert ratio == pytest.approx(expected, rel=band), (severity, ratio)


@pytest.mark.parametrize("size,radius,sigma", [(32, 10, 3), (32, 20, 15), (64, 15, 8)])
def test_the_streak_equals_the_published_motion_blur(size, radius, sigma):
    """Batched over images and angles, including taps dropped at the image side."""
    from imagecorruptions.corruptions import _motion_blur

    from datasets.corruptions import streak

    images = textured(12, size, 3, seed=1).astype(np.float32)
    angles = np.random.default_rng(0).uniform(-135, 45, len(images))
    ours = streak(images, radius, sigma, angles, chunk=5)
    for img, angle, got in zip(images, angles, ours):
        np.testing.assert_allclose(got, _motion_blur(img, radius, sigma, angle), atol=1e-3)
