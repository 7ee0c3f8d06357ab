"""Registries of the data layer: dataset readers, group sources and corruptions.

A reader declares its config options where it registers (``options={key: Field}``); the
config's ``data`` section takes them from here (``add_option_source`` below), so a reader
with a new option is its one file. Options several readers take are these shared Fields.
"""
import sys

from sharpdro import config
from sharpdro.field import Field
from sharpdro.registry import Registry, import_all

READERS = Registry("dataset")
CORRUPTIONS = Registry("corruption")
GROUP_SOURCES = Registry("group source")  # data.groups: Source -> Arrays

# Modules that are not imported to register entries: this one, build (which calls
# register_all) and the command-line entry points (prepare configures the process when
# imported, which must happen before MindSpore loads, not here).
NOT_READERS = ("registry", "build", "prepare", "benchmark", "write_example")


# the options own images and synthetic data share (the built-in datasets' shapes come from
# their files)
IMAGE_SIZE = Field(None, int, "synthetic, image_folder, csv: image side in pixels (synthetic: "
                   "null = 32; own images: null = their most common shorter side, at most "
                   "224; shorter side resized, centre cropped)", low=4)
CHANNELS = Field(None, int, "synthetic, image_folder, csv: channels (synthetic: null = 3; own "
                 "images: 1 or 3, null = what most images are)", low=1)
SKIP_UNREADABLE = Field(False, bool, "image_folder/csv: skip unreadable or truncated image "
                        "files (counted) instead of stopping")


def register_all():
    """Import every module of the package so that each registers its readers (and
    corruptions): a new reader is a new file. Called where the registries are first needed
    (build), not on import of the package: a decoding worker imports only what it uses."""
    import_all((__package__, sys.modules[__package__].__path__), skip=NOT_READERS)


def reader_options():
    """{key: Field} of every reader's options, for the config's data section."""
    register_all()
    return READERS.fields()


config.add_option_source("data", reader_options)
