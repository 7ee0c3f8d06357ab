"""Registries of the data layer: dataset readers, group sources and corruptions."""
from sharpdro.registry import Registry

READERS = Registry("dataset")
CORRUPTIONS = Registry("corruption")
GROUP_SOURCES = Registry("group source")  # data.groups: Source -> Arrays
