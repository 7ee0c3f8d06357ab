"""Corruptions of uint8 batches N x H x W x C, one registry (SPEC section 2).

``corrupt(images, name, severity, rng)``. The noise family works on the whole batch at
once. Constants depend on image size: the CIFAR-10-C values up to 32 px (28 px uses them
too), the Tiny-ImageNet-C values above.
"""
import numpy as np

from .registry import CORRUPTIONS

CONSTANTS = {
    "gaussian_noise": {32: (0.04, 0.06, 0.08, 0.09, 0.10), 64: (0.04, 0.08, 0.12, 0.15, 0.18)},
    "shot_noise": {32: (500, 250, 100, 75, 50), 64: (250, 100, 50, 30, 15)},
    "impulse_noise": {32: (0.01, 0.02, 0.03, 0.05, 0.07), 64: (0.01, 0.02, 0.05, 0.08, 0.14)},
}


def constant(name, severity, image_size):
    table = CONSTANTS[name]
    return table[32 if image_size <= 32 else 64][severity - 1]


def _to_uint8(x):
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


@CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(x, c, rng):
    return _to_uint8(x + rng.normal(0.0, c, x.shape))


@CORRUPTIONS.register("shot_noise")
def shot_noise(x, c, rng):
    """Photon noise: x -> Poisson(x * c) / c."""
    return _to_uint8(rng.poisson(x * c) / c)


@CORRUPTIONS.register("impulse_noise")
def impulse_noise(x, c, rng):
    """Salt and pepper on a fraction ``c`` of the values."""
    hit = rng.random(x.shape) < c
    salt = rng.random(x.shape) < 0.5
    return _to_uint8(np.where(hit, salt.astype(np.float64), x))


def corrupt(images, name, severity, rng):
    """Corrupt a uint8 batch N x H x W x C at ``severity`` 1..5 with generator ``rng``."""
    CORRUPTIONS.check(name)
    if not 1 <= int(severity) <= 5:
        raise ValueError(f"severity must be in 1..5, got {severity}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images must be a uint8 array N x H x W x C, got {images.dtype} "
                         f"with shape {images.shape}")
    c = constant(name, int(severity), images.shape[1])
    return CORRUPTIONS.get(name)(images.astype(np.float64) / 255.0, c, rng)
