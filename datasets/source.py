"""What a reader returns: one typed data source (SPEC section 2b, DESIGN "Where groups come from").

A reader knows files; it does not split by severity, corrupt or carve validation sets. It
returns a :class:`Source`: the training pool, the test split and, where the data has them,
a validation split, class names, groups with names and the standard mean/std.
``datasets/build.py`` turns a source into the training set and the evaluation sets by the
config's group source (``data.groups``).
"""
import dataclasses
from typing import List, Optional

import numpy as np


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
        return Split(self.images[idx], self.labels[idx],
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

    def splits(self):
        """{name: Split} of the splits present."""
        return {name: split for name, split in (("train", self.train), ("val", self.val),
                                                ("test", self.test)) if split is not None}


def numbered(names_or_count):
    """Class names for a dataset that has none: '0', '1', ..."""
    return [str(i) for i in range(names_or_count)]


def mean_std(images, chunk=4096):
    """Per-channel mean and std of uint8 N x H x W x C images on [0, 1], in chunks (the images
    may be memory-mapped: nothing as large as the array is allocated)."""
    channels = images.shape[-1]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    count = 0
    for start in range(0, len(images), chunk):
        x = np.asarray(images[start:start + chunk], np.float64).reshape(-1, channels) / 255.0
        total += x.sum(0)
        squares += (x * x).sum(0)
        count += len(x)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 1e-12))
    return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)
