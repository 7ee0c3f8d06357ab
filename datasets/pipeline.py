"""Batches of (image float32 N x C x H x W normalised, label int32, group int32).

Training: one ``mindspore.dataset`` per epoch whose order (a permutation, or draws with
replacement as the authors' sampler), flips and crops are a pure function of (seed,
epoch). A resumed run therefore sees exactly the batches the uninterrupted run saw,
which a shuffle state inside the pipeline cannot promise (MindSpore prefetches across
epochs). Batches have a fixed size (the remainder is dropped) so graph
mode compiles once. Augmentation is done in NumPy on whole batches.

Evaluation: ``EvalSet`` yields batches in order, one set per severity.
"""
import numpy as np

from .source import release, take

PAD = 4  # random crop: pad by 4 and crop back, as for CIFAR
RELEASE_EVERY = 8  # batches between releases of memory-mapped pages (datasets.source.release)


def normalise(images, mean, std):
    """uint8 N x H x W x C -> float32 N x C x H x W, (x / 255 - mean) / std."""
    x = images.astype(np.float32) * np.float32(1.0 / 255.0)
    x -= np.asarray(mean, np.float32)
    x /= np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _random_crop(images, offsets):
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
    return np.stack([padded[i, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def epoch_order(rng, labels, groups, sampler, repeats=None):
    """The n training indices of one epoch (sharpdro.config.SAMPLERS): a permutation; n
    independent draws (PyTorch's RandomSampler(replacement=True)); n draws with probability
    proportional to 1 / n_g (group_balanced) or 1 / n_(g,y) (class_group_balanced).
    ``repeats`` (JTT's upweighting): image i counts ``repeats[i]`` times, so the epoch has
    sum(repeats) indices (permutation and replacement only)."""
    n = len(labels)
    if repeats is not None:
        repeats = np.asarray(repeats, np.int64)
        if sampler == "permutation":
            expanded = np.repeat(np.arange(n), repeats)
            return expanded[rng.permutation(len(expanded))]
        if sampler == "replacement":
            total = int(repeats.sum())
            return rng.choice(n, total, replace=True, p=repeats / total)
        raise ValueError(f"sampler {sampler!r} does not take repeats")
    if sampler == "permutation":
        return rng.permutation(n)
    if sampler == "replacement":
        return rng.integers(0, n, n)
    if sampler not in ("group_balanced", "class_group_balanced"):
        raise ValueError(f"unknown sampler {sampler!r}")
    cells = np.asarray(groups, np.int64)
    if sampler == "class_group_balanced":
        cells = cells * (int(np.max(labels)) + 1) + np.asarray(labels, np.int64)
    _, cell_of, size = np.unique(cells, return_inverse=True, return_counts=True)
    p = 1.0 / size[cell_of]
    return rng.choice(n, n, replace=True, p=p / p.sum())


class TrainEpoch:
    """Random-access source: item b is batch b of epoch ``epoch``.

    Data parallel: ``batch_size`` is the global batch; rank ``rank`` of ``world_size`` gets
    its contiguous slice of every global batch, so the ranks' batches of a step are
    exactly the one-process batch, and the order stays a function of (seed, epoch)."""

    def __init__(self, images, labels, groups, batch_size, mean, std, seed, epoch,
                 random_crop=False, flip=True, rank=0, world_size=1, sampler="permutation",
                 repeats=None):
        if batch_size % world_size:
            raise ValueError(f"train.batch_size {batch_size} is not divisible by the "
                             f"{world_size} ranks")
        self.images, self.labels, self.groups = images, labels, groups
        self.batch_size, self.mean, self.std = batch_size, mean, std
        self.share = batch_size // world_size
        self.rank = rank
        rng = np.random.default_rng([seed, 10, epoch])
        self.order = epoch_order(rng, labels, groups, sampler, repeats)
        n = len(self.order)  # the epoch's length (more than the images with repeats)
        self.flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
        self.offsets = rng.integers(0, 2 * PAD + 1, (n, 2)) if random_crop else None

    def __len__(self):
        return len(self.order) // self.batch_size

    def __getitem__(self, b):
        if not 0 <= b < len(self):
            raise IndexError(b)
        start = b * self.batch_size + self.rank * self.share
        pos = slice(start, start + self.share)
        idx = self.order[pos]
        x = self.images[idx]
        if b % RELEASE_EVERY == RELEASE_EVERY - 1:
            release(self.images)  # memory-mapped images: an epoch does not stay resident
        flips = self.flips[pos]
        x[flips] = x[flips, :, ::-1]
        if self.offsets is not None:
            x = _random_crop(x, self.offsets[pos])
        return (normalise(x, self.mean, self.std), self.labels[idx].astype(np.int32),
                self.groups[idx].astype(np.int32))


def train_dataset(images, labels, groups, batch_size, mean, std, seed, epoch, random_crop=False,
                  rank=0, world_size=1, sampler="permutation", repeats=None):
    """The ``mindspore.dataset`` of one training epoch (columns image, label, group); with
    ``world_size`` > 1, this rank's slices of the global batches."""
    import mindspore.dataset as ds

    source = TrainEpoch(images, labels, groups, batch_size, mean, std, seed, epoch, random_crop,
                        rank=rank, world_size=world_size, sampler=sampler, repeats=repeats)
    return ds.GeneratorDataset(source, column_names=["image", "label", "group"], shuffle=False,
                               python_multiprocessing=False)


class EvalSet:
    """The images of one severity, in order; ``batches`` normalises on the fly."""

    def __init__(self, images, labels, mean, std, batch_size):
        self.images, self.labels = images, labels.astype(np.int32)
        self.mean, self.std, self.batch_size = mean, std, batch_size

    def __len__(self):
        return len(self.labels)

    def shard(self, rank, world_size):
        """Rank ``rank``'s contiguous share of the set (data-parallel evaluation)."""
        part = slice(rank * len(self) // world_size, (rank + 1) * len(self) // world_size)
        return EvalSet(take(self.images, part), self.labels[part], self.mean, self.std,
                       self.batch_size)

    def num_batches(self, max_batches=0):
        n = -(-len(self.labels) // self.batch_size)
        return min(n, max_batches) if max_batches else n

    def batches(self, max_batches=0):
        """The set in order, normalised; ``max_batches`` > 0: only the first ones."""
        for b in range(self.num_batches(max_batches)):
            start = b * self.batch_size
            stop = start + self.batch_size
            yield normalise(self.images[start:stop], self.mean, self.std), self.labels[start:stop]
            if b % RELEASE_EVERY == RELEASE_EVERY - 1:
                release(self.images)  # a memory-mapped set: only recent batches resident
        release(self.images)
