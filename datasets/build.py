"""From a config to the training set and one evaluation set per group (SPEC sections 2, 2b).

A reader returns a Source; the group source ``data.groups`` turns it into Arrays:
``severity`` (the photon-limited protocol: Poisson split and corruption), ``given`` (the
data's own groups) or ``none`` (no group labels). ``prepare_arrays(cfg)`` does the work
that is cached (read, split, corrupt); ``build_data(cfg)`` wraps its arrays in MindSpore
pipelines.
"""
import dataclasses
import inspect
import logging
import math
import os
from typing import Optional

import numpy as np

from sharpdro.groups import check_group_indices

from . import readers
from .cache import ArrayCache
from .corruptions import check_images, corrupt, jpeg_roundtrip
from .registry import CORRUPTIONS, GROUP_SOURCES, READERS, register_all
from .source import Source, mean_std, take
from .split import poisson_shares, split_by_severity

register_all()  # every reader module of the package, a new file included
log = logging.getLogger(__name__)
CHUNK = 2000  # images corrupted per call: bounds memory, drives the progress bar


ALL = "all"  # the one group of data without group labels


@dataclasses.dataclass
class Arrays:
    """The training set and the evaluation sets that a group source made from a Source."""
    train: tuple          # (images, labels, groups): groups index group_names
    val: dict             # evaluation group name -> (images, labels)
    test: dict            # evaluation group name -> (images, labels)
    class_names: list
    group_names: list     # training groups: severities 0..S (ints), or the data's names
    group_kind: str       # "severity" or "group": what tables and plots call a group
    mean: tuple
    std: tuple
    train_counts: list    # training images per group
    train_files: Optional[list] = None  # the training images' files, where the data has them

    num_classes = property(lambda self: len(self.class_names))


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
    repeats: Optional[np.ndarray] = None  # JTT: how often each training image counts per epoch

    # derived from the arrays, so they cannot disagree with them
    num_classes = property(lambda self: self.arrays.num_classes)
    train_counts = property(lambda self: self.arrays.train_counts)  # per group
    group_names = property(lambda self: self.arrays.group_names)
    num_groups = property(lambda self: len(self.arrays.group_names))
    in_channels = property(lambda self: self.arrays.train[0].shape[-1])
    image_size = property(lambda self: self.arrays.train[0].shape[1])
    steps_per_epoch = property(lambda self: self.epoch_length // self.batch_size)

    @property
    def epoch_length(self):
        """Indices per training epoch: the training images, or the sum of their repeats."""
        return len(self.arrays.train[1]) if self.repeats is None else int(self.repeats.sum())

    def training_set(self, batch_size):
        """The training images in order, unaugmented, as an evaluation set (what a stage-1
        model is run on between the stages of jtt and eiil)."""
        from .pipeline import EvalSet

        images, labels, _ = self.arrays.train
        return EvalSet(images, labels, self.arrays.mean, self.arrays.std, batch_size)

    def with_training_groups(self, groups, names):
        """The same data, trained on other groups (EIIL's inferred ones): evaluation keeps
        the data's own groups."""
        groups = np.asarray(groups, np.int64)
        images, labels, _ = self.arrays.train
        arrays = dataclasses.replace(self.arrays, train=(images, labels, groups),
                                     group_names=list(names),
                                     train_counts=np.bincount(groups, minlength=len(names)).tolist())
        return dataclasses.replace(self, arrays=arrays)

    def info(self):
        """The model's input contract, saved with a run (data.json) so that eval.py and
        export.py never rebuild the data to learn it."""
        a = self.arrays
        return {"class_names": list(a.class_names), "channels": int(self.in_channels),
                "image_size": int(self.image_size), "mean": list(a.mean), "std": list(a.std),
                "group_kind": a.group_kind, "group_names": list(a.group_names),
                "train_counts": [int(c) for c in a.train_counts],
                "eval_groups": [str(n) for n in a.test]}

    def examples(self, per_group=8):
        """{group name: up to ``per_group`` training images of that group}, spread over the
        classes (for the run folder's plots/groups.png)."""
        images, labels, groups = self.arrays.train
        out = {}
        for g, name in enumerate(self.arrays.group_names):
            idx = np.flatnonzero(groups == g)
            # one per class in turn, so the grid shows the classes, not one class
            order = idx[np.argsort(labels[idx], kind="stable")]
            _, first = np.unique(labels[order], return_index=True)
            picks = list(order[first][:per_group])
            chosen = set(picks)
            picks += [i for i in idx if i not in chosen][:per_group - len(picks)]
            out[name] = np.asarray(images[np.sort(np.asarray(picks, np.int64))])
        return out

    def train_epoch(self, epoch):
        """The mindspore dataset of training epoch ``epoch`` (0-based): same epoch, same
        batches (data parallel: this rank's slices of them)."""
        from .pipeline import train_dataset

        images, labels, groups = self.arrays.train
        return train_dataset(images, labels, groups, self.batch_size, self.arrays.mean,
                             self.arrays.std, self.seed, epoch, self.random_crop,
                             self.rank, self.world_size, self.sampler, self.repeats)


def check_data_config(cfg):
    """Names and ranges, before any file is read."""
    d = cfg.data
    READERS.check(d.dataset)
    GROUP_SOURCES.check(d.groups)
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
    """The config's dataset as its reader returns it: a Source (no split, no corruption)."""
    d = cfg.data
    READERS.check(d.dataset)
    reader = READERS.get(d.dataset)
    options = READERS.select_options(d.dataset, d)
    if "cache_dir" in inspect.signature(reader).parameters:  # readers that decode files
        options["cache_dir"] = d.cache_dir
    source = reader(data_dir=d.data_dir, seed=cfg.seed, **options)
    if not isinstance(source, Source):
        raise TypeError(f"reader {d.dataset!r} returned {type(source).__name__}, not a Source")
    return source


def prepare_arrays(cfg):
    """The training set and the evaluation sets, by the config's group source."""
    d = cfg.data
    check_data_config(cfg)
    source = read_dataset(cfg)
    check_images(source.train.images)
    source = carve_missing_splits(source, d.groups, d.val_fraction, cfg.seed)
    arrays = GROUP_SOURCES.get(d.groups)(cfg, source)
    check_group_indices(arrays.train[2], len(arrays.group_names))
    if arrays.mean is None:  # the source has no standard values: the training images'
        arrays.mean, arrays.std = mean_std(arrays.train[0])
        log.info("mean/std from the training images: %s / %s", arrays.mean, arrays.std)
    named = ", ".join(f"{n}: {c}" for n, c in zip(arrays.group_names, arrays.train_counts))
    log.info("training images per %s: %s (total %d)", arrays.group_kind, named
             if d.groups != "severity" else arrays.train_counts, sum(arrays.train_counts))
    return arrays


def carve_missing_splits(source, groups, fraction, seed):
    """A source without a test split gets one carved from its training images; one without
    a validation split gets one too, except under the severity protocol (whose validation
    set is the rest of the training pool). Stratified by class and group, seeded."""
    train, test, val = source.train, source.test, source.val
    if test is None:
        train, test = carve(train, fraction, np.random.default_rng([seed, 21]))
        log.info("no test split: %d images carved from the training images (data.val_fraction)",
                 len(test))
    if val is None and groups != "severity":
        train, val = carve(train, fraction, np.random.default_rng([seed, 22]))
        log.info("no validation split: %d images carved from the training images "
                 "(data.val_fraction %g)", len(val), fraction)
    return dataclasses.replace(source, train=train, test=test, val=val)


def carve(split, fraction, rng):
    """(rest, carved): round(fraction * n) images of every (class, group) stratum of n
    images, at least one image of each stratum left in ``rest``."""
    strata = split.labels if split.groups is None else split.labels * (split.groups.max() + 1) + split.groups
    taken = []
    for value in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == value))
        count = min(int(math.floor(fraction * len(members) + 0.5)), len(members) - 1)
        taken.append(members[:count])
    taken = np.sort(np.concatenate(taken))
    rest = np.setdiff1d(np.arange(len(split)), taken)
    return split.subset(rest), split.subset(taken)


