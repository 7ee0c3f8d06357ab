"""Models: shapes, 1-channel inputs, the WRN layout of SPEC section 6, bad input."""
import numpy as np
import pytest

import mindspore as ms

from sharpdro.models import create_model, create_model_from_config
from sharpdro.models.wrn import WideResNet


def count(net):
    return sum(int(np.prod(p.shape)) for p in net.trainable_params())


def test_wrn_28_2_layout():
    net = WideResNet(10, 3, depth=28, widen_factor=2)
    assert len(net.blocks) == 12
    # widths 16-32-64-128: the head BatchNorm has 128 channels, the classifier 128 inputs
    assert net.fc.weight.shape == (10, 128)
    assert 1.4e6 < count(net) < 1.5e6  # WRN-28-2 has ~1.47 M parameters
    first = net.blocks[0]
    assert first.activate_before_residual and first.projection
    assert not any(b.activate_before_residual for b in list(net.blocks)[1:])
    # projections exactly where the width or the stride changes (first block of each stage)
    assert [b.projection for b in net.blocks] == [True, False, False, False] * 3
    assert np.all(net.fc.bias.asnumpy() == 0)
    bn = net.bn
    # MindSpore momentum 0.9 (kept share) is stored as the update share 0.1 (PyTorch default)
    assert bn.momentum == pytest.approx(0.1) and bn.eps == pytest.approx(1e-5)


@pytest.mark.parametrize("name,options,size", [
    ("small_cnn", {}, 28), ("wrn", {"depth": 16, "widen_factor": 2}, 28),
    ("resnet18", {}, 32)])
def test_one_channel_inputs(name, options, size):
    net = create_model(name, 10, 1, **options)
    net.set_train(False)
    out = net(ms.Tensor(np.zeros((2, 1, size, size), np.float32)))
    assert out.shape == (2, 10)


def test_from_config_passes_declared_options_only():
    net = create_model_from_config({"name": "wrn", "depth": 16, "widen_factor": 1}, 3, 3)
    assert len(net.blocks) == 6
    small = create_model_from_config({"name": "small_cnn", "depth": 16, "widen_factor": 1}, 3, 3)
    assert small.fc.weight.shape[0] == 3


def test_bad_input():
    with pytest.raises(ValueError, match="unknown model 'wrm'.*did you mean 'wrn'"):
        create_model("wrm", 10)
    with pytest.raises(ValueError, match="6n"):
        create_model("wrn", 10, depth=27)
    with pytest.raises(ValueError, match="takes options"):
        create_model("small_cnn", 10, depth=28)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("small_cnn", 0)


def test_leaky_relu_matches_mindspore(mode):
    from mindspore import nn
    from sharpdro.models.wrn import LeakyReLU

    act = LeakyReLU(0.1)
    x = ms.Tensor(np.linspace(-3, 3, 61).astype(np.float32))
    np.testing.assert_allclose(act(x).asnumpy(), nn.LeakyReLU(0.1)(x).asnumpy(),
                               rtol=1e-6, atol=1e-7)

    def total(v):
        return act(v).sum()

    grad = ms.grad(total)(x).asnumpy()
    np.testing.assert_allclose(grad, np.where(x.asnumpy() > 0, 1.0, 0.1), rtol=1e-6)


def test_small_cnn_pooling_matches_maxpool2d(mode):
    """The training-time pooling (MaxPoolWithArgmax, fast gradient on the CPU) gives
    nn.MaxPool2d's values and gradient, ties included (ReLU zeros tie in most windows);
    inference runs nn.MaxPool2d itself."""
    from mindspore import nn
    from sharpdro.models.small_cnn import MaxPool2x2

    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(size=(2, 3, 8, 6)), 0).astype(np.float32)
    x[0, 0, :2, :2] = 1.5  # a window of four equal positive values
    x = ms.Tensor(x)
    weight = ms.Tensor(rng.normal(size=(2, 3, 4, 3)).astype(np.float32))
    ours, reference = MaxPool2x2(), nn.MaxPool2d(2, 2)
    assert ours.fast_grad  # these tests run on the CPU

    def grad_of(pool):
        class Weighted(nn.Cell):
            def __init__(self):
                super().__init__()
                self.pool = pool

            def construct(self, v):
                return (self.pool(v) * weight).sum()

        return ms.grad(Weighted())(x).asnumpy()

    for train in (True, False):
        ours.set_train(train)
        np.testing.assert_array_equal(ours(x).asnumpy(), reference(x).asnumpy())
        np.testing.assert_array_equal(grad_of(ours), grad_of(reference))
    ours.set_train(True)
    g = grad_of(ours)
    assert g[0, 0, 0, 0] != 0 and np.all(g[0, 0, :2, :2].ravel()[1:] == 0)  # first maximum
