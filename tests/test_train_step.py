"""The train-one-step cells against the NumPy reference of SPEC sections 3 and 5."""
import numpy as np
import pytest

import mindspore as ms

import reference as ref
from helpers import (G, LR, MOMENTUM, NAME_OF, WD, TinyNet, assert_close, assert_same_steps,
                     batch, check_state, initial_params, make_cell, run)
from sharpdro.algorithms import create_train_step
from sharpdro.optim import create_optimizer

OPTIONS = {
    "erm": {},
    "groupdro": {"eta": 0.5},
    "sam": {"rho": 0.05},
    "sharpdro": {"rho": 0.05, "eta": 0.5},
    "irm": {}, "vrex": {}, "cvar": {},
}
COUNTS = [400, 100, 25, 4]  # training images per group: the adjustment C / sqrt(n_g)
CASES = [("erm", {}), ("groupdro", {}), ("sam", {}), ("sharpdro", {}),
         ("sam", {"adaptive": True}), ("sharpdro", {"adaptive": True}),
         ("sharpdro", {"eps_source": "weighted"}), ("sharpdro", {"absent_groups": "skip"}),
         ("groupdro", {"absent_groups": "skip"}),
         ("groupdro", {"adjustment": 2.0, "group_counts": COUNTS}),
         ("sharpdro", {"adjustment": 2.0, "group_counts": COUNTS}),
         ("sharpdro", {"adjustment": 2.0, "group_counts": COUNTS, "absent_groups": "skip"}),
         # the anneal switch between the two steps: lambda_t 1, then lambda
         ("irm", {"irm_lambda": 5.0, "anneal_steps": 1}), ("irm", {"anneal_steps": 0}),
         ("vrex", {"vrex_lambda": 5.0, "anneal_steps": 1}), ("vrex", {"anneal_steps": 0}),
         ("cvar", {"fraction": 0.25}), ("cvar", {"fraction": 1.0})]


@pytest.mark.parametrize("algorithm,extra", CASES)
def test_steps_match_numpy_reference(mode, algorithm, extra):
    """Two steps (so momentum buffers and group weights carry over) against float64 NumPy.

    The second batch lacks group 3, exercising the absent-group rule.
    """
    options = {**OPTIONS[algorithm], **extra}
    params = initial_params()
    cell = make_cell(algorithm, params, **options)
    state = {"params": params, "buf": {k: np.zeros_like(v) for k, v in params.items()},
             "w": np.full(G, 1.0 / G)}
    ref_opts = {k: v for k, v in options.items() if k != "absent_groups"}
    ref_opts["absent"] = options.get("absent_groups", "zero")
    for i, groups in enumerate([None, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]]):
        x, label, group = batch(i, groups)
        loss = run(cell, x, label, group)
        state, info = ref.step(algorithm, state, x, label, group, G, LR, MOMENTUM, WD, **ref_opts)
        assert_close(loss.asnumpy(), info["loss"], f"loss, step {i}")
        assert_close(cell.last_group_loss.asnumpy(), info["group_loss"], f"group loss, step {i}")
        np.testing.assert_array_equal(cell.last_group_count.asnumpy(), info["counts"])
        check_state(cell, state)


def test_reference_is_sensitive():
    """The comparison above can fail: every other algorithm differs from ERM by more than
    the tolerance."""
    params = initial_params()
    x, label, group = batch(0)
    state = {"params": params, "buf": {k: np.zeros_like(v) for k, v in params.items()},
             "w": np.full(G, 1.0 / G)}
    erm, _ = ref.step("erm", state, x, label, group, G, LR, MOMENTUM, WD)
    for algorithm in ("sam", "sharpdro", "groupdro", "irm", "vrex", "cvar"):
        other, _ = ref.step(algorithm, state, x, label, group, G, LR, MOMENTUM, WD, rho=0.05,
                            eta=0.5, anneal_steps=0)
        diff = max(np.abs(other["buf"][k] - erm["buf"][k]).max() for k in ref.NAMES)
        assert diff > 1e-3, algorithm


@pytest.mark.parametrize("algorithm", ["sam", "sharpdro"])
def test_batchnorm_statistics_are_those_of_pass_one(mode, algorithm):
    """Moving statistics after a two-pass step equal those of pass 1 alone, bit for bit."""
    params = initial_params()
    x, label, group = batch(0)
    two_pass = make_cell(algorithm, params, **OPTIONS[algorithm])
    one_pass = make_cell("erm", params)
    before = two_pass.network.bn.moving_mean.asnumpy().copy()
    run(two_pass, x, label, group)
    run(one_pass, x, label, group)
    for name in ("moving_mean", "moving_variance"):
        got = getattr(two_pass.network.bn, name).asnumpy()
        want = getattr(one_pass.network.bn, name).asnumpy()
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert not np.array_equal(two_pass.network.bn.moving_mean.asnumpy(), before)
    # pass 1 moved the mean by 0.1 * batch mean, as the reference says
    _, info = ref.step("erm", {"params": params, "buf": {k: 0 * v for k, v in params.items()},
                               "w": np.full(G, 1.0 / G)}, x, label, group, G, LR, MOMENTUM, WD)
    assert_close(two_pass.network.bn.moving_mean.asnumpy(), info["moving_mean"], "moving mean")


