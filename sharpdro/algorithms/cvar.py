"""CVaR-DRO (SPEC section 5): the mean of the k = ceil(fraction * B) largest per-sample
losses of the global batch (B images). Label-free: the group column is never read.

Data parallel: the per-sample losses of every rank are gathered (as constants) to pick
the global top k; each rank differentiates the sum of its own selected losses over k, so
the ranks' gradients add up to the one-process gradient.
"""
import math

import mindspore as ms
from mindspore import ops

from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("cvar")
class CVaR(TrainStep):
    def __init__(self, network, optimizer, num_groups, world_size, *, fraction):
        super().__init__(network, optimizer, num_groups, world_size)
        self.fraction = float(fraction)
        self.rank = 0
        if self.distributed:
            from mindspore.communication import get_rank

            self.rank = get_rank()
            self.all_gather = ops.AllGather()
        self.grad_tail = ms.value_and_grad(self.tail_loss, None, self.weights, has_aux=True)

    def tail_loss(self, image, label, group):
        out = self.clean_loss(image, label, group)  # share, per-sample, group sums, counts
        per_sample = out[1]
        n = per_sample.shape[0]
        total = n * self.world_size
        k = math.ceil(self.fraction * total)
        everyone = ops.stop_gradient(per_sample)
        if self.distributed:
            everyone = self.all_gather(everyone)
        chosen = ops.topk(everyone, k)[1]
        mask = ops.one_hot(chosen, total, ms.Tensor(1.0, ms.float32),
                           ms.Tensor(0.0, ms.float32)).sum(0)
        mine = mask[self.rank * n:(self.rank + 1) * n]
        return self.scale_loss((mine * per_sample).sum() / k), out[0], out[2], out[3]

    def construct(self, image, label, group=None):
        group = self.groups(label, group)
        image, old_weights = self.begin(image)
        out, grads = self.grad_tail(image, label, group)
        loss, group_loss, counts = self.gather(out[1], out[2], out[3])
        grads = self.unscale(self.all_sum_grads(grads))
        return self.apply(grads, loss, group_loss, counts, self.finite_flags(grads), old_weights)