def _source_key(cfg, source):
    """What identifies the source's images in cache keys: the files' fingerprint for the
    user's own data, the dataset and its reader options for a built-in one."""
    d = cfg.data
    return {"dataset": d.dataset, "options": READERS.select_options(d.dataset, d),
            "fingerprint": source.fingerprint}


@GROUP_SOURCES.register("severity")
def severity_groups(cfg, source):
    """The photon-limited protocol (SPEC section 2): the training pool split by the Poisson
    shares and corrupted; validation (the rest of the pool, or the source's val split) and
    test at every severity."""
    d = cfg.data
    shares = poisson_shares(d.num_severity, d.poisson_lambda)
    pool = source.train
    train_x, train_y = pool.images, pool.labels
    num_per_class = d.num_per_class or default_num_per_class(source, d.val_fraction)
    files = pool.files if source.val is None else None  # file lists describe a split of one pool
    if files is not None and d.file_lists:
        per_severity, val_idx = _split_from_lists(d.file_lists, files, d.num_severity)
    else:
        per_severity, val_idx = split_by_severity(train_y, num_per_class, shares,
                                                  np.random.default_rng([cfg.seed, 1]),
                                                  d.val_per_class)
    if files is not None and not d.file_lists:  # the authors' style: share a split
        lists = os.path.join(d.cache_dir, f"{d.dataset}_filelists_seed{cfg.seed}_n{num_per_class}")
        readers.write_file_lists(lists, files, train_y, per_severity, val_idx)
        log.info("file lists of this split: %s", lists)
    cache = ArrayCache(d.cache_dir)
    base = {**_source_key(cfg, source), "corruption": d.corruption, "table": d.corruption_table,
            "seed": cfg.seed, "num_per_class": num_per_class, "lambda": d.poisson_lambda,
            "num_severity": d.num_severity, "shape": list(train_x.shape[1:]),
            "val_per_class": d.val_per_class, "file_lists": d.file_lists,
            "rounding": d.uint8_rounding,
            "resave_jpeg": d.resave_jpeg}
    if source.val is not None:
        base["own_val"] = len(source.val)

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
    val = source.val if source.val is not None else pool.subset(val_idx)
    levels = list(range(d.num_severity + 1))
    return Arrays(train=(images, labels, groups),
                  val={s: (corrupted("val", s, val.images), val.labels) for s in levels},
                  test={s: (corrupted("test", s, source.test.images), source.test.labels)
                        for s in levels},
                  class_names=list(source.class_names), group_names=levels,
                  group_kind="severity", mean=source.mean, std=source.std,
                  train_counts=[len(idx) for idx in per_severity])


