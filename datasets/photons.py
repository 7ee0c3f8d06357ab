"""Capture simulated at a given photon budget (for ``eval.py --photon-sweep``).

The physics, in one paragraph: a pixel's stored value v in [0, 1] is first taken back to
linear light, l = v ** 2.2 (the usual display gamma). A sensor pixel that receives
``photons`` photo-electrons at full scale (l = 1) collects a Poisson number of them with
mean l * photons: shot noise, whose relative size 1 / sqrt(l * photons) grows as light
falls. The readout adds Gaussian read noise of ``read_noise`` electrons (std). The count is
scaled back by 1 / photons, clipped to [0, 1], gamma-encoded again (l ** (1 / 2.2)) and
stored as uint8. At a very high photon count the image is unchanged up to rounding; at a
few photons per pixel it is mostly noise.
"""
import math

import numpy as np

GAMMA = 2.2


def photon_ladder(high=1000.0, low=1.0, per_decade=3):
    """Log-spaced photon counts from ``high`` down to ``low`` (both included)."""
    if not (math.isfinite(high) and math.isfinite(low) and high > low > 0):
        raise ValueError(f"the photon ladder needs high > low > 0, got {high}, {low}")
    steps = int(round(math.log10(high / low) * per_decade))
    return [float(v) for v in np.geomspace(high, low, steps + 1)]


def capture(images, photons, read_noise=0.0, rng=None):
    """uint8 N x H x W x C images as captured with ``photons`` photo-electrons at full scale
    and Gaussian read noise of ``read_noise`` electrons (module docstring)."""
    if not (math.isfinite(photons) and photons > 0):
        raise ValueError(f"photons must be a finite number > 0, got {photons}")
    if not (math.isfinite(read_noise) and read_noise >= 0):
        raise ValueError(f"read noise must be a finite number >= 0, got {read_noise}")
    rng = np.random.default_rng(rng)
    linear = (np.asarray(images, np.float64) / 255.0) ** GAMMA
    electrons = rng.poisson(linear * photons).astype(np.float64)
    if read_noise:
        electrons += rng.normal(0.0, read_noise, electrons.shape)
    linear = np.clip(electrons / photons, 0.0, 1.0)
    return np.clip(np.round(linear ** (1.0 / GAMMA) * 255.0), 0, 255).astype(np.uint8)
