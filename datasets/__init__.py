"""The data layer: readers, corruptions, the photon-limited split and pipelines.

Knows nothing about training; imports only ``sharpdro.config``/``registry``/``atomic``
(no MindSpore-dependent parts of ``sharpdro``).
"""
from .build import DataBundle, build_data, dataset_info, prepare_arrays
from .registry import CORRUPTIONS, READERS

__all__ = ["DataBundle", "build_data", "dataset_info", "prepare_arrays", "CORRUPTIONS", "READERS"]
