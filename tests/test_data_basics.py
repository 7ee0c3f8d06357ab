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


def test_training_pipeline_columns():
    from sharpdro.config import load_config
    from datasets import build_data

    cfg = load_config(None, {"data.image_size": 12, "data.channels": 1, "data.num_classes": 3,
                             "data.num_per_class": 100, "train.batch_size": 8})
    data = build_data(cfg)
    assert data.train_counts == [108, 108, 54, 18, 3, 0]  # 3 classes x floor(100 pmf(s))
    batch = next(data.train.create_dict_iterator(output_numpy=True))
    assert batch["image"].shape == (8, 1, 12, 12) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32 and batch["group"].dtype == np.int32
    groups = np.concatenate([b["group"] for b in data.train.create_dict_iterator(output_numpy=True)])
    assert set(groups) <= set(range(6))
    assert sorted(data.test) == list(range(6))
