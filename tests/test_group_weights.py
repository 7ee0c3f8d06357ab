"""Group losses and the exponentiated-gradient group-weight rule (SPEC section 3, steps 4-5)."""
import numpy as np
import pytest

import mindspore as ms

from sharpdro.groups import check_group_indices
from sharpdro.losses import GroupLoss, safe_mean, update_group_weights

import reference as ref


def T(a, dtype=ms.float32):
    return ms.Tensor(np.asarray(a), dtype)


def test_group_means_by_one_hot_product(mode):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(9, 3))
    label = rng.integers(0, 3, 9)
    group = np.array([0, 0, 1, 1, 1, 3, 3, 0, 1])  # group 2 absent
    mean, per_sample, sums, counts = GroupLoss(4)(T(logits), T(label, ms.int32), T(group, ms.int32))
    want = ref.per_sample_loss(logits, label)
    np.testing.assert_allclose(per_sample.asnumpy(), want, rtol=1e-5)
    np.testing.assert_allclose(mean.asnumpy(), want.mean(), rtol=1e-5)
    want_means, want_counts = ref.group_stats(want, group, 4)
    np.testing.assert_allclose(safe_mean(sums, counts).asnumpy(), want_means, rtol=1e-5)
    np.testing.assert_array_equal(counts.asnumpy(), [3, 4, 0, 2])
    assert sums.asnumpy()[2] == 0.0 and safe_mean(sums, counts).asnumpy()[2] == 0.0
    # one of two ranks: its share is half its own mean (the other rank adds the rest)
    half, _, _, _ = GroupLoss(4, world_size=2)(T(logits), T(label, ms.int32), T(group, ms.int32))
    np.testing.assert_allclose(half.asnumpy(), want.mean() / 2, rtol=1e-5)


@pytest.mark.parametrize("absent", ["zero", "skip"])
def test_update_rule(absent):
    w = np.array([0.1, 0.2, 0.3, 0.4])
    loss = np.array([2.0, 0.5, 0.0, 1.0])
    counts = np.array([5.0, 3.0, 0.0, 2.0])
    eta = 0.7
    got = update_group_weights(T(w), T(loss), T(counts), eta, skip_absent=absent == "skip").asnumpy()
    assert np.all(got > 0)
    np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-6)
    if absent == "zero":
        want = w * np.exp(eta * loss)
        want /= want.sum()
        # an absent group counts as zero loss: its weight shrinks relative to the others
        assert got[2] < w[2]
    else:
        want = w.copy()
        present = counts > 0
        new = w[present] * np.exp(eta * loss[present])
        want[present] = new * w[present].sum() / new.sum()
        assert got[2] == pytest.approx(w[2], rel=1e-6)  # absent group: unchanged
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(got, ref.update_weights(w, loss, counts, eta, absent), rtol=1e-5)


def test_update_is_overflow_safe():
    got = update_group_weights(T([0.5, 0.5]), T([1e4, 0.0]), T([1.0, 1.0]), 1.0).asnumpy()
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, [1.0, 0.0], atol=1e-6)


def test_weights_stay_a_distribution_over_training(mode):
    """Many SharpDRO steps with a large eta: weights positive, sum 1, worst group gains."""
    from test_train_step import batch, initial_params, make_cell, run

    cell = make_cell("sharpdro", initial_params(), rho=0.05, eta=2.0)
    for i in range(6):
        x, label, group = batch(i)
        label = np.where(group == 3, (label + 1) % 4, label)  # group 3 is harder each step
        run(cell, x, label, group)
        w = cell.group_weights.asnumpy()
        assert np.all(w > 0) and abs(w.sum() - 1.0) < 1e-5
    assert w.argmax() == 3  # the group with flipped labels became the worst case


def test_check_group_indices():
    check_group_indices(np.array([0, 1, 5]), 6)
    with pytest.raises(ValueError, match=r"6.*0\.\.5"):
        check_group_indices(np.array([0, 6]), 6)
    with pytest.raises(ValueError, match="-1"):
        check_group_indices(np.array([-1, 0]), 6)
    with pytest.raises(ValueError, match="integer"):
        check_group_indices(np.array([0.5]), 6)
    with pytest.raises(ValueError, match="num_groups"):
        check_group_indices(np.array([0]), 0)
