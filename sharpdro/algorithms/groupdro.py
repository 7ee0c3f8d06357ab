"""GroupDRO: loss sum_s w_s L_s with the exponentiated-gradient group weights (SPEC section 5)."""
import mindspore as ms
from mindspore import ops

from ..losses import safe_mean
from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("groupdro")
class GroupDRO(TrainStep):
    uses_group_labels = True

    def __init__(self, network, optimizer, num_groups, world_size, *, eta, absent_groups,
                 adjustment=0.0, group_counts=None):
        super().__init__(network, optimizer, num_groups, world_size)
        self.init_group_weights(eta, absent_groups, adjustment, group_counts)
        self.grad_robust = ms.value_and_grad(self.robust_loss, None, self.weights, has_aux=True)

    def robust_loss(self, image, label, group):
        out = self.clean_loss(image, label, group)
        sums = out[2]
        # The weights come from the global batch's group losses (all-reduced, as constants:
        # no gradient flows through the reduction) and are used at once.
        loss, group_loss, counts = self.gather(ops.stop_gradient(out[0]), ops.stop_gradient(sums),
                                               out[3])
        weights = ops.stop_gradient(self.new_group_weights(group_loss, counts))
        # this rank's share of sum_s w_s L_s: local group sums over global counts
        robust = self.scale_loss((weights * safe_mean(sums, counts)).sum())
        return robust, loss, group_loss, counts, weights

    def construct(self, image, label, group=None):
        group = self.groups(label, group)
        image, old_weights = self.begin(image)
        out, grads = self.grad_robust(image, label, group)
        loss, group_loss, counts, weights = out[1], out[2], out[3], out[4]
        loss = ops.depend(loss, ops.assign(self.group_weights, weights))
        grads = self.unscale(self.all_sum_grads(grads))
        return self.apply(grads, loss, group_loss, counts, self.finite_flags(grads), old_weights)
