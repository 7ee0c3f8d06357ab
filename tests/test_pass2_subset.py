"""Pass 2 on a subset (SPEC section 3b): sharpdro's pass2_fraction with both rules and
sharpdro_agnostic's pass2_selected against the NumPy reference, the default bit-identical
to the whole-batch step, BatchNorm statistics as pass 1 left them, the draws."""
import numpy as np
import pytest

import reference as ref
from helpers import (G, LR, MOMENTUM, WD, assert_close, assert_same_steps, batch, check_state,
                     initial_params, make_cell, run)

# (algorithm, options); the second batch lacks group 3 and is (0, 1, 2) repeated, so that
# 'top' with k = 5 takes all of one group and splits a tie in the next (lower index first)
CASES = [("sharpdro", {"pass2_fraction": 0.5, "pass2_rule": "sample", "seed": 3}),
         ("sharpdro", {"pass2_fraction": 0.25, "pass2_rule": "sample", "seed": 0}),
         ("sharpdro", {"pass2_fraction": 5 / 12, "pass2_rule": "top"}),
         ("sharpdro", {"pass2_fraction": 0.1, "pass2_rule": "top"}),
         ("sharpdro", {"pass2_fraction": 0.25, "pass2_rule": "uniform", "seed": 2}),
         ("sharpdro", {"pass2_fraction": 0.5, "eps_source": "weighted", "adaptive": True}),
         ("sharpdro_agnostic", {"fraction": 0.25, "pass2_selected": True}),
         ("sharpdro_agnostic", {"fraction": 0.5, "score": "loss", "tilt": 1.0,
                                "pass2_selected": True})]


def reference_run(cell, algorithm, options, steps=2):
    params = initial_params()
    state = {"params": params, "buf": {k: np.zeros_like(v) for k, v in params.items()},
             "w": np.full(G, 1.0 / G)}
    infos = []
    for i, groups in enumerate([None, [0, 1, 2] * 4][:steps]):
        x, label, group = batch(i, groups)
        loss = run(cell, x, label, group)
        state, info = ref.step(algorithm, state, x, label, group, G, LR, MOMENTUM, WD,
                               rho=0.05, eta=0.5, **options)
        assert_close(loss.asnumpy(), info["loss"], f"loss, step {i}")
        check_state(cell, state)
        infos.append(info)
    return infos


@pytest.mark.parametrize("algorithm,options", CASES)
def test_subset_steps_match_numpy_reference(mode, algorithm, options):
    cell = make_cell(algorithm, initial_params(), rho=0.05,
                     **({"eta": 0.5} if algorithm == "sharpdro" else {}), **options)
    infos = reference_run(cell, algorithm, options)
    if options.get("pass2_fraction") == 5 / 12:  # the case is what its comment says
        index = infos[1]["pass2_index"][0]
        assert len(index) == 5 and len({i % 3 for i in index}) == 2, index


def test_the_reference_tells_the_subset_from_the_whole_batch():
    """The comparisons above can fail: each subset rule moves the weights by more than the
    tolerance away from the whole-batch step (and the two rules from each other)."""
    params = initial_params()
    x, label, group = batch(0)
    state = {"params": params, "buf": {k: np.zeros_like(v) for k, v in params.items()},
             "w": np.full(G, 1.0 / G)}
    out = {}
    for name, extra in [("full", {}), ("sample", {"pass2_fraction": 0.5, "pass2_rule": "sample"}),
                        ("top", {"pass2_fraction": 0.5, "pass2_rule": "top"})]:
        out[name] = ref.step("sharpdro", state, x, label, group, G, LR, MOMENTUM, WD, eta=0.5,
                             **extra)[0]["buf"]
    for a, b in [("full", "sample"), ("full", "top"), ("sample", "top")]:
        assert max(np.abs(out[a][k] - out[b][k]).max() for k in ref.NAMES) > 1e-3, (a, b)


@pytest.mark.parametrize("algorithm,default,explicit", [
    ("sharpdro", {}, {"pass2_fraction": 1.0, "pass2_rule": "top", "seed": 5}),
    ("sharpdro", {}, {"pass2_fraction": 1.0, "pass2_rule": "sample"}),
    ("sharpdro_agnostic", {}, {"pass2_selected": False})])
def test_the_whole_batch_is_the_default_bit_for_bit(mode, algorithm, default, explicit):
    assert_same_steps(make_cell(algorithm, initial_params(), **default),
                      make_cell(algorithm, initial_params(), **explicit))


