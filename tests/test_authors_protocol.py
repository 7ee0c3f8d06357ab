"""``protocol: authors``: where the authors' code differs from ours, each difference as an
option and the preset that sets them all (README, "The authors' protocol")."""
import os

import numpy as np
import pytest
from PIL import Image

from datasets.pipeline import TrainEpoch
from datasets.split import poisson_shares, split_by_severity
from sharpdro.config import AUTHORS_PROTOCOL, ConfigError, load_config
from sharpdro.optim import lr_schedule

PAPER_CONFIGS = ["cifar10_wrn28_2", "cifar100_wrn28_2", "imagenet30_wrn28_2"]


def test_cifar10_split_counts_are_the_authors():
    labels = np.repeat(np.arange(10), 5000)
    train, val = split_by_severity(labels, 4000, poisson_shares(5), np.random.default_rng(0))
    assert [len(t) for t in train] == [14710, 14710, 7350, 2450, 610, 120]
    assert len(val) == 50000 - sum(len(t) for t in train)


def test_the_authors_epoch_schedule():
    """200 epochs, x0.2 at 30/60/80 %: the authors set the rate after epoch e from e, so
    epochs 0..60 run at the base rate and 61 is the first at x0.2 (0-based); ours per
    step is one epoch earlier at every milestone."""
    spe, epochs = 3, 200
    authors = lr_schedule(1.0, spe * epochs, "step", (0.3, 0.6, 0.8), 0.2, "epoch", spe)
    ours = lr_schedule(1.0, spe * epochs, "step", (0.3, 0.6, 0.8), 0.2)
    per_epoch = [authors[e * spe] for e in range(epochs)]
    assert all(authors[e * spe:(e + 1) * spe] == [per_epoch[e]] * spe for e in range(epochs))
    want = [1.0] * 61 + [0.2] * 60 + [0.04] * 40 + [0.008] * 39
    np.testing.assert_allclose(per_epoch, want)
    first_reduced = {name: [s // spe for s in range(1, len(lrs)) if lrs[s] < lrs[s - 1]]
                     for name, lrs in (("authors", authors), ("ours", ours))}
    assert first_reduced == {"authors": [61, 121, 161], "ours": [60, 120, 160]}
    with pytest.raises(ValueError, match="needs the steps per epoch"):
        lr_schedule(1.0, 10, "step", milestone_unit="epoch", steps_per_epoch=3)


def test_sampling_with_replacement_is_seeded_and_drops_the_last_batch():
    n = 50
    images = np.zeros((n, 4, 4, 1), np.uint8)
    labels, groups = np.arange(n), np.zeros(n, np.int64)

    def order(epoch, sampler):
        return TrainEpoch(images, labels, groups, 8, (0.0,), (1.0,), 0, epoch,
                          sampler=sampler).order

    drawn = order(0, "replacement")
    assert len(drawn) == n and len(np.unique(drawn)) < n  # repeats: with replacement
    np.testing.assert_array_equal(drawn, order(0, "replacement"))  # a function of (seed, epoch)
    assert not np.array_equal(drawn, order(1, "replacement"))
    assert sorted(order(0, "permutation")) == list(range(n))
    epoch = TrainEpoch(images, labels, groups, 8, (0.0,), (1.0,), 0, 0, sampler="replacement")
    assert len(epoch) == n // 8
    np.testing.assert_array_equal(epoch[1][1], drawn[8:16])


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_the_paper_configs_use_the_authors_protocol(name):
    cfg = load_config(os.path.join("configs", name + ".yaml"))
    assert cfg.protocol == "authors"
    assert (cfg.data.sampler, cfg.data.uint8_rounding, cfg.optim.milestone_unit) == (
        "replacement", "truncate", "epoch")
    assert cfg.data.resave_jpeg == (85 if name.startswith("imagenet30") else 0)


def test_keys_set_explicitly_win_over_the_preset():
    cfg = load_config("configs/cifar10_wrn28_2.yaml", ["--data.sampler", "permutation",
                                                       "--optim.milestone_unit", "step"])
    assert (cfg.data.sampler, cfg.optim.milestone_unit, cfg.data.uint8_rounding) == (
        "permutation", "step", "truncate")
    ours = load_config("configs/cifar10_wrn28_2.yaml", ["--protocol", "ours"])
    assert (ours.data.sampler, ours.data.uint8_rounding, ours.optim.milestone_unit,
            ours.data.resave_jpeg) == ("permutation", "round", "step", 0)
    assert set(AUTHORS_PROTOCOL) == {"data.sampler", "data.uint8_rounding",
                                     "optim.milestone_unit", "data.resave_jpeg"}
    with pytest.raises(ConfigError, match="protocol"):
        load_config(None, {"protocol": "paper"})


def _imagenet30(tmp_path, per_class=12):
    for split, n in (("train", per_class), ("test", 2)):
        for c in range(2):
            folder = tmp_path / "data" / split / f"n0{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rng = np.random.default_rng(100 * c + i)
                img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return {"data.dataset": "imagenet30", "data.data_dir": str(tmp_path / "data"),
            "data.num_per_class": 10, "data.corruption": "gaussian_noise",
            "data.cache_dir": str(tmp_path / "cache")}


def test_the_authors_list_names_are_accepted(tmp_path):
    """Their published split: imagenet30_distribution_<s>.txt and imagenet30_val.txt."""
    from datasets import prepare_arrays

    common = _imagenet30(tmp_path)
    first = prepare_arrays(load_config(None, dict(common, seed=0)))
    ours = tmp_path / "cache" / "imagenet30_filelists_seed0_n10"
    theirs = tmp_path / "authors_lists"
    theirs.mkdir()
    for s in range(6):
        os.link(ours / f"train_severity_{s}.txt", theirs / f"imagenet30_distribution_{s}.txt")
    os.link(ours / "val.txt", theirs / "imagenet30_val.txt")
    reused = prepare_arrays(load_config(None, dict(common, seed=3, **{"data.file_lists": str(theirs)})))
    assert reused.train_counts == first.train_counts
    np.testing.assert_array_equal(reused.train[1], first.train[1])
    np.testing.assert_array_equal(reused.val[0][0], first.val[0][0])
    with pytest.raises(ValueError, match="no file lists found.*imagenet30_distribution_<s>.txt"):
        prepare_arrays(load_config(None, dict(common, **{"data.file_lists": str(tmp_path)})))


def test_truncation_and_jpeg_resave_reach_the_corrupted_images(tmp_path):
    """uint8_rounding and resave_jpeg change the corrupted images (and the cache key), never
    the clean ones; the re-saved images are what a JPEG round trip at 85 gives."""
    from datasets import prepare_arrays
    from datasets.corruptions import jpeg_roundtrip

    common = _imagenet30(tmp_path)
    plain = prepare_arrays(load_config(None, common))
    truncated = prepare_arrays(load_config(None, dict(common, **{"data.uint8_rounding": "truncate"})))
    resaved = prepare_arrays(load_config(None, dict(common, **{"data.uint8_rounding": "truncate",
                                                               "data.resave_jpeg": 85})))
    np.testing.assert_array_equal(plain.test[0][0], truncated.test[0][0])
    np.testing.assert_array_equal(plain.test[0][0], resaved.test[0][0])
    diff = plain.test[5][0].astype(float) - truncated.test[5][0]
    assert 0.3 < diff.mean() < 0.7 and diff.min() >= 0
    want = np.stack([jpeg_roundtrip(img, 85) for img in truncated.test[5][0]])
    np.testing.assert_array_equal(resaved.test[5][0], want)
