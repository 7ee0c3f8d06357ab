"""The data layer as far as it exists: Poisson shares, the split, noise corruptions, pipeline."""
import math

import numpy as np
import pytest

from datasets.split import poisson_shares, split_by_severity
from datasets.synthetic import read_synthetic


def test_poisson_shares():
    np.testing.assert_allclose(poisson_shares(5), [0.3679, 0.3679, 0.1839, 0.0613, 0.0153, 0.0031],
                               atol=1e-4)
    for bad in (0, 6):
        with pytest.raises(ValueError, match="1..5"):
            poisson_shares(bad)
    with pytest.raises(ValueError, match="> 0"):
        poisson_shares(5, 0.0)


def test_split_counts_disjoint_and_seeded():
    labels = np.repeat(np.arange(3), 500)
    shares = poisson_shares(5)
    train, val = split_by_severity(labels, 400, shares, np.random.default_rng(0))
    for s, idx in enumerate(train):
        for c in range(3):
            assert (labels[idx] == c).sum() == math.floor(400 * shares[s])
    used = np.concatenate(train)
    assert len(np.unique(used)) == len(used)
    assert set(val) == set(range(1500)) - set(used)
    again, _ = split_by_severity(labels, 400, shares, np.random.default_rng(0))
    other, _ = split_by_severity(labels, 400, shares, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(train, again))
    assert not all(np.array_equal(a, b) for a, b in zip(train, other))
    with pytest.raises(ValueError, match="larger than class"):
        split_by_severity(labels, 501, shares, np.random.default_rng(0))


