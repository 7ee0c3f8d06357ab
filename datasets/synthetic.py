"""Procedurally generated class-dependent images, any size and channel count.

Each class has a smooth random template; an image is its class template, shifted by a few
pixels, plus mild noise. Easy enough to learn in seconds, hard enough that corruption
hurts. Pools: 600 training and 100 test images per class.
"""
import numpy as np

from sharpdro.field import Field

from .registry import CHANNELS, IMAGE_SIZE, READERS
from .source import Source, Split, numbered

TRAIN_PER_CLASS, TEST_PER_CLASS = 600, 100
CONTRAST = 0.12


def _templates(num_classes, size, channels, rng):
    coarse = rng.random((num_classes, 7, 7, channels))
    reps = -(-size // 7)
    smooth = np.repeat(np.repeat(coarse, reps, axis=1), reps, axis=2)[:, :size, :size]
    # low contrast between classes, so that strong noise hurts
    return 0.5 + CONTRAST * (smooth - 0.5)


def _images(templates, per_class, rng):
    num_classes, size = templates.shape[0], templates.shape[1]
    labels = np.repeat(np.arange(num_classes), per_class)
    shifts = rng.integers(-3, 4, (len(labels), 2))
    out = np.empty((len(labels),) + templates.shape[1:], np.float64)
    for i, (label, (dy, dx)) in enumerate(zip(labels, shifts)):
        out[i] = np.roll(templates[label], (dy, dx), axis=(0, 1))
    out += rng.normal(0, 0.05, out.shape)
    images = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    return Split(images, labels)


@READERS.register("synthetic", options={
    "image_size": IMAGE_SIZE, "channels": CHANNELS,
    "num_classes": Field(None, int, "synthetic data only: classes (null = 10)", low=2)})
def read_synthetic(data_dir=None, image_size=None, channels=None, num_classes=None, seed=0):
    """-> Source (images N x H x W x C uint8). ``data_dir`` unused; None (the config's null)
    takes the default 32 px, 3 channels, 10 classes."""
    image_size, channels, num_classes = image_size or 32, channels or 3, num_classes or 10
    rng = np.random.default_rng([seed, 7])
    templates = _templates(num_classes, image_size, channels, rng)
    return Source(_images(templates, TRAIN_PER_CLASS, rng), _images(templates, TEST_PER_CLASS, rng),
                  numbered(num_classes), default_num_per_class=400,
                  # mid-grey, low-contrast images
                  mean=(0.5,) * channels, std=(0.06,) * channels)
