"""Per-sample loss, per-group means and the group-weight update (SPEC section 3, steps 4-5).

Group means use one (N x G) one-hot matrix product with a fixed number of groups G, so
the graph has static shapes; a group absent from the batch gets mean 0 and count 0.
"""
import mindspore as ms
from mindspore import nn, ops

from .groups import check_group_indices  # noqa: F401  (re-exported)


def per_sample_ce(logits, label):
    """Cross-entropy of each sample, float32 (N,)."""
    return ops.cross_entropy(logits.astype(ms.float32), label, reduction="none")


def group_means(values, onehot):
    """Means of ``values`` (N,) over the samples of each group; absent groups give 0."""
    sums = ops.matmul(values.reshape(1, -1), onehot).reshape(-1)
    counts = onehot.sum(axis=0)
    return sums / ops.maximum(counts, 1.0)


def update_group_weights(weights, group_loss, counts, eta, skip_absent=False):
    """Exponentiated-gradient step w_s <- w_s exp(eta L_s), renormalised to sum 1.

    ``skip_absent``: groups with no sample keep their weight, and the groups present share
    the mass they had before (the update is a reweighting among present groups only).
    """
    logits = eta * group_loss
    # Subtracting the max changes nothing after normalisation and keeps exp finite.
    scaled = weights * ops.exp(logits - logits.max())
    if skip_absent:
        present = (counts > 0).astype(weights.dtype)
        old_mass = (weights * present).sum()
        new_mass = (scaled * present).sum()
        return present * scaled * (old_mass / new_mass) + (1.0 - present) * weights
    return scaled / scaled.sum()


class GroupLoss(nn.Cell):
    """(logits, label, group) -> (batch-mean loss, per-sample loss, group means, counts)."""

    def __init__(self, num_groups):
        super().__init__()
        if int(num_groups) < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        self.num_groups = int(num_groups)

    def one_hot(self, group):
        return ops.one_hot(group, self.num_groups, ms.Tensor(1.0, ms.float32),
                           ms.Tensor(0.0, ms.float32))

    def construct(self, logits, label, group):
        per_sample = per_sample_ce(logits, label)
        onehot = self.one_hot(group)
        return per_sample.mean(), per_sample, group_means(per_sample, onehot), onehot.sum(axis=0)
