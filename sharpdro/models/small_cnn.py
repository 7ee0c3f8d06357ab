"""A small CNN with BatchNorm for quick CPU runs (three conv stages, ~0.1 M parameters)."""
from mindspore import nn, ops
from mindspore.common.initializer import HeNormal, XavierNormal, Zero

from .registry import MODELS


def _stage(in_c, out_c):
    return [nn.Conv2d(in_c, out_c, 3, pad_mode="pad", padding=1, has_bias=False,
                      weight_init=HeNormal(mode="fan_out", nonlinearity="relu")),
            nn.BatchNorm2d(out_c), nn.ReLU()]


class SmallCNN(nn.Cell):
    def __init__(self, num_classes, in_channels=3, width=32):
        super().__init__()
        self.features = nn.SequentialCell(
            _stage(in_channels, width) + [nn.MaxPool2d(2, 2)]
            + _stage(width, 2 * width) + [nn.MaxPool2d(2, 2)]
            + _stage(2 * width, 4 * width))
        self.fc = nn.Dense(4 * width, num_classes, weight_init=XavierNormal(), bias_init=Zero())

    def construct(self, x):
        return self.fc(ops.mean(self.features(x), axis=(2, 3)))


@MODELS.register("small_cnn")
def small_cnn(num_classes, in_channels=3):
    return SmallCNN(num_classes, in_channels)
