"""Worst-case sample selection without severity labels (SPEC section 4, our reconstruction).

A per-sample score (higher = more likely corrupted); the highest-scoring fraction of the
batch forms the worst-case set. Scores: from the logits (``ood_score``), the per-sample
loss (computed by the cell), or the image's own noise level (``noise_level``), which needs
no model at all.
"""
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


def num_selected(batch_size, fraction):
    """At least one sample; round(fraction * batch) otherwise."""
    return max(1, int(round(float(fraction) * int(batch_size))))


def select_top(scores, k):
    """0/1 float mask (N,) of the ``k`` highest scores (ties: the lower index)."""
    _, index = ops.topk(scores, k)
    return ops.one_hot(index, scores.shape[0], ms.Tensor(1.0, ms.float32),
                       ms.Tensor(0.0, ms.float32)).sum(axis=0)
