"""WideResNet as in the authors' code (SPEC section 6): pre-activation blocks, LeakyReLU 0.1."""
from mindspore import nn, ops
from mindspore.common.initializer import HeNormal, XavierNormal, Zero

from ..field import Field
from .registry import MODELS

LEAKY_SLOPE = 0.1


class LeakyReLU(nn.Cell):
    """max(x, slope x) written as slope x + (1 - slope) relu(x).

    Same values (to 1 ulp) and gradient, but MindSpore 2.10's CPU backend runs
    nn.LeakyReLU's forward and backward through Select/Maximum kernels that are ~5x slower
    than ReLU's (43 vs 8 ms on a 128x32x32x32 tensor; ~15 % of a WRN-28-2 step).
    """

    def __init__(self, slope):
        super().__init__()
        self.slope = float(slope)

    def construct(self, x):
        return self.slope * x + (1.0 - self.slope) * ops.relu(x)


def _conv(in_c, out_c, kernel, stride):
    return nn.Conv2d(in_c, out_c, kernel, stride=stride, pad_mode="pad",
                     padding=kernel // 2, has_bias=False,
                     weight_init=HeNormal(mode="fan_out", nonlinearity="relu"))


def _bn(channels):
    # The authors' constructor drops its momentum/eps arguments, so PyTorch defaults act:
    # momentum 0.1 (MindSpore 0.9), eps 1e-5.
    return nn.BatchNorm2d(channels, momentum=0.9, eps=1e-5)


class _Block(nn.Cell):
    """BN -> act -> conv(stride) -> BN -> act -> conv, plus a shortcut.

    ``activate_before_residual`` (first block of the network): the shortcut sees the
    activated input; elsewhere it sees the raw block input.
    """

    def __init__(self, in_c, out_c, stride, activate_before_residual):
        super().__init__()
        self.bn1 = _bn(in_c)
        self.act1 = LeakyReLU(LEAKY_SLOPE)
        self.conv1 = _conv(in_c, out_c, 3, stride)
        self.bn2 = _bn(out_c)
        self.act2 = LeakyReLU(LEAKY_SLOPE)
        self.conv2 = _conv(out_c, out_c, 3, 1)
        self.projection = in_c != out_c or stride != 1
        self.shortcut = _conv(in_c, out_c, 1, stride) if self.projection else nn.Identity()
        self.activate_before_residual = activate_before_residual

    def construct(self, x):
        pre = self.act1(self.bn1(x))
        if self.activate_before_residual:
            x = pre
        out = self.conv2(self.act2(self.bn2(self.conv1(pre))))
        return self.shortcut(x) + out


class WideResNet(nn.Cell):
    def __init__(self, num_classes, in_channels=3, depth=28, widen_factor=2):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise ValueError(f"WideResNet depth must be 6n + 4 (10, 16, 22, 28, ...), got {depth}")
        if widen_factor < 1:
            raise ValueError(f"widen_factor must be >= 1, got {widen_factor}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.stem = _conv(in_channels, widths[0], 3, 1)
        blocks = []
        for stage, stride in enumerate((1, 2, 2)):
            for i in range(n):
                in_c = widths[stage] if i == 0 else widths[stage + 1]
                blocks.append(_Block(in_c, widths[stage + 1], stride if i == 0 else 1,
                                     activate_before_residual=(stage == 0 and i == 0)))
        self.blocks = nn.SequentialCell(blocks)
        self.bn = _bn(widths[3])
        self.act = LeakyReLU(LEAKY_SLOPE)
        self.fc = nn.Dense(widths[3], num_classes, weight_init=XavierNormal(), bias_init=Zero())

    def construct(self, x):
        x = self.act(self.bn(self.blocks(self.stem(x))))
        return self.fc(ops.mean(x, axis=(2, 3)))


@MODELS.register("wrn", head="fc", options={
    "depth": Field(28, int, "WideResNet depth (6n + 4)", low=10),
    "widen_factor": Field(2, int, "WideResNet width multiplier", low=1)})
def wrn(num_classes, in_channels=3, depth=28, widen_factor=2):
    return WideResNet(num_classes, in_channels, depth, widen_factor)
