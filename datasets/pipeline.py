"""mindspore.dataset pipelines yielding (image float32 CHW normalised, label int32, group int32)."""
import numpy as np

import mindspore.dataset as ds
import mindspore.dataset.vision as vision
from mindspore.dataset.transforms import TypeCast
import mindspore as ms


def _normalise(mean, std):
    return [vision.Rescale(1.0 / 255.0, 0.0), vision.Normalize(mean, std), vision.HWC2CHW()]


def make_dataset(images, labels, groups, batch_size, mean, std, train, seed=0, num_workers=1):
    """Training: shuffled, random horizontal flip, fixed batch size (graph mode compiles once)."""
    data = ds.NumpySlicesDataset(
        {"image": images, "label": labels.astype(np.int32), "group": groups.astype(np.int32)},
        shuffle=train, num_parallel_workers=num_workers)
    ops = ([vision.RandomHorizontalFlip()] if train else []) + _normalise(mean, std)
    data = data.map(ops, input_columns="image", num_parallel_workers=num_workers)
    data = data.map(TypeCast(ms.int32), input_columns="label")
    data = data.map(TypeCast(ms.int32), input_columns="group")
    return data.batch(batch_size, drop_remainder=train)
