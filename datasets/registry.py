"""Registries of the data layer: dataset readers and corruptions."""
from sharpdro.registry import Registry

READERS = Registry("dataset")
CORRUPTIONS = Registry("corruption")
