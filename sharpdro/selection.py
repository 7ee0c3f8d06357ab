"""Worst-case sample selection without severity labels (SPEC section 4, our reconstruction).

A per-sample out-of-distribution score from the logits (higher = more likely corrupted);
the highest-scoring fraction of the batch forms the worst-case set.
"""
import mindspore as ms
from mindspore import ops

from .hparams import SCORES  # noqa: F401  (re-exported; the table checks the choice)


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


def num_selected(batch_size, fraction):
    """At least one sample; round(fraction * batch) otherwise."""
    return max(1, int(round(float(fraction) * int(batch_size))))


def select_top(scores, k):
    """0/1 float mask (N,) of the ``k`` highest scores (ties: the lower index)."""
    _, index = ops.topk(scores, k)
    return ops.one_hot(index, scores.shape[0], ms.Tensor(1.0, ms.float32),
                       ms.Tensor(0.0, ms.float32)).sum(axis=0)
