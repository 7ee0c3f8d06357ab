"""Small data for tests: random or separable arrays as mindspore datasets."""
import numpy as np

import mindspore.dataset as ds


def random_arrays(n, channels, size, num_classes, num_groups, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, channels, size, size), dtype=np.float32),
            rng.integers(0, num_classes, n).astype(np.int32),
            rng.integers(0, num_groups, n).astype(np.int32))


def as_dataset(image, label, group, batch_size):
    data = ds.NumpySlicesDataset({"image": image, "label": label, "group": group}, shuffle=False)
    return data.batch(batch_size, drop_remainder=True)
