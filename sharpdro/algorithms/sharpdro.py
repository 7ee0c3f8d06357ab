"""SharpDRO: worst-case sharpness minimisation (SPEC section 3).

update direction = grad mean_loss(theta) + sum_s w_s grad L_s(theta + eps), with the group
weights w updated from this batch's clean group losses before they are used.
"""
import mindspore as ms
from mindspore import ops

from ..losses import group_means
from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("sharpdro")
class SharpDRO(TrainStep):
    perturbs = True

    def __init__(self, network, optimizer, num_groups, *, rho, eta, adaptive, eps_source,
                 absent_groups):
        super().__init__(network, optimizer, num_groups)
        self.init_perturbation(rho, adaptive)
        self.init_group_weights(eta, absent_groups)
        self.eps_from_weighted = eps_source == "weighted"
        self.grad_sharpness = ms.value_and_grad(self.sharpness, None, self.weights, has_aux=True)
        if self.eps_from_weighted:
            self.grad_weighted = ms.value_and_grad(self.weighted_loss, None, self.weights,
                                                   has_aux=True)

    def sharpness(self, image, label, group, clean_per_sample, weights):
        """J = sum_s w_s mean_{i in s} (l'_i - l_i); l_i (pass 1) and w enter as constants."""
        logits = self.network(image)
        _, per_sample, _, _ = self.group_loss(logits, label, group)
        # stop_gradient: PyNative would otherwise walk back into pass 1's freed graph.
        clean_per_sample = ops.stop_gradient(clean_per_sample)
        weights = ops.stop_gradient(weights)
        rise = group_means(per_sample - clean_per_sample, self.group_loss.one_hot(group))
        return (weights * rise).sum(), rise

    def weighted_loss(self, image, label, group, weights):
        """sum_s w_s L_s at theta: the eps source of the 'weighted' option (one more pass)."""
        _, _, group_loss, _, _ = self.clean_loss(image, label, group)
        return (ops.stop_gradient(weights) * group_loss).sum(), group_loss

    def construct(self, image, label, group):
        out, grads = self.grad_clean(image, label, group)
        loss, per_sample, group_loss, counts = out[0], out[1], out[2], out[3]
        image = ops.depend(image, self.save_stats(loss))
        weights = self.new_group_weights(group_loss, counts)
        image = ops.depend(image, ops.assign(self.group_weights, weights))
        eps_grads = grads
        if self.eps_from_weighted:
            eps_grads = self.grad_weighted(image, label, group, weights)[1]
            eps_grads = ops.depend(eps_grads, grads)  # g1 fully computed before theta moves
        image = ops.depend(image, self.perturb(eps_grads))
        sharp_grads = self.grad_sharpness(image, label, group, per_sample, weights)[1]
        sharp_grads = ops.depend(sharp_grads, self.restore(sharp_grads))
        sharp_grads = ops.depend(sharp_grads, self.restore_stats(sharp_grads))
        return self.apply(self.add_grads(grads, sharp_grads), loss, group_loss, counts)
