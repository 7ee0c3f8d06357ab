"""From a config to the training set and one evaluation set per severity (SPEC section 2)."""
import dataclasses
import logging

import numpy as np

from sharpdro.config import num_groups
from sharpdro.groups import check_group_indices

from . import readers, synthetic  # noqa: F401  (registration)
from .corruptions import corrupt
from .pipeline import make_dataset
from .registry import CORRUPTIONS, READERS
from .split import poisson_shares, split_by_severity

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DataBundle:
    train: object                      # mindspore dataset of (image, label, group)
    val: dict                          # severity -> dataset
    test: dict                         # severity -> dataset
    num_classes: int
    in_channels: int
    image_size: int
    train_counts: list                 # training images per severity
    steps_per_epoch: int


def _corrupted_copies(images, name, num_severity, seed):
    """Severity s of every image; s = 0 is the clean image."""
    out = [images]
    for s in range(1, num_severity + 1):
        out.append(corrupt(images, name, s, np.random.default_rng([seed, 1000 + s])))
    return out


def build_data(cfg):
    d = cfg.data
    READERS.check(d.dataset)
    CORRUPTIONS.check(d.corruption)
    shares = poisson_shares(d.num_severity, d.poisson_lambda)
    reader = READERS.get(d.dataset)
    raw = reader(data_dir=d.data_dir, seed=cfg.seed, **READERS.select_options(d.dataset, d))
    train_x, train_y = raw["train"]
    test_x, test_y = raw["test"]
    num_per_class = d.num_per_class or raw["default_num_per_class"]
    rng = np.random.default_rng([cfg.seed, 1])
    per_severity, val_idx = split_by_severity(train_y, num_per_class, shares, rng)
    images, labels, groups = [], [], []
    for s, idx in enumerate(per_severity):
        x = train_x[idx]
        if s > 0 and len(idx):
            x = corrupt(x, d.corruption, s, np.random.default_rng([cfg.seed, 2, s]))
        images.append(x)
        labels.append(train_y[idx])
        groups.append(np.full(len(idx), s))
    images, labels, groups = map(np.concatenate, (images, labels, groups))
    check_group_indices(groups, num_groups(cfg))
    counts = [len(idx) for idx in per_severity]
    log.info("training images per severity: %s (total %d)", counts, sum(counts))
    if len(labels) < cfg.train.batch_size:
        raise ValueError(f"{len(labels)} training images is fewer than one batch "
                         f"({cfg.train.batch_size}); raise num_per_class or lower batch_size")
    mean, std = raw["mean"], raw["std"]
    train = make_dataset(images, labels, groups, cfg.train.batch_size, mean, std, True,
                         cfg.seed, d.num_workers)

    def per_severity_sets(x, y, seed_tag):
        sets = {}
        for s, xs in enumerate(_corrupted_copies(x, d.corruption, d.num_severity,
                                                 cfg.seed * 100 + seed_tag)):
            sets[s] = make_dataset(xs, y, np.full(len(y), s), cfg.train.eval_batch_size,
                                   mean, std, False, cfg.seed, d.num_workers)
        return sets

    return DataBundle(train=train, val=per_severity_sets(train_x[val_idx], train_y[val_idx], 3),
                      test=per_severity_sets(test_x, test_y, 4), num_classes=raw["num_classes"],
                      in_channels=train_x.shape[-1], image_size=train_x.shape[1],
                      train_counts=counts, steps_per_epoch=len(labels) // cfg.train.batch_size)
