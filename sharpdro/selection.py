"""Worst-case sample selection without severity labels (SPEC section 4, our reconstruction).

A per-sample score (higher = more likely corrupted); the highest-scoring fraction of the
batch forms the worst-case set. Scores: from the logits (``ood_score``), the per-sample
loss (computed by the cell), or the image's own noise level (``noise_level``), which needs
no model at all.
"""
import math

import mindspore as ms
from mindspore import ops



def ood_score(logits, score="msp"):
    """msp: 1 - max softmax probability; energy: -logsumexp(logits) (the free energy);
    entropy: entropy of the softmax. Float32 (N,)."""
    logits = logits.astype(ms.float32)
    log_p = ops.log_softmax(logits, axis=-1)
    if score == "msp":
        return 1.0 - ops.exp(log_p.max(axis=-1))
    if score == "energy":  # -logsumexp, written out: ops.logsumexp fails in graph mode
        top = logits.max(axis=-1)
        return -(top + ops.log(ops.exp(logits - top.reshape(-1, 1)).sum(axis=-1)))
    return -(ops.exp(log_p) * log_p).sum(axis=-1)


def noise_level(images):
    """Per-image noise estimate of a batch N x C x H x W: the mean absolute response to
    Immerkaer's (1996) kernel [[1, -2, 1], [-2, 4, -2], [1, -2, 1]], the difference of two
    Laplacians, which cancels smooth content and edges to first order and keeps the noise.
    Proportional to the noise standard deviation for Gaussian noise; label-free and
    model-free. Written as shifted slices (no convolution weights)."""
    x = images.astype(ms.float32)
    h, w = x.shape[2], x.shape[3]

    def at(dy, dx):
        return x[:, :, dy:h - 2 + dy, dx:w - 2 + dx]

    response = (at(0, 0) + at(0, 2) + at(2, 0) + at(2, 2)
                - 2.0 * (at(0, 1) + at(1, 0) + at(1, 2) + at(2, 1)) + 4.0 * at(1, 1))
    return ops.abs(response).mean(axis=(1, 2, 3))


def pass2_size(batch_size, fraction):
    """k = ceil(fraction * batch), at least 1 (SPEC section 3b); a hair below the product
    so that 0.2 * 130 = 26.000000000000004 stays 26."""
    return max(1, int(math.ceil(float(fraction) * int(batch_size) - 1e-9)))


def num_selected(batch_size, fraction):
    """At least one sample; round(fraction * batch) otherwise."""
    return max(1, int(round(float(fraction) * int(batch_size))))


def _rank(values):
    """Each entry's place in the descending order, ties by position (0 = the largest).
    ``ops.topk`` breaks ties in no fixed order on the CPU, and the group-constant weights of
    pass 2's 'top' rule are all ties; N x N comparisons are nothing at batch sizes."""
    n = values.shape[0]
    pos = ops.arange(0, n, dtype=ms.int32)
    above = values.reshape(1, -1) > values.reshape(-1, 1)
    before = (values.reshape(1, -1) == values.reshape(-1, 1)) & (pos.reshape(1, -1) < pos.reshape(-1, 1))
    return (above | before).astype(ms.int32).sum(axis=1)


def select_top(scores, k):
    """0/1 float mask (N,) of the ``k`` highest scores (ties: the lower index)."""
    return (_rank(scores) < k).astype(ms.float32)


# -- pass 2 on a subset (SPEC section 3b) --------------------------------------------------
# The importance-sampling rule needs uniforms seeded by (seed, step, rank) so that a resumed
# run draws what the uninterrupted one drew. MindSpore's random ops keep a hidden state that
# a checkpoint does not hold, so the draws come from a counter-based hash instead: Wellons'
# "lowbias32" on 32-bit integers, written in int64 arithmetic that never overflows (the
# 32 x 32-bit products are split in 16-bit halves), identical in graph and PyNative mode.
_M32 = 2 ** 32


def _mul32(x, c):
    """x * c mod 2^32 for 0 <= x < 2^32 (int64 tensor) and a 32-bit constant c."""
    return (x * (c & 0xFFFF) + ((x * (c >> 16)) % 65536) * 65536) % _M32


def hash32(x):
    """lowbias32 of an int64 tensor of values in [0, 2^32)."""
    x = ops.bitwise_xor(x, x // 65536)
    x = _mul32(x, 0x7FEB352D)
    x = ops.bitwise_xor(x, x // 32768)
    x = _mul32(x, 0x846CA68B)
    return ops.bitwise_xor(x, x // 65536)


def uniforms(seed, step, rank, k):
    """``k`` numbers in [0, 1) that depend only on (seed, step, rank): the 24 high bits of
    hash(hash(hash(seed) ^ step) ^ (rank * k + j)), j = 0..k-1. ``step`` an integer tensor."""
    key = hash32(ms.Tensor(int(seed) % _M32, ms.int64))
    key = hash32(ops.bitwise_xor(key, step.astype(ms.int64) % _M32))
    j = ops.arange(0, k, dtype=ms.int64) + (int(rank) * int(k)) % _M32
    return (hash32(ops.bitwise_xor(key, j)) // 256).astype(ms.float32) / float(2 ** 24)


def draw_by_weight(weights, u):
    """Indices drawn with probability weights_i / sum(weights), one per entry of ``u``
    (inverse CDF: the first i whose cumulative weight exceeds u * total)."""
    cdf = ops.cumsum(weights, 0)
    target = (u * cdf[-1]).reshape(-1, 1)
    index = (cdf.reshape(1, -1) <= target).astype(ms.int32).sum(axis=1)
    return ops.minimum(index, weights.shape[0] - 1)  # u * total rounding up to total


def top_indices(values, k):
    """Indices of the ``k`` largest values, largest first (ties: the lower index first), the
    entries ``select_top`` marks."""
    n = values.shape[0]
    at = _rank(values).reshape(1, -1) == ops.arange(0, k, dtype=ms.int32).reshape(-1, 1)
    return (at.astype(ms.int32) * ops.arange(0, n, dtype=ms.int32).reshape(1, -1)).sum(axis=1)
