"""Per-group evaluation for a user's own ``mindspore.Model``: an eval cell that passes the
group through, and a ``Metric`` with per-group accuracy, their mean and the worst group.

    model = Model(train_step, eval_network=GroupEvalCell(net),
                  metrics={"groups": GroupAccuracy(num_groups, group_names)})
    model.eval(dataset)["groups"]   # {"acc": {name: ...}, "mean": ..., "worst": ..., ...}

(no ``eval_indexes``: the metric reads the group output, which ``eval_indexes`` would drop).
"""
import numpy as np
import mindspore as ms
from mindspore import nn, ops
from mindspore.train import Metric, rearrange_inputs


class GroupEvalCell(nn.Cell):
    """(image, label, group) -> (batch-mean loss, logits, label, group) for ``Model.eval``;
    on (image, label) data every sample is in group 0 (``GroupAccuracy(1)``)."""

    def __init__(self, network):
        super().__init__(auto_prefix=False)
        self.network = network

    def construct(self, image, label, group=None):
        if group is None:
            group = ops.zeros_like(label)
        logits = self.network(image)
        loss = ops.cross_entropy(logits.astype(ms.float32), label, reduction="mean")
        return loss, logits, label, group


def _world_size():
    """Ranks of the initialised communication group (1 when there is none)."""
    try:
        from mindspore.communication import get_group_size

        return get_group_size()
    except (RuntimeError, ValueError):  # communication not initialised
        return 1


class GroupAccuracy(Metric):
    """Per-group accuracy, their mean and the worst group, from (loss, logits, label, group)
    or (logits, label, group). A group with no samples is absent (None), not 0 %, and
    leaves the mean and the worst. Under data parallel (communication initialised), the
    counts of all ranks are summed, so every rank reports the whole evaluation set's value."""

    def __init__(self, num_groups, group_names=None):
        super().__init__()
        if int(num_groups) < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        self.num_groups = int(num_groups)
        self.group_names = ([str(g) for g in range(self.num_groups)] if group_names is None
                            else [str(n) for n in group_names])
        if len(self.group_names) != self.num_groups:
            raise ValueError(f"{len(self.group_names)} group names for {self.num_groups} groups")
        self.clear()

    def clear(self):
        """Reset the counts (``Model.eval`` calls it before each evaluation)."""
        self.correct = np.zeros(self.num_groups, np.float64)
        self.total = np.zeros(self.num_groups, np.float64)

    @rearrange_inputs
    def update(self, *inputs):
        """Count one batch: (loss, logits, label, group) or (logits, label, group)."""
        if len(inputs) not in (3, 4):
            raise ValueError(f"GroupAccuracy.update takes (loss, logits, label, group) or "
                             f"(logits, label, group), got {len(inputs)} inputs")
        logits, label, group = (self._convert_data(x) for x in inputs[-3:])
        group = np.asarray(group).astype(np.int64).reshape(-1)
        if group.size and (group.min() < 0 or group.max() >= self.num_groups):
            raise ValueError(f"group index outside 0..{self.num_groups - 1}")
        hit = (np.asarray(logits).argmax(-1).reshape(-1) == np.asarray(label).reshape(-1))
        self.correct += np.bincount(group, weights=hit.astype(np.float64), minlength=self.num_groups)
        self.total += np.bincount(group, minlength=self.num_groups)

    def counts(self):
        """(correct, total) per group, summed over the ranks under data parallel."""
        if _world_size() > 1:
            both = ms.Tensor(np.stack([self.correct, self.total]).astype(np.float32))
            both = ops.AllReduce()(both).asnumpy().astype(np.float64)
            return both[0], both[1]
        return self.correct, self.total

    def eval(self):
        """{"acc": {name: accuracy or None}, "count": {name: n}, "mean", "worst",
        "worst_group", "overall"} over the groups present."""
        correct, total = self.counts()
        present = total > 0
        if not present.any():
            raise RuntimeError("GroupAccuracy: no samples were counted")
        acc = np.where(present, correct / np.maximum(total, 1), np.nan)
        worst = int(np.nanargmin(acc))
        return {"acc": {n: (float(a) if p else None) for n, a, p in zip(self.group_names, acc, present)},
                "count": {n: int(t) for n, t in zip(self.group_names, total)},
                "mean": float(np.nanmean(acc)), "worst": float(acc[worst]),
                "worst_group": self.group_names[worst],
                "overall": float(correct.sum() / total.sum())}
