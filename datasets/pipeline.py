"""mindspore.dataset pipelines yielding (image float32 CHW normalised, label int32, group int32)."""
import numpy as np

import mindspore as ms
import mindspore.dataset as ds
import mindspore.dataset.vision as vision
from mindspore.dataset.transforms import TypeCast


def make_dataset(images, labels, groups, batch_size, mean, std, train, seed=0, num_workers=1,
                 random_crop=False):
    """Training: shuffled, random horizontal flip (and optional pad-4 random crop), fixed
    batch size (drop the remainder) so graph mode compiles once. Evaluation: in order."""
    data = ds.NumpySlicesDataset(
        {"image": images, "label": labels.astype(np.int32), "group": groups.astype(np.int32)},
        shuffle=train, num_parallel_workers=num_workers)
    augment = []
    if train:
        if random_crop:
            augment.append(vision.RandomCrop(images.shape[1], padding=4))
        augment.append(vision.RandomHorizontalFlip())
    normalise = [vision.Rescale(1.0 / 255.0, 0.0), vision.Normalize(mean, std), vision.HWC2CHW()]
    data = data.map(augment + normalise, input_columns="image", num_parallel_workers=num_workers)
    data = data.map(TypeCast(ms.int32), input_columns="label")
    data = data.map(TypeCast(ms.int32), input_columns="group")
    return data.batch(batch_size, drop_remainder=train)
