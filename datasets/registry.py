"""Registries of the data layer: dataset readers, group sources and corruptions."""
import sys

from sharpdro.registry import Registry, import_all

READERS = Registry("dataset")
CORRUPTIONS = Registry("corruption")
GROUP_SOURCES = Registry("group source")  # data.groups: Source -> Arrays

# Modules that are not imported to register entries: this one, build (which calls
# register_all) and the command-line entry points (prepare configures the process when
# imported, which must happen before MindSpore loads, not here).
NOT_READERS = ("registry", "build", "prepare", "benchmark", "write_example")


def register_all():
    """Import every module of the package so that each registers its readers (and
    corruptions): a new reader is a new file. Called where the registries are first needed
    (build), not on import of the package: a decoding worker imports only what it uses."""
    import_all((__package__, sys.modules[__package__].__path__), skip=NOT_READERS)
