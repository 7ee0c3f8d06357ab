"""What a reader returns: one typed data source (SPEC section 2b, DESIGN "Where groups come from").

A reader knows files; it does not split by severity, corrupt or carve validation sets. It
returns a :class:`Source`: the training pool, the test split and, where the data has them,
a validation split, class names, groups with names and the standard mean/std.
``datasets/build.py`` turns a source into the training set and the evaluation sets by the
config's group source (``data.groups``).
"""
import dataclasses
import mmap
from typing import List, Optional

import numpy as np


class Rows:
    """Rows ``index`` of an array, read only when indexed: a subset of a memory-mapped cache
    (a carved validation set, a group) stays on disk instead of being copied up front.
    Supports what the pipelines use: len, shape, dtype, and indexing by an int, a slice or
    an index array (which returns a NumPy array)."""

    def __init__(self, base, index):
        self.base, self.index = base, np.asarray(index, np.int64)

    def __len__(self):
        return len(self.index)

    shape = property(lambda self: (len(self.index),) + tuple(self.base.shape[1:]))
    dtype = property(lambda self: self.base.dtype)
    ndim = property(lambda self: self.base.ndim)

    def __getitem__(self, key):
        return np.asarray(self.base[self.index[key]])

    def __array__(self, dtype=None, copy=None):
        out = np.asarray(self.base[self.index])
        return out if dtype is None else out.astype(dtype)


def take(images, idx):
    """``images[idx]`` (an index array or a slice): lazily (Rows) for a memory-mapped array,
    else as NumPy indexes (a copy, or a view for a slice)."""
    if not isinstance(images, (Rows, np.memmap)):
        return images[idx]
    idx = np.arange(len(images))[idx] if isinstance(idx, slice) else np.asarray(idx, np.int64)
    if isinstance(images, Rows):
        return Rows(images.base, images.index[idx])
    if isinstance(images, np.memmap):
        return Rows(images, idx)
    return images[idx]


def release(images):
    """Drop the pages of a memory-mapped array (or of the array under Rows) from this
    process: the file stays in the page cache, but a pass over a large cache does not stay
    in the resident set. A no-op for arrays in memory."""
    base = images.base if isinstance(images, Rows) else images
    handle = getattr(base, "_mmap", None)
    if handle is not None and hasattr(handle, "madvise"):
        try:
            handle.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass


@dataclasses.dataclass
class Split:
    """Images of one split: uint8 N x H x W x C, int64 labels, optional int64 groups
    (indices into ``Source.group_names``) and optional file names (relative, one per image)."""
    images: np.ndarray
    labels: np.ndarray
    groups: Optional[np.ndarray] = None
    files: Optional[List[str]] = None

    def __post_init__(self):
        self.labels = np.asarray(self.labels, np.int64)
        if self.groups is not None:
            self.groups = np.asarray(self.groups, np.int64)
            if len(self.groups) != len(self.labels):
                raise ValueError(f"{len(self.groups)} groups for {len(self.labels)} images")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images for {len(self.labels)} labels")

    def __len__(self):
        return len(self.labels)

    def subset(self, idx):
        """The images at ``idx`` (an index array), with their labels, groups and files."""
        idx = np.asarray(idx, np.int64)
        return Split(take(self.images, idx), self.labels[idx],
                     None if self.groups is None else self.groups[idx],
                     None if self.files is None else [self.files[i] for i in idx])


@dataclasses.dataclass
class Source:
    """One dataset as its reader returns it."""
    train: Split
    test: Optional[Split]                        # None: carved from train
    class_names: List[str]
    val: Optional[Split] = None
    group_names: Optional[List[str]] = None      # the data's own groups (data.groups: given)
    mean: Optional[tuple] = None                 # None: computed from the training images
    std: Optional[tuple] = None
    default_num_per_class: Optional[int] = None  # the photon-limited protocol's default
    fingerprint: Optional[str] = None            # identifies the files (own data), for caches

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def has_groups(self):
        return self.group_names is not None and self.train.groups is not None


def numbered(count):
    """Class names for a dataset that has none: '0', '1', ..."""
    return [str(i) for i in range(count)]


def mean_std(images, chunk=256):
    """Per-channel mean and std of uint8 N x H x W x C images on [0, 1], in chunks of
    ``chunk`` images (the images may be memory-mapped: the float64 temporaries stay small)."""
    channels = images.shape[-1]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for start in range(0, len(images), chunk):
        x = np.asarray(images[start:start + chunk], np.float64).reshape(-1, channels) / 255.0
        total += x.sum(0)
        squares += (x * x).sum(0)
        count += len(x)
        release(images)  # a memory-mapped pass keeps only one chunk resident
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 1e-12))
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)
