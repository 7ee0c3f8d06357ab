"""Shared test helpers: small data as mindspore datasets, and the tiny network of
tests/reference.py with the functions that run a cell on it and compare with the reference."""
import numpy as np

import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn

import reference as ref
from sharpdro.algorithms import create_train_step
from sharpdro.optim import create_optimizer


def textured(n, size, channels, seed=0):
    """uint8 images N x H x W x C with texture and a gradient, so that blurs and warps have
    something to move (for the corruption tests)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random((n, size, size, channels)), sigma=(0, 1.0, 1.0, 0))
    x = (x - x.min()) / (x.max() - x.min())
    yy, xx = np.mgrid[0:size, 0:size] / size
    x = 0.5 * x + 0.125 * (yy + xx)[None, :, :, None] + 0.15
    return np.clip(x * 255, 0, 255).astype(np.uint8)


def random_arrays(n, channels, size, num_classes, num_groups, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, channels, size, size), dtype=np.float32),
            rng.integers(0, num_classes, n).astype(np.int32),
            rng.integers(0, num_groups, n).astype(np.int32))


def as_dataset(image, label, group, batch_size):
    data = ds.NumpySlicesDataset({"image": image, "label": label, "group": group}, shuffle=False)
    return data.batch(batch_size, drop_remainder=True)


N, D, H, C, G = 12, 5, 7, 4, 4
LR, MOMENTUM, WD = 0.1, 0.9, 5e-4


class TinyNet(nn.Cell):
    """Dense -> BatchNorm1d -> ReLU -> Dense: the network of tests/reference.py."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(D, H, has_bias=False)
        self.bn = nn.BatchNorm1d(H, momentum=0.9, eps=ref.BN_EPS)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(H, C)

    def construct(self, x):
        return self.fc2(self.relu(self.bn(self.fc1(x))))


NAME_OF = {"fc1.weight": "w1", "bn.gamma": "gamma", "bn.beta": "beta",
           "fc2.weight": "w2", "fc2.bias": "b2"}


def initial_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"w1": rng.normal(0, 0.5, (H, D)), "gamma": rng.uniform(0.5, 1.5, H),
            "beta": rng.normal(0, 0.1, H), "w2": rng.normal(0, 0.5, (C, H)),
            "b2": rng.normal(0, 0.1, C)}


def batch(seed, groups=None):
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(0, 1, (N, D))
    label = rng.integers(0, C, N)
    group = rng.integers(0, G, N) if groups is None else np.asarray(groups)
    return x, label, group


def make_cell(algorithm, params, **options):
    net = TinyNet()
    for p in net.trainable_params():
        p.set_data(ms.Tensor(params[NAME_OF[p.name]].astype(np.float32)))
    opt = create_optimizer(net.trainable_params(), LR, MOMENTUM, WD, decay_bn_bias=True)
    cell = create_train_step(algorithm, net, opt, G, **options)
    cell.set_train()
    return cell


def run(cell, x, label, group):
    return cell(ms.Tensor(x.astype(np.float32)), ms.Tensor(label.astype(np.int32)),
                ms.Tensor(group.astype(np.int32)))


def assert_same_steps(a, b, steps=2):
    """Cells ``a`` and ``b`` give bit-identical losses over ``steps`` batches and end with
    bit-identical parameters (weights, optimizer and group state)."""
    for i in range(steps):
        x, label, group = batch(i)
        np.testing.assert_array_equal(run(a, x, label, group).asnumpy(),
                                      run(b, x, label, group).asnumpy())
    for p, q in zip(a.get_parameters(), b.get_parameters()):
        np.testing.assert_array_equal(p.asnumpy(), q.asnumpy(), err_msg=p.name)


def assert_close(actual, expected, what):
    """1e-5 relative, measured against the tensor's largest entry (float32 vs float64)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = max(np.abs(expected).max(), 1e-12)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


def check_state(cell, state):
    moments = {p.name[len("moments."):]: p.asnumpy() for p in cell.optimizer.moments}
    for p in cell.network.trainable_params():
        key = NAME_OF[p.name]
        assert_close(p.asnumpy(), state["params"][key], f"weights {key}")
        assert_close(moments[p.name], state["buf"][key], f"momentum buffer {key}")
    assert_close(cell.group_weights.asnumpy(), state["w"], "group weights")


class NoBNNet(nn.Cell):
    """Dense -> ReLU -> Dense: TinyNet without BatchNorm, whose data-parallel step equals
    the one-process step on the global batch exactly (no per-rank batch statistics)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(D, H, has_bias=False)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(H, C)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def global_batch(step, size=2 * N):
    """A global batch for the data-parallel tests (group 3 absent at step 1)."""
    rng = np.random.default_rng(200 + step)
    x = rng.normal(0, 1, (size, D))
    label = rng.integers(0, C, size)
    group = rng.integers(0, G - 1 if step == 1 else G, size)
    return x, label, group


