"""The comparison's data options: group-balanced sampling (SPEC section 5), and what data
without groups refuses."""
import numpy as np
import pytest

import train as train_entry
from datasets.pipeline import TrainEpoch, epoch_order
from helpers import tiny
from sharpdro.algorithms import ALGORITHMS, ONE_STAGE


def draw(sampler, labels, groups, seed=0, epoch=0):
    return epoch_order(np.random.default_rng([seed, 10, epoch]), labels, groups, sampler)


@pytest.fixture(scope="module")
def skewed():
    """3 groups of 9000, 900 and 100 images; labels 0/1, unbalanced within the groups."""
    groups = np.repeat([0, 1, 2], [9000, 900, 100])
    rng = np.random.default_rng(5)
    labels = (rng.random(len(groups)) < np.where(groups == 2, 0.1, 0.5)).astype(np.int64)
    return labels, groups


def test_group_balanced_draws_each_group_equally_often(skewed):
    labels, groups = skewed
    order = draw("group_balanced", labels, groups)
    assert len(order) == len(labels)  # the epoch's length is unchanged
    share = np.bincount(groups[order], minlength=3) / len(order)
    np.testing.assert_allclose(share, 1 / 3, atol=0.015)
    # within a group, images are drawn uniformly: a group's own class mix is kept
    rare = order[groups[order] == 2]
    assert abs(labels[rare].mean() - labels[groups == 2].mean()) < 0.03


def test_class_group_balanced_draws_each_class_and_group_equally_often(skewed):
    labels, groups = skewed
    order = draw("class_group_balanced", labels, groups)
    cells = groups[order] * 2 + labels[order]
    np.testing.assert_allclose(np.bincount(cells, minlength=6) / len(order), 1 / 6, atol=0.015)


@pytest.mark.parametrize("sampler", ["group_balanced", "class_group_balanced"])
def test_balanced_draws_are_seeded_by_seed_and_epoch(skewed, sampler):
    labels, groups = skewed
    first = draw(sampler, labels, groups)
    np.testing.assert_array_equal(first, draw(sampler, labels, groups))
    assert not np.array_equal(first, draw(sampler, labels, groups, epoch=1))
    assert not np.array_equal(first, draw(sampler, labels, groups, seed=1))


def test_ranks_take_their_slices_of_one_balanced_draw(skewed):
    """Data parallel: the same draw on every rank, sharded after it."""
    labels, groups = skewed
    images = np.zeros((len(labels), 2, 2, 1), np.uint8)

    def epoch(rank, world):
        return TrainEpoch(images, labels, groups, 8, (0.0,), (1.0,), 3, 2, flip=False,
                          rank=rank, world_size=world, sampler="group_balanced")

    whole = epoch(0, 1)
    for b in (0, 7):
        halves = [epoch(r, 2)[b] for r in (0, 1)]
        for column in (1, 2):
            np.testing.assert_array_equal(np.concatenate([h[column] for h in halves]),
                                          whole[b][column])


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match="unknown sampler 'balanced'"):
        draw("balanced", np.zeros(4, int), np.zeros(4, int))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


# the registry's label-free methods, and its one-stage ones among them: a new algorithm is
# covered with no edit here
LABEL_FREE = [n for n in ALGORITHMS.names() if not ALGORITHMS.get(n).uses_group_labels]
LABEL_FREE_CELLS = [n for n in LABEL_FREE if ALGORITHMS.get(n).kind == ONE_STAGE]


@pytest.mark.parametrize("extra,message", [
    (["--sampler", "group_balanced"], "data.sampler group_balanced needs group labels and "
                                      "data.groups is none; use permutation or replacement"),
    (["--algorithm.name", "groupdro"], "groupdro needs group labels and data.groups is none; "
                                       f"the label-free choices: {', '.join(LABEL_FREE)}"),
    (["--sampler", "stratified"], r"data.sampler: 'stratified' is not one of"),
])
def test_group_options_on_data_without_groups_are_one_line(cache, tmp_path, extra, message):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=message):
        train_entry.main(tiny(cache, out, "--algorithm.name", "erm", "--groups", "none", *extra))
    assert not out.exists()