def test_training_pipeline_columns(tmp_path):
    from sharpdro.config import load_config
    from datasets import build_data

    cfg = load_config(None, {"data.image_size": 12, "data.channels": 1, "data.num_classes": 3,
                             "data.num_per_class": 100, "train.batch_size": 8,
                             "data.cache_dir": str(tmp_path), "data.random_crop": True})
    data = build_data(cfg)
    assert data.train_counts == [108, 108, 54, 18, 3, 0]  # 3 classes x floor(100 pmf(s))
    epoch0 = list(data.train_epoch(0).create_dict_iterator(output_numpy=True))
    assert len(epoch0) == data.steps_per_epoch == 291 // 8
    batch = epoch0[0]
    assert batch["image"].shape == (8, 1, 12, 12) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32 and batch["group"].dtype == np.int32
    groups = np.concatenate([b["group"] for b in epoch0])
    assert set(groups) <= set(range(6)) and len(set(groups)) > 1
    assert sorted(data.test) == list(range(6))
    # the epoch alone decides the batches: rebuilt, epoch 0 is the same; epoch 1 differs
    again = list(data.train_epoch(0).create_dict_iterator(output_numpy=True))
    for a, b in zip(epoch0, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    other = next(data.train_epoch(1).create_dict_iterator(output_numpy=True))
    assert not np.array_equal(other["image"], batch["image"])


def test_augmentation_and_normalisation():
    """Flips mirror the image, crops shift it within the padding, values are normalised."""
    from datasets.pipeline import PAD, TrainEpoch, normalise

    images = np.random.default_rng(0).integers(0, 256, (16, 6, 6, 1), np.uint8)
    labels, groups = np.arange(16), np.arange(16) % 3
    src = TrainEpoch(images.copy(), labels, groups, 16, (0.5,), (0.25,), seed=0, epoch=0)
    x, y, g = src[0]
    idx = src.order
    want = images[idx].copy()
    want[src.flips] = want[src.flips, :, ::-1]
    np.testing.assert_allclose(x, normalise(want, (0.5,), (0.25,)), atol=1e-6)
    np.testing.assert_allclose(x[0, 0], (want[0, ..., 0] / 255.0 - 0.5) / 0.25, atol=1e-5)
    assert list(y) == list(labels[idx]) and list(g) == list(groups[idx])
    assert 0 < src.flips.sum() < 16
    np.testing.assert_array_equal(images, src.images)  # the source arrays are not modified
    crop = TrainEpoch(images, labels, groups, 16, (0.0,), (1.0,), seed=0, epoch=0, random_crop=True,
                      flip=False)
    x, _, _ = crop[0]
    dy, dx = crop.offsets[0]
    padded = np.pad(images[crop.order[0], ..., 0], PAD)
    np.testing.assert_allclose(x[0, 0], padded[dy:dy + 6, dx:dx + 6] / 255.0, atol=1e-6)


def small_config(tmp_path, **extra):
    from sharpdro.config import load_config

    values = {"data.image_size": 8, "data.channels": 3, "data.num_classes": 2,
              "data.num_per_class": 300, "data.cache_dir": str(tmp_path / "cache")}
    values.update(extra)
    return load_config(None, values)


def test_same_seed_same_pixels_other_seed_other(tmp_path):
    from datasets import prepare_arrays

    a = prepare_arrays(small_config(tmp_path))
    b = prepare_arrays(small_config(tmp_path, **{"data.cache_dir": str(tmp_path / "other")}))
    c = prepare_arrays(small_config(tmp_path, seed=1))
    np.testing.assert_array_equal(a.train[0], b.train[0])
    np.testing.assert_array_equal(a.test[5][0], b.test[5][0])
    assert not np.array_equal(a.test[5][0], c.test[5][0])
    assert a.train_counts == [220, 220, 110, 36, 8, 0]  # 2 classes x floor(300 pmf(s))


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_manifest"])
def test_damaged_cache_is_rebuilt(tmp_path, damage):
    import glob
    import os

    from datasets import prepare_arrays

    cfg = small_config(tmp_path)
    want = prepare_arrays(cfg).test[3][0]
    files = sorted(glob.glob(str(tmp_path / "cache" / "*.npy")))
    assert files
    for path in files:
        if damage == "truncate":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
        elif damage == "flip":
            mtime = os.stat(path).st_mtime_ns
            with open(path, "r+b") as f:
                f.seek(-1, 2)
                last = f.read(1)
                f.seek(-1, 2)
                f.write(bytes([last[0] ^ 0xFF]))
            # a load trusts an unchanged size and mtime: make the edit visible on a coarse clock
            os.utime(path, ns=(mtime, mtime + 10**9))
        else:
            os.remove(path[:-4] + ".json")
    again = prepare_arrays(cfg).test[3][0]
    np.testing.assert_array_equal(again, want)
    from datasets.cache import ArrayCache
    assert all(ArrayCache(str(tmp_path / "cache")).load(json_key) is not None
               for json_key in _keys(tmp_path / "cache"))


def _keys(folder):
    import glob
    import json

    return [json.load(open(p))["key"] for p in glob.glob(str(folder / "*.json"))]


def test_bad_data_config_fails_before_reading(tmp_path):
    from datasets import prepare_arrays

    with pytest.raises(ValueError, match="unknown dataset 'cifar11'"):
        prepare_arrays(small_config(tmp_path, **{"data.dataset": "cifar11"}))
    with pytest.raises(ValueError, match="unknown corruption 'snowy'.*'snow'"):
        prepare_arrays(small_config(tmp_path, **{"data.corruption": "snowy"}))
    with pytest.raises(ValueError, match="larger than class"):
        prepare_arrays(small_config(tmp_path, **{"data.num_per_class": 10 ** 6}))


def test_validation_cap_takes_a_prefix_of_the_rest():
    labels = np.repeat(np.arange(3), 50)
    shares = poisson_shares(5, 1.0)
    train, val = split_by_severity(labels, 20, shares, np.random.default_rng(0))
    train_c, val_c = split_by_severity(labels, 20, shares, np.random.default_rng(0), val_per_class=7)
    for a, b in zip(train, train_c):
        np.testing.assert_array_equal(a, b)  # the training set does not change
    assert len(val) == 3 * (50 - sum(len(t) for t in train) // 3) and len(val_c) == 21
    assert set(val_c) <= set(val)
    assert all((labels[val_c] == c).sum() == 7 for c in range(3))