def test_sam_with_zero_rho_is_erm(mode):
    params = initial_params()
    sam = make_cell("sam", params, rho=0.0)
    erm = make_cell("erm", params)
    for i in range(2):
        x, label, group = batch(i)
        run(sam, x, label, group)
        run(erm, x, label, group)
    for a, b in zip(sam.network.trainable_params(), erm.network.trainable_params()):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6, atol=1e-7, err_msg=a.name)


def test_sharpdro_zero_rho_zero_eta(mode):
    """rho = 0: pass 2 is pass 1, so the direction is grad mean + sum_s w_s grad L_s."""
    params = initial_params()
    cell = make_cell("sharpdro", params, rho=0.0, eta=0.0)
    x, label, group = batch(0)
    run(cell, x, label, group)
    # with uniform fixed weights, the reference with groupdro adds the robust gradient
    state = {"params": params, "buf": {k: np.zeros_like(v) for k, v in params.items()},
             "w": np.full(G, 1.0 / G)}
    want, _ = ref.step("sharpdro", state, x, label, group, G, LR, MOMENTUM, WD, rho=0.0, eta=0.0)
    check_state(cell, want)
    np.testing.assert_allclose(cell.group_weights.asnumpy(), np.full(G, 1.0 / G), rtol=1e-6)


def test_weight_decay_grouping(mode):
    """decay_bn_bias=False: BatchNorm scale/shift and biases get no weight decay."""
    params = initial_params()
    x, label, group = batch(0)
    cells = {}
    for decay_all in (True, False):
        net = TinyNet()
        for p in net.trainable_params():
            p.set_data(ms.Tensor(params[NAME_OF[p.name]].astype(np.float32)))
        opt = create_optimizer(net.trainable_params(), LR, MOMENTUM, 0.5, decay_bn_bias=decay_all)
        cells[decay_all] = create_train_step("erm", net, opt, G)
        cells[decay_all].set_train()
        run(cells[decay_all], x, label, group)
    after = {k: {p.name: p.asnumpy() for p in c.network.trainable_params()} for k, c in cells.items()}
    for name, key in NAME_OF.items():
        diff = after[False][name] - after[True][name]
        if key in ("gamma", "beta", "b2"):  # not decayed: differs by lr * wd * theta
            assert_close(diff, LR * 0.5 * params[key], name)
        else:
            np.testing.assert_array_equal(diff, 0, err_msg=name)


@pytest.mark.parametrize("algorithm,extra", [("sam", {}), ("sharpdro", {}),
                                             ("sharpdro", {"eps_source": "weighted"}),
                                             ("sharpdro_agnostic", {})])
def test_graph_compiles_without_side_effect_warnings(graph_mode, capfd, algorithm, extra):
    """Unpacking unused outputs of a forward-backward made the compiler print "Some side
    effect nodes were eliminated by mistake" for every two-pass cell (harmless, but alarming)."""
    capfd.readouterr()
    cell = make_cell(algorithm, initial_params(), **extra)
    run(cell, *batch(0))
    err = capfd.readouterr().err
    assert "side effect nodes were eliminated" not in err, err[-2000:]


@pytest.mark.parametrize("algorithm", ["groupdro", "sharpdro"])
def test_adjustment_zero_is_bit_identical_to_the_plain_step(algorithm):
    params = initial_params()
    plain = make_cell(algorithm, params, **OPTIONS[algorithm])
    zero = make_cell(algorithm, params, **OPTIONS[algorithm], adjustment=0.0, group_counts=COUNTS)
    assert_same_steps(plain, zero)


@pytest.mark.parametrize("counts,message", [
    (None, "needs the training images per group"),
    ([1, 2, 3], "group_counts has 3 entries for 4 groups"),
    ([5, -1, 3, 2], r"group_counts\[1\] is -1"),
    ([5, 2.5, 3, 2], r"group_counts\[1\] is 2.5"),
])
def test_adjustment_refuses_bad_group_counts(counts, message):
    with pytest.raises(ValueError, match=message):
        make_cell("groupdro", initial_params(), adjustment=1.0, group_counts=counts)


@pytest.mark.parametrize("value,message", [(-1.0, "must be >= 0"), (float("inf"), "not a finite")])
def test_adjustment_must_be_finite_and_non_negative(value, message):
    with pytest.raises(ValueError, match=message):
        make_cell("sharpdro", initial_params(), adjustment=value, group_counts=COUNTS)


def test_adjustment_is_c_over_root_n_and_zero_for_a_group_without_images():
    from sharpdro.groups import group_adjustment

    np.testing.assert_allclose(group_adjustment(2.0, [4, 0, 100], 3), [1.0, 0.0, 0.2])


@pytest.mark.parametrize("algorithm,extra", [("sam", {}), ("sharpdro", {"adaptive": True}),
                                             ("sharpdro", {"pass2_fraction": 0.5}),
                                             ("sharpdro_agnostic", {})])
def test_pynative_steps_log_no_deprecation_warning(caplog, algorithm, extra):
    """A Python bool or a tuple handed to a MultitypeFuncGraph made MindSpore log "The
    interface 'mindspore.pytype_to_dtype' is deprecated" on every PyNative step."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        cell = make_cell(algorithm, initial_params(), **extra)
        caplog.clear()
        for i in range(2):
            run(cell, *batch(i))
    finally:
        ms.set_context(mode=ms.GRAPH_MODE)
    assert not [r for r in caplog.records if "pytype_to_dtype" in r.getMessage()]
    ms.pytype_to_dtype(bool)  # the control: the warning, when it is logged, is seen here
    assert [r for r in caplog.records if "pytype_to_dtype" in r.getMessage()]