def test_a_balanced_run_trains_and_resumes_exactly(cache, tmp_path, monkeypatch):
    """SharpDRO on the group-balanced sampler, with the adjustment: crashed after epoch 1
    and resumed, it ends with the weights of the uninterrupted run."""
    from helpers import crash_at_epoch_2, read_jsonl
    from sharpdro.checkpoint import read_checkpoint

    extra = ["--sampler", "group_balanced", "--algorithm.adjustment", "1.0", "--export_mindir", "false"]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    train_entry.main(tiny(cache, whole, *extra))
    undo = crash_at_epoch_2(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(tiny(cache, resumed, *extra))
    undo()
    train_entry.main(["--resume", str(resumed)])
    want = read_checkpoint(str(whole / "checkpoints" / "last.ckpt"))
    got = read_checkpoint(str(resumed / "checkpoints" / "last.ckpt"))
    for name in want:
        if name != "run_state":
            np.testing.assert_array_equal(got[name].asnumpy(), want[name].asnumpy(), err_msg=name)
    assert read_jsonl(str(resumed / "eval.jsonl")) == read_jsonl(str(whole / "eval.jsonl"))


def test_the_registry_knows_which_methods_are_label_free():
    assert {"cvar", "sharpdro_agnostic", "erm", "sam", "jtt", "eiil"} <= set(LABEL_FREE)
    assert not {"sharpdro", "groupdro", "dfr"} & set(LABEL_FREE)


@pytest.mark.parametrize("algorithm", LABEL_FREE_CELLS)
def test_label_free_algorithms_never_read_the_groups(algorithm):
    """Two steps with the groups as given and with them permuted: bit-identical weights
    (the per-group diagnostics they log are the only thing the groups change)."""
    from helpers import batch, initial_params, make_cell, run

    cells = [make_cell(algorithm, initial_params()) for _ in range(2)]
    rng = np.random.default_rng(3)
    for step in range(2):
        x, label, group = batch(step)
        run(cells[0], x, label, group)
        run(cells[1], x, label, rng.permutation(group))
    for a, b in zip(cells[0].network.get_parameters(), cells[1].network.get_parameters()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy(), err_msg=a.name)


# -- the inference steps of JTT and EIIL (sharpdro/label_free.py) ----------------------
def test_irm_terms_are_the_derivative_of_the_scaled_loss():
    from sharpdro.label_free import irm_terms

    rng = np.random.default_rng(0)
    z, y = rng.normal(0, 2, (5, 4)), rng.integers(0, 4, 5)

    def ce(t):
        s = t * z
        return np.log(np.exp(s).sum(1)) - s[np.arange(5), y]

    h = 1e-6
    np.testing.assert_allclose(irm_terms(z, y), (ce(1 + h) - ce(1 - h)) / (2 * h), rtol=1e-6)


def test_jtt_error_set_and_repeats():
    from sharpdro.label_free import jtt_error_set, jtt_repeats

    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    errors = jtt_error_set(logits, [0, 0, 1])
    np.testing.assert_array_equal(errors, [False, True, True])
    np.testing.assert_array_equal(jtt_repeats(errors, 5), [1, 5, 5])
    with pytest.raises(ValueError, match="upweight must be >= 1"):
        jtt_repeats(errors, 0)


def test_eiil_ascends_its_objective_with_the_right_gradient():
    """The gradient equals central differences of J; the ascent raises J well above its
    value at q = 1/2; the result is seeded. (J is largest for a small set of the most
    extreme d, not for a true group: EIIL finds what the reference model gets most
    wrong, which is why it is compared, not trusted.)"""
    from sharpdro.label_free import eiil_environments, eiil_gradient, eiil_objective

    rng = np.random.default_rng(1)
    truth = (rng.random(400) < 0.2).astype(int)
    d = np.where(truth == 1, rng.normal(1.5, 0.3, 400), rng.normal(-0.2, 0.1, 400))
    a = rng.normal(0, 0.5, 400)
    h, picks = 1e-6, [0, 7, 123]
    for i in picks:
        up, down = a.copy(), a.copy()
        up[i] += h
        down[i] -= h
        numeric = (eiil_objective(1 / (1 + np.exp(-up)), d)
                   - eiil_objective(1 / (1 + np.exp(-down)), d)) / (2 * h)
        assert eiil_gradient(a, d)[i] == pytest.approx(numeric, rel=1e-5, abs=1e-12)
    env, q, final = eiil_environments(d, steps=500, lr=0.05)
    assert final > eiil_objective(np.full(400, 0.5), d) + 1.0
    assert set(np.unique(env)) == {0, 1}
    np.testing.assert_array_equal(q, eiil_environments(d, steps=500, lr=0.05)[1])


def test_repeats_lengthen_the_epoch_and_keep_it_seeded():
    """JTT's upweighting as a data option: image i appears repeats[i] times per epoch."""
    labels, groups = np.zeros(10, int), np.zeros(10, int)
    repeats = np.array([1] * 8 + [5, 5])
    order = epoch_order(np.random.default_rng([0, 10, 0]), labels, groups, "permutation", repeats)
    np.testing.assert_array_equal(np.bincount(order, minlength=10), repeats)
    again = epoch_order(np.random.default_rng([0, 10, 0]), labels, groups, "permutation", repeats)
    np.testing.assert_array_equal(order, again)
    images = np.zeros((10, 2, 2, 1), np.uint8)
    assert len(TrainEpoch(images, labels, groups, 3, (0.0,), (1.0,), 0, 0, repeats=repeats)) == 6
    # without repeats the epoch is what it was (same draws as before the option existed)
    plain = TrainEpoch(images, labels, groups, 3, (0.0,), (1.0,), 0, 0)
    np.testing.assert_array_equal(plain.order, np.random.default_rng([0, 10, 0]).permutation(10))