@pytest.mark.parametrize("algorithm,options", [
    ("sharpdro", {"pass2_fraction": 0.25}), ("sharpdro", {"pass2_fraction": 0.25, "pass2_rule": "top"}),
    ("sharpdro_agnostic", {"pass2_selected": True})])
def test_batchnorm_statistics_are_those_of_pass_one(mode, algorithm, options):
    """Pass 2 normalises the subset by its own statistics; the moving ones end the step as
    pass 1 alone leaves them, bit for bit."""
    params = initial_params()
    x, label, group = batch(0)
    two_pass = make_cell(algorithm, params, **options)
    one_pass = make_cell("erm", params)
    run(two_pass, x, label, group)
    run(one_pass, x, label, group)
    for name in ("moving_mean", "moving_variance"):
        np.testing.assert_array_equal(getattr(two_pass.network.bn, name).asnumpy(),
                                      getattr(one_pass.network.bn, name).asnumpy(), err_msg=name)


def test_draws_follow_the_weights_and_depend_on_seed_step_rank_only(graph_mode):
    """The counter-based draws: the same (seed, step, rank) gives the same numbers (a resumed
    run draws what the uninterrupted one drew), another gives others; indices come out with
    frequency a_i / A (to 4 standard errors over 40000 draws), and the numbers equal the
    reference's hash."""
    import mindspore as ms
    from sharpdro.selection import draw_by_weight, uniforms

    step = ms.Tensor(7, ms.int32)
    u = uniforms(11, step, 0, 40000).asnumpy()
    np.testing.assert_array_equal(u, uniforms(11, step, 0, 40000).asnumpy())
    np.testing.assert_array_equal(u[:50], ref.uniforms(11, 7, 0, 50))
    for other in [uniforms(12, step, 0, 50), uniforms(11, ms.Tensor(8, ms.int32), 0, 50),
                  uniforms(11, step, 1, 50)]:
        assert not np.array_equal(other.asnumpy(), u[:50])
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.01
    a = np.array([0.5, 0.05, 0.05, 0.2, 0.0001, 0.1999], np.float32)
    index = draw_by_weight(ms.Tensor(a), ms.Tensor(u)).asnumpy()
    freq = np.bincount(index, minlength=len(a)) / len(u)
    p = a / a.sum()
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / len(u)) + 1e-4), (freq, p)


def test_sampled_sharpness_is_unbiased():
    """E[J^] = J for the 'sample' rule (SPEC 3b): the mean of the estimate over 4000
    seeds equals the whole-batch J within 4 standard errors; 'top' is biased here."""
    from reference import _coef_weighted, forward, group_stats, pass2_subset, per_sample_loss

    params = initial_params()
    x, label, group = batch(0)
    counts = np.bincount(group, minlength=G).astype(float)
    w = np.array([0.1, 0.2, 0.3, 0.4])
    rise = per_sample_loss(forward({k: v * 1.1 for k, v in params.items()}, x)[0], label) \
        - per_sample_loss(forward(params, x)[0], label)
    j = (w * group_stats(rise, group, G)[0]).sum()
    a = _coef_weighted(w, group, counts)
    estimates = []
    for seed in range(4000):
        index, coef = pass2_subset(a, 3, "sample", seed, 0, 0)
        estimates.append((coef * rise[index]).sum())
    estimates = np.array(estimates)
    assert abs(estimates.mean() - j) < 4 * estimates.std() / np.sqrt(len(estimates))
    index, coef = pass2_subset(a, 3, "top", 0, 0, 0)
    assert abs((coef * rise[index]).sum() - j) > 10 * estimates.std() / np.sqrt(len(estimates))


@pytest.mark.parametrize("options,message", [
    ({"pass2_fraction": 0.0}, r"pass2_fraction: 0.0 must be > 0.0"),
    ({"pass2_fraction": 1.5}, r"pass2_fraction: 1.5 must be <= 1.0"),
    ({"pass2_rule": "random"}, r"pass2_rule: 'random' is not one of"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        make_cell("sharpdro", initial_params(), **options)


def test_options_belong_to_their_algorithms():
    with pytest.raises(ValueError, match="takes options"):
        make_cell("sam", initial_params(), pass2_fraction=0.5)
    with pytest.raises(ValueError, match="takes options"):
        make_cell("sharpdro", initial_params(), pass2_selected=True)