def default_num_per_class(source, val_fraction):
    """The dataset's own default, else the smallest class (less the validation share when
    the validation set is the rest of the pool)."""
    if source.default_num_per_class:
        return source.default_num_per_class
    smallest = int(np.bincount(source.train.labels, minlength=source.num_classes).min())
    if source.val is None:
        smallest = int(math.floor(smallest * (1.0 - val_fraction)))
    if smallest < 1:
        raise ValueError(f"a class has too few training images for the photon-limited split "
                         f"(smallest class: {smallest}); set data.num_per_class")
    return smallest


def _by_group(split, names, what, warn=True):
    """{group name: (images, labels)} of a split with groups; a group without images is
    left out (with a warning). Without groups: {'all': everything}."""
    if split.groups is None:
        return {ALL: (split.images, split.labels)}
    out = {}
    for g, name in enumerate(names):
        idx = np.flatnonzero(split.groups == g)
        if len(idx):
            out[name] = (take(split.images, idx), split.labels[idx])
        elif warn:
            print(f"warning: group {name!r} has no {what} images; it is not evaluated there",
                  flush=True)
    return out


@GROUP_SOURCES.register("given")
def given_groups(cfg, source):
    """Groups from the data (a folder level or a CSV column): no corruption; validation and
    test evaluated per group on their own images."""
    if not source.has_groups:
        raise ValueError(f"data.groups: given, but {cfg.data.dataset} has no group labels "
                         "(image_folder: ROOT/<split>/<group>/<class>/*; csv: a group column); "
                         "use data.groups: severity or none")
    names = list(source.group_names)
    counts = np.bincount(source.train.groups, minlength=len(names)).tolist()
    empty = [n for n, c in zip(names, counts) if c == 0]
    if empty:
        raise ValueError(f"group(s) {', '.join(map(str, empty))} have no training images")
    for split in (source.val, source.test):
        if split.groups is None:
            raise ValueError("data.groups: given needs groups on every split; validation or "
                             "test has none")
    return Arrays(train=(source.train.images, source.train.labels, source.train.groups),
                  val=_by_group(source.val, names, "validation"),
                  test=_by_group(source.test, names, "test"),
                  class_names=list(source.class_names), group_names=names, group_kind="group",
                  mean=source.mean, std=source.std, train_counts=counts,
                  train_files=source.train.files)


@GROUP_SOURCES.register("none")
def no_groups(cfg, source):
    """No group labels in training (one group); evaluation per group where the data has
    groups, else overall."""
    names = list(source.group_names) if source.has_groups else None
    train = source.train
    return Arrays(train=(train.images, train.labels, np.zeros(len(train), np.int64)),
                  val=_by_group(source.val, names, "validation", warn=False),
                  test=_by_group(source.test, names, "test", warn=False),
                  class_names=list(source.class_names), group_names=[ALL], group_kind="group",
                  mean=source.mean, std=source.std, train_counts=[len(train)],
                  train_files=train.files)


def clean_test(cfg):
    """The config's test images as the data has them (no corruption): (images, labels)."""
    source = carve_missing_splits(read_dataset(cfg), cfg.data.groups, cfg.data.val_fraction,
                                  cfg.seed)
    return source.test.images, source.test.labels


def dataset_info(cfg):
    """What a model trained on the config's dataset takes (class_names, channels,
    image_size, mean, std), for a run folder without data.json. Reads the dataset (no split,
    no corruption); mean/std from the training pool when the dataset has none (a run
    computes them after its split: for runs with data.json, that file is the truth)."""
    source = read_dataset(cfg)
    images = source.train.images
    mean, std = (source.mean, source.std) if source.mean is not None else mean_std(images)
    return {"class_names": list(source.class_names), "channels": int(images.shape[-1]),
            "image_size": int(images.shape[1]), "mean": list(mean), "std": list(std)}


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
        # num_per_class sizes only the protocol's split (groups: severity)
        more = ("raise data.num_per_class" if cfg.data.groups == "severity"
                else "add training images")
        raise ValueError(f"{len(labels)} training images is fewer than one batch "
                         f"({cfg.train.batch_size}); {more} or lower train.batch_size")

    def eval_sets(split):
        return {s: EvalSet(x, y, arrays.mean, arrays.std, cfg.train.eval_batch_size)
                for s, (x, y) in split.items()}

    return DataBundle(arrays=arrays, batch_size=cfg.train.batch_size, seed=cfg.seed,
                      random_crop=cfg.data.random_crop,
                      val=eval_sets(arrays.val), test=eval_sets(arrays.test),
                      rank=rank, world_size=world_size, sampler=cfg.data.sampler)
