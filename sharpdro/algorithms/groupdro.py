"""GroupDRO: loss sum_s w_s L_s with the exponentiated-gradient group weights (SPEC section 5)."""
import mindspore as ms
from mindspore import ops

from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("groupdro")
class GroupDRO(TrainStep):
    def __init__(self, network, optimizer, num_groups, *, eta, absent_groups):
        super().__init__(network, optimizer, num_groups)
        self.init_group_weights(eta, absent_groups)
        self.grad_robust = ms.value_and_grad(self.robust_loss, None, self.weights, has_aux=True)

    def robust_loss(self, image, label, group):
        loss, _, group_loss, counts, _ = self.clean_loss(image, label, group)
        # The weights are updated with this batch's losses and used at once, as constants.
        weights = ops.stop_gradient(self.new_group_weights(ops.stop_gradient(group_loss), counts))
        return (weights * group_loss).sum(), loss, group_loss, counts, weights

    def construct(self, image, label, group):
        (_, loss, group_loss, counts, weights), grads = self.grad_robust(image, label, group)
        loss = ops.depend(loss, ops.assign(self.group_weights, weights))
        return self.apply(grads, loss, group_loss, counts)
