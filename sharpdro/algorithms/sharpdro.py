"""SharpDRO: worst-case sharpness minimisation (SPEC section 3).

update direction = grad mean_loss(theta) + sum_s w_s grad L_s(theta + eps), with the group
weights w updated from this batch's clean group losses before they are used.
"""
import mindspore as ms
from mindspore import ops

from ..losses import group_sums, per_sample_ce, safe_mean
from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("sharpdro")
class SharpDRO(TrainStep):
    uses_group_labels = True

    perturbs = True
    adds_clean_grads = True

    def __init__(self, network, optimizer, num_groups, world_size, *, rho, eta, adaptive,
                 eps_source, absent_groups, sync_perturbation, adjustment=0.0, group_counts=None):
        super().__init__(network, optimizer, num_groups, world_size)
        self.init_perturbation(rho, adaptive, sync_perturbation)
        self.init_group_weights(eta, absent_groups, adjustment, group_counts)
        self.eps_from_weighted = eps_source == "weighted"
        self.grad_sharpness = ms.value_and_grad(self.sharpness, None, self.weights)
        if self.eps_from_weighted:
            self.grad_weighted = ms.value_and_grad(self.weighted_loss, None, self.weights)

    def sharpness(self, image, label, group, clean_per_sample, weights, counts):
        """This rank's share of J = sum_s w_s mean_{i in s} (l'_i - l_i); l_i (pass 1), w
        and the global group counts enter as constants."""
        per_sample = per_sample_ce(self.network(image), label)
        # stop_gradient: PyNative would otherwise walk back into pass 1's freed graph.
        rise = per_sample - ops.stop_gradient(clean_per_sample)
        sums = group_sums(rise, self.group_loss.one_hot(group))
        return self.scale_loss(
            (ops.stop_gradient(weights) * safe_mean(sums, ops.stop_gradient(counts))).sum())

    def weighted_loss(self, image, label, group, weights, counts):
        """This rank's share of sum_s w_s L_s at theta: the eps source of the 'weighted'
        option (one more pass)."""
        sums = self.clean_loss(image, label, group)[2]
        return self.scale_loss(
            (ops.stop_gradient(weights) * safe_mean(sums, ops.stop_gradient(counts))).sum())

    def construct(self, image, label, group):
        image, old_weights = self.begin(image)
        out, grads = self.grad_clean(image, label, group)
        per_sample = out[1]
        loss, group_loss, counts = self.gather(out[0], out[2], out[3])
        grads = self.unscale(grads)
        global_grads = self.all_sum_grads(grads)
        image = self.hold_stats(image, loss)
        image = self.hold_grads(image, global_grads)
        weights = self.new_group_weights(group_loss, counts)
        image = ops.depend(image, ops.assign(self.group_weights, weights))
        eps_grads = self.eps_grads(grads, global_grads)
        if self.eps_from_weighted:
            local = self.unscale(self.grad_weighted(image, label, group, weights, counts)[1])
            eps_grads = self.eps_grads(local, self.all_sum_grads(local))
            eps_grads = ops.depend(eps_grads, global_grads)  # g1 fully computed before theta moves
        sharp_grads = self.at_perturbed(image, eps_grads, self.grad_sharpness, label, group,
                                        per_sample, weights, counts)
        return self.apply(self.with_held_grads(sharp_grads), loss, group_loss, counts,
                          self.finite_flags(self.held, sharp_grads), old_weights)
