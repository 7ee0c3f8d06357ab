"""The data layer: readers, corruptions, the photon-limited split and pipelines.

Knows nothing about training; imports only ``sharpdro.registry``/``groups``/``atomic``/
``field``/``config`` (no MindSpore-dependent parts of ``sharpdro``). The names below are
imported on first use, so that a worker process that needs one module (the image decoder)
does not load them all; the registries' module is imported now, so that importing the
package adds the readers' options to the config schema (datasets/registry.py).
"""
import importlib

from . import registry  # noqa: F401

_EXPORTS = {"DataBundle": "build", "build_data": "build", "dataset_info": "build",
            "prepare_arrays": "build",
            # the registries, with every entry registered (build imports every module)
            "CORRUPTIONS": "build", "READERS": "build"}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'datasets' has no attribute {name!r}")
