"""Per-sample loss, per-group sums and the group-weight update (SPEC section 3, steps 4-5).

Group sums use one (N x G) one-hot matrix product with a fixed number of groups G, so the
graph has static shapes. Means are taken only after the sums and counts of every rank are
added up (data parallel), so a group mean is always the global batch's; a group absent
from the global batch gets mean 0 and count 0.
"""
import mindspore as ms
from mindspore import nn, ops



def per_sample_ce(logits, label):
    """Cross-entropy of each sample, float32 (N,)."""
    return ops.cross_entropy(logits.astype(ms.float32), label, reduction="none")


def group_sums(values, onehot):
    """Sums of ``values`` (N,) over the samples of each group (G,)."""
    return ops.matmul(values.reshape(1, -1), onehot).reshape(-1)


def safe_mean(sums, counts):
    """sums / counts with 0 where a count is 0."""
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
    """(logits, label, group) -> (this rank's share of the global batch-mean loss,
    per-sample loss, group sums, group counts).

    The share is sum(l_i) / (local batch x ``world_size``): added over the ranks it is the
    mean over the global batch, and so is the all-reduced sum of its gradients. With one
    process it is the batch mean.
    """

    def __init__(self, num_groups, world_size=1):
        super().__init__()
        if int(num_groups) < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        self.num_groups = int(num_groups)
        self.world_size = int(world_size)

    def one_hot(self, group):
        return ops.one_hot(group, self.num_groups, ms.Tensor(1.0, ms.float32),
                           ms.Tensor(0.0, ms.float32))

    def construct(self, logits, label, group):
        per_sample = per_sample_ce(logits, label)
        onehot = self.one_hot(group)
        share = per_sample.sum() / (per_sample.shape[0] * self.world_size)
        return share, per_sample, group_sums(per_sample, onehot), onehot.sum(axis=0)
