"""A small CNN with BatchNorm for quick CPU runs (three conv stages, ~0.1 M parameters)."""
import contextlib
import logging

import mindspore as ms
from mindspore import log as ms_log
from mindspore import nn, ops
from mindspore.common.initializer import HeNormal, XavierNormal, Zero

from .registry import MODELS


class MaxPool2x2(nn.Cell):
    """2x2 max pooling, stride 2 (``nn.MaxPool2d(2, 2)``'s values and gradient).

    In training it runs through ``MaxPoolWithArgmax``: MindSpore 2.10's CPU ``MaxPoolGrad``
    recomputes the pooling and took 80 of the small CNN's 257 ms step (batch 128, 32 px);
    the argmax gradient is a scatter (28 against 52 ms forward + backward on
    128x32x32x32). The gradient goes to the first maximum of a window in both. Only on the
    CPU, where it was measured; inference and export always use ``MaxPool2d`` (the argmax
    op is deprecated since MindSpore 2.0, and ONNX export does not take it).
    """

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2)
        self.fast_grad = ms.get_context("device_target") == "CPU"
        if self.fast_grad:
            with _quiet_deprecation("MaxPoolWithArgmax"):
                self.pool_with_argmax = ops.MaxPoolWithArgmax(kernel_size=2, strides=2)

    def construct(self, x):
        if self.training and self.fast_grad:
            return self.pool_with_argmax(x)[0]
        return self.pool(x)


@contextlib.contextmanager
def _quiet_deprecation(name):
    """Hide MindSpore's one-off deprecation warning for ``name`` (a choice made knowingly
    above, not something the user can act on)."""
    logger = getattr(ms_log, "_get_logger", lambda: None)()
    quiet = _DropMessages(name)
    if logger is not None:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        if logger is not None:
            logger.removeFilter(quiet)


class _DropMessages(logging.Filter):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def filter(self, record):
        return self.text not in record.getMessage()


def _stage(in_c, out_c):
    return [nn.Conv2d(in_c, out_c, 3, pad_mode="pad", padding=1, has_bias=False,
                      weight_init=HeNormal(mode="fan_out", nonlinearity="relu")),
            nn.BatchNorm2d(out_c), nn.ReLU()]


class SmallCNN(nn.Cell):
    def __init__(self, num_classes, in_channels=3, width=32):
        super().__init__()
        self.features = nn.SequentialCell(
            _stage(in_channels, width) + [MaxPool2x2()]
            + _stage(width, 2 * width) + [MaxPool2x2()]
            + _stage(2 * width, 4 * width))
        self.fc = nn.Dense(4 * width, num_classes, weight_init=XavierNormal(), bias_init=Zero())

    def construct(self, x):
        return self.fc(ops.mean(self.features(x), axis=(2, 3)))


@MODELS.register("small_cnn", head="fc")
def small_cnn(num_classes, in_channels=3):
    return SmallCNN(num_classes, in_channels)
