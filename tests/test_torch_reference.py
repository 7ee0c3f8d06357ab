"""The PyTorch side of benchmarks/step_time.py computes the same train step as ours.

The benchmark's ratios mean something only if both frameworks run the same algorithm:
the small CNN with PyTorch's initial weights copied into ours, two steps of every
algorithm, then the weights, BatchNorm moving statistics and group weights compared.
PyTorch is never a dependency of the project: without it this module is skipped.
"""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mindspore as ms  # noqa: E402

from sharpdro.algorithms import create_train_step  # noqa: E402
from sharpdro.models import create_model  # noqa: E402
from sharpdro.optim import create_optimizer  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
import step_time  # noqa: E402
import torch_reference  # noqa: E402

BATCH, SIZE = 24, 8


def torch_state(step):
    """name -> array in the order of the small CNN's modules (parameters, then buffers)."""
    out = {}
    for name, p in step.model.named_parameters():
        out[name] = p.detach().numpy().copy()
    for name, b in step.model.named_buffers():
        if "num_batches" not in name:
            out[name] = b.detach().numpy().copy()
    return out


@pytest.mark.parametrize("algorithm", torch_reference.ALGORITHMS)
def test_torch_step_equals_ours(graph_mode, algorithm):
    torch.set_num_threads(1)
    reference = torch_reference.Step("small_cnn", algorithm, BATCH, SIZE)
    start = torch_state(reference)
    net = create_model("small_cnn", 10, 3)
    ours = list(net.get_parameters())
    # same construction order: conv, bn (gamma, beta, mean, var) per stage, then fc
    torch_keys = [k for k in start if k.endswith(("weight", "bias"))]
    buffers = [k for k in start if k.endswith(("running_mean", "running_var"))]
    assert len(ours) == len(torch_keys) + len(buffers)
    pairs = (list(zip([p for p in ours if p.requires_grad], torch_keys))
             + list(zip([p for p in ours if not p.requires_grad], buffers)))
    for p, key in pairs:
        assert tuple(p.shape) == start[key].shape, (p.name, key)
        p.set_data(ms.Tensor(start[key]))
    opt = create_optimizer(net.trainable_params(), 0.03)
    cell = create_train_step(algorithm, net, opt, 6, **step_time.OPTIONS[algorithm])
    cell.set_train()
    inputs = (ms.Tensor(reference.x.numpy()), ms.Tensor(reference.y.numpy().astype(np.int32)),
              ms.Tensor(reference.s.numpy().astype(np.int32)))
    for _ in range(2):
        theirs_loss = reference()
        our_loss = float(cell(*inputs).asnumpy())
        assert our_loss == pytest.approx(theirs_loss, rel=1e-4)
    after = torch_state(reference)
    for p, key in pairs:
        np.testing.assert_allclose(p.asnumpy(), after[key], rtol=2e-4, atol=2e-5,
                                   err_msg=f"{p.name} against {key}")
    if algorithm in ("groupdro", "sharpdro"):
        np.testing.assert_allclose(cell.group_weights.asnumpy(), reference.weights.numpy(),
                                   rtol=1e-5)
    # the comparison can fail: the weights moved, and differently from a plain SGD step
    assert not np.allclose(after[torch_keys[0]], start[torch_keys[0]])
