"""From a config to the training set and one evaluation set per severity (SPEC section 2).

``prepare_arrays(cfg)`` does the work that is cached (read, split, corrupt);
``build_data(cfg)`` wraps its arrays in MindSpore pipelines.
"""
import dataclasses
import logging
import os

import numpy as np

from sharpdro.config import num_groups
from sharpdro.groups import check_group_indices

from . import readers, synthetic  # noqa: F401  (registration)
from .cache import ArrayCache
from .corruptions import VERSION as CORRUPTIONS_VERSION
from .corruptions import check_images, corrupt, jpeg_roundtrip
from .registry import CORRUPTIONS, READERS
from .split import poisson_shares, split_by_severity

log = logging.getLogger(__name__)
CHUNK = 2000  # images corrupted per call: bounds memory, drives the progress bar


@dataclasses.dataclass
class Arrays:
    train: tuple          # (images, labels, groups)
    val: dict             # severity -> (images, labels)
    test: dict            # severity -> (images, labels)
    num_classes: int
    mean: tuple
    std: tuple
    train_counts: list


@dataclasses.dataclass
class DataBundle:
    arrays: Arrays
    batch_size: int
    seed: int
    random_crop: bool
    val: dict                          # severity -> EvalSet
    test: dict                         # severity -> EvalSet
    rank: int = 0                      # data parallel: this rank's slice of each batch
    world_size: int = 1
    sampler: str = "permutation"       # or "replacement" (the authors' sampler)

    # derived from the arrays, so they cannot disagree with them
    num_classes = property(lambda self: self.arrays.num_classes)
    train_counts = property(lambda self: self.arrays.train_counts)  # per severity
    in_channels = property(lambda self: self.arrays.train[0].shape[-1])
    image_size = property(lambda self: self.arrays.train[0].shape[1])
    steps_per_epoch = property(lambda self: len(self.arrays.train[1]) // self.batch_size)

    def train_epoch(self, epoch):
        """The mindspore dataset of training epoch ``epoch`` (0-based): same epoch, same
        batches (data parallel: this rank's slices of them)."""
        from .pipeline import train_dataset

        images, labels, groups = self.arrays.train
        return train_dataset(images, labels, groups, self.batch_size, self.arrays.mean,
                             self.arrays.std, self.seed, epoch, self.random_crop,
                             self.rank, self.world_size, self.sampler)


def check_data_config(cfg):
    """Names and ranges, before any file is read."""
    d = cfg.data
    READERS.check(d.dataset)
    CORRUPTIONS.check(d.corruption)
    return poisson_shares(d.num_severity, d.poisson_lambda)


def corrupt_in_chunks(images, name, severity, seed, table, desc=None, rounding="round",
                      resave_jpeg=0):
    """Corrupt with one generator consumed chunk by chunk: same pixels on any machine.
    ``resave_jpeg`` > 0: then re-save each image as JPEG at that quality (the authors'
    ImageNet-30 files)."""
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    starts = range(0, len(images), CHUNK)
    show = desc is not None and len(images) > CHUNK
    # disable=None: tqdm stays quiet when the output is not a terminal (logs, CI)
    for start in tqdm(starts, desc=desc, disable=None if show else True, leave=False):
        chunk = corrupt(images[start:start + CHUNK], name, severity, rng, table, rounding)
        if resave_jpeg:
            chunk = np.stack([jpeg_roundtrip(img, resave_jpeg) for img in chunk])
        out[start:start + CHUNK] = chunk
    return out


# the names we write, and the authors' (their published ImageNet-30 split)
LIST_NAMES = {"ours": ("train_severity_{s}.txt", "val.txt"),
              "authors": ("imagenet30_distribution_{s}.txt", "imagenet30_val.txt")}


def list_names(folder):
    """The naming scheme of the file lists in ``folder``; an error names both if neither."""
    for train, val in LIST_NAMES.values():
        if os.path.isfile(os.path.join(folder, train.format(s=0))) and os.path.isfile(
                os.path.join(folder, val)):
            return train, val
    wanted = " or ".join(f"{t.format(s='<s>')} + {v}" for t, v in LIST_NAMES.values())
    raise ValueError(f"data.file_lists {folder}: no file lists found (expected {wanted})")


def _split_from_lists(folder, files, num_severity):
    index = {f: i for i, f in enumerate(files)}
    train, val = list_names(folder)

    def indices(name):
        path = os.path.join(folder, name)
        names, _ = readers.read_file_list(path)
        missing = [n for n in names if n not in index]
        if missing:
            raise ValueError(f"{path}: {len(missing)} file(s) not in the dataset, e.g. {missing[0]}")
        return np.asarray([index[n] for n in names], np.int64)

    return [indices(train.format(s=s)) for s in range(num_severity + 1)], indices(val)


def read_dataset(cfg):
    """The config's dataset as its reader returns it (no split, no corruption)."""
    d = cfg.data
    READERS.check(d.dataset)
    return READERS.get(d.dataset)(data_dir=d.data_dir, seed=cfg.seed,
                                  **READERS.select_options(d.dataset, d))


def prepare_arrays(cfg):
    d = cfg.data
    shares = check_data_config(cfg)
    reader_options = READERS.select_options(d.dataset, d)
    raw = read_dataset(cfg)
    train_x, train_y = raw["train"]
    test_x, test_y = raw["test"]
    check_images(train_x)
    num_per_class = d.num_per_class or raw["default_num_per_class"]
    if "train_files" in raw and d.file_lists:
        per_severity, val_idx = _split_from_lists(d.file_lists, raw["train_files"], d.num_severity)
    else:
        per_severity, val_idx = split_by_severity(train_y, num_per_class, shares,
                                                  np.random.default_rng([cfg.seed, 1]),
                                                  d.val_per_class)
    if "train_files" in raw and not d.file_lists:  # the authors' style: share a split
        lists = os.path.join(d.cache_dir, f"{d.dataset}_filelists_seed{cfg.seed}_n{num_per_class}")
        readers.write_file_lists(lists, raw["train_files"], train_y, per_severity, val_idx)
        log.info("file lists of this split: %s", lists)
    cache = ArrayCache(d.cache_dir)
    base = {"dataset": d.dataset, "corruption": d.corruption, "table": d.corruption_table,
            "seed": cfg.seed, "num_per_class": num_per_class, "lambda": d.poisson_lambda,
            "num_severity": d.num_severity, "shape": list(train_x.shape[1:]),
            "options": reader_options, "val_per_class": d.val_per_class,
            "file_lists": d.file_lists, "corruptions_version": CORRUPTIONS_VERSION,
            "rounding": d.uint8_rounding, "resave_jpeg": d.resave_jpeg}

    def corrupted(split, severity, images):
        if severity == 0:
            return images
        key = dict(base, split=split, severity=severity, count=len(images))
        seed = [cfg.seed, {"train": 2, "val": 3, "test": 4}[split], severity]
        return cache.get(key, lambda: corrupt_in_chunks(
            images, d.corruption, severity, seed, d.corruption_table,
            desc=f"{d.corruption} {split} severity {severity}", rounding=d.uint8_rounding,
            resave_jpeg=d.resave_jpeg))

    images, labels, groups = [], [], []
    for s, idx in enumerate(per_severity):
        images.append(corrupted("train", s, train_x[idx]))
        labels.append(train_y[idx])
        groups.append(np.full(len(idx), s, np.int64))
    images, labels, groups = map(np.concatenate, (images, labels, groups))
    check_group_indices(groups, num_groups(cfg))
    counts = [len(idx) for idx in per_severity]
    log.info("training images per severity: %s (total %d)", counts, sum(counts))
    val_x, val_y = train_x[val_idx], train_y[val_idx]
    levels = range(d.num_severity + 1)
    return Arrays(train=(images, labels, groups),
                  val={s: (corrupted("val", s, val_x), val_y) for s in levels},
                  test={s: (corrupted("test", s, test_x), test_y) for s in levels},
                  num_classes=raw["num_classes"], mean=raw["mean"], std=raw["std"],
                  train_counts=counts)


def dataset_info(cfg):
    """(num_classes, channels, image_size, mean, std) of the config's dataset: what a model
    trained on it takes, for evaluating it on other files. Reads the dataset (no split, no
    corruption)."""
    raw = read_dataset(cfg)
    images = raw["train"][0]
    return raw["num_classes"], images.shape[-1], images.shape[1], raw["mean"], raw["std"]


def build_data(cfg, rank=0, world_size=1):
    """``world_size`` > 1: ``train_epoch`` gives rank ``rank`` its slice of every global
    batch of ``train.batch_size``."""
    from .pipeline import EvalSet

    if cfg.train.batch_size % world_size:
        raise ValueError(f"train.batch_size {cfg.train.batch_size} (the global batch) is not "
                         f"divisible by the {world_size} ranks; use a multiple of {world_size}")
    arrays = prepare_arrays(cfg)
    labels = arrays.train[1]
    if len(labels) < cfg.train.batch_size:
        raise ValueError(f"{len(labels)} training images is fewer than one batch "
                         f"({cfg.train.batch_size}); raise num_per_class or lower batch_size")

    def eval_sets(split):
        return {s: EvalSet(x, y, arrays.mean, arrays.std, cfg.train.eval_batch_size)
                for s, (x, y) in split.items()}

    return DataBundle(arrays=arrays, batch_size=cfg.train.batch_size, seed=cfg.seed,
                      random_crop=cfg.data.random_crop,
                      val=eval_sets(arrays.val), test=eval_sets(arrays.test),
                      rank=rank, world_size=world_size, sampler=cfg.data.sampler)
