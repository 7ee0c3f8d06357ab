"""SharpDRO: worst-case sharpness minimisation for photon-limited corruptions (MindSpore).

Importing the package applies the process settings of :mod:`sharpdro.runtime` before
MindSpore loads.
"""
from . import runtime  # noqa: F401  (must run before mindspore is imported)

__version__ = "0.1.0"