def make_nobn_cell(algorithm, world_size=1, **options):
    net = NoBNNet()
    params = initial_params()
    for p in net.trainable_params():
        p.set_data(ms.Tensor(params[NAME_OF[p.name]].astype(np.float32)))
    opt = create_optimizer(net.trainable_params(), LR, MOMENTUM, WD, decay_bn_bias=True)
    cell = create_train_step(algorithm, net, opt, G, world_size, **options)
    cell.set_train()
    return cell


def cell_state(cell):
    """Every non-scratch parameter of a train cell (weights, moments, group state), as NumPy."""
    return {p.name: p.asnumpy().copy() for p in cell.get_parameters()
            if not p.name.startswith("scratch")}


# the data-parallel equality cases: (name, algorithm, options)
DP_CASES = [("erm", "erm", {}), ("groupdro", "groupdro", {"eta": 0.5}),
            ("sam", "sam", {"rho": 0.05}), ("sharpdro", "sharpdro", {"rho": 0.05, "eta": 0.5}),
            ("sharpdro_weighted", "sharpdro", {"rho": 0.05, "eta": 0.5, "eps_source": "weighted"}),
            ("sharpdro_unsynced", "sharpdro", {"rho": 0.05, "eta": 0.5, "sync_perturbation": False}),
            ("agnostic", "sharpdro_agnostic", {"rho": 0.05, "fraction": 0.5}),
            ("groupdro_adjusted", "groupdro", {"eta": 0.5, "adjustment": 2.0,
                                               "group_counts": [400, 100, 25, 4]}),
            ("irm", "irm", {"irm_lambda": 5.0, "anneal_steps": 1}),
            ("vrex", "vrex", {"vrex_lambda": 5.0, "anneal_steps": 1}),
            ("cvar", "cvar", {"fraction": 0.25}),
            # pass 2 on a subset (SPEC 3b): each rank draws from its own slice, so these
            # equal the reference of the per-slice rule, not the one-process step
            ("subset_sample", "sharpdro", {"rho": 0.05, "eta": 0.5, "pass2_fraction": 0.25,
                                           "seed": 4}),
            ("subset_top", "sharpdro", {"rho": 0.05, "eta": 0.5, "pass2_fraction": 0.25,
                                        "pass2_rule": "top"}),
            ("agnostic_selected", "sharpdro_agnostic", {"rho": 0.05, "fraction": 0.5,
                                                        "pass2_selected": True})]
PER_SLICE = ("subset_sample", "subset_top", "agnostic_selected", "agnostic")
DP_STEPS = 2


# train.py on tiny synthetic data: 2 epochs of 22 steps, evaluation in a second
TINY = ["--data.dataset", "synthetic", "--image_size", "12", "--channels", "1",
        "--num_classes", "3", "--num_per_class", "120", "--epochs", "2", "--batch_size", "16",
        "--eval_batch_size", "64", "--log_every", "5", "--mode", "graph"]


def tiny(cache, run_dir, *extra):
    """train.py arguments of a tiny run in ``run_dir`` (later arguments win)."""
    return ["--config", "configs/quickstart.yaml", "--run_dir", str(run_dir), "--cache_dir", cache,
            *TINY, *extra]


def read_jsonl(path):
    """The records of a JSON-lines file (eval.jsonl)."""
    import json

    with open(path) as f:
        return [json.loads(line) for line in f]


def crash_at_epoch_2(monkeypatch):
    """Make train.py crash when it builds epoch 2's data (after epoch 1's checkpoint);
    returns the function that undoes it."""
    from datasets.build import DataBundle

    original = DataBundle.train_epoch

    def crashing(self, epoch):
        if epoch == 1:
            raise RuntimeError("simulated crash")
        return original(self, epoch)

    monkeypatch.setattr(DataBundle, "train_epoch", crashing)
    return lambda: monkeypatch.setattr(DataBundle, "train_epoch", original)


def group_accuracy_batch():
    """Fixed (logits, labels, groups) for GroupAccuracy: 5 groups, group 3 absent, and the
    hand count of correct / total per group."""
    rng = np.random.default_rng(42)
    groups = np.array([0, 0, 1, 1, 1, 2, 4, 4, 0, 2, 1, 4], np.int32)
    labels = rng.integers(0, 3, len(groups)).astype(np.int32)
    logits = rng.normal(size=(len(groups), 3)).astype(np.float32)
    hit = logits.argmax(1) == labels
    correct = [int(hit[groups == g].sum()) for g in range(5)]
    total = [int((groups == g).sum()) for g in range(5)]
    return logits, labels, groups, correct, total
