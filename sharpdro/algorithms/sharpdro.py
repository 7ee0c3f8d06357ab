"""SharpDRO: worst-case sharpness minimisation (SPEC section 3).

update direction = grad mean_loss(theta) + sum_s w_s grad L_s(theta + eps), with the group
weights w updated from this batch's clean group losses before they are used.

With ``pass2_fraction`` f < 1 (SPEC section 3b) the sharpness pass forwards and
backpropagates only k = ceil(f B) images of the batch: J = sum_i a_i r_i with
a_i = w_{s_i} / n_{s_i} is estimated from them ('top', the default: the k largest a_i,
rescaled by A = sum_i a_i over their sum; 'sample': k draws with probability a_i / A,
J^ = (A / k) sum_j r_{i_j}, unbiased; 'uniform': k at random, weighted B / k). Pass 1, the
weight update and the BatchNorm statistics are as at f = 1 (docs/method.md).
"""
import mindspore as ms
from mindspore import ops

from ..losses import group_sums, per_sample_ce, safe_mean
from ..selection import draw_by_weight, pass2_size, top_indices, uniforms
from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("sharpdro")
class SharpDRO(TrainStep):
    uses_group_labels = True
    tune_variants = ("+balanced", "+pass2_fraction=0.5")  # the fast variant: 1.5x ERM's step

    perturbs = True
    adds_clean_grads = True

    def __init__(self, network, optimizer, num_groups, world_size, *, rho, eta, adaptive,
                 eps_source, absent_groups, sync_perturbation, adjustment=0.0, group_counts=None,
                 pass2_fraction, pass2_rule, seed=0):
        super().__init__(network, optimizer, num_groups, world_size)
        self.init_perturbation(rho, adaptive, sync_perturbation)
        self.init_group_weights(eta, absent_groups, adjustment, group_counts)
        self.eps_from_weighted = eps_source == "weighted"
        self.grad_sharpness = ms.value_and_grad(self.sharpness, None, self.weights)
        if self.eps_from_weighted:
            self.grad_weighted = ms.value_and_grad(self.weighted_loss, None, self.weights)
        self.pass2_fraction, self.pass2_rule = float(pass2_fraction), pass2_rule
        self.subset = self.pass2_fraction < 1.0  # 1.0: the section-3 step, untouched
        self.seed = int(seed)
        self.rank = 0
        if self.subset:
            self.grad_subset = ms.value_and_grad(self.subset_sharpness, None, self.weights)
            if self.distributed:  # each rank draws from its own slice, with its own numbers
                from mindspore.communication import get_rank
                self.rank = get_rank()

    def sharpness(self, image, label, group, clean_per_sample, weights, counts):
        """This rank's share of J = sum_s w_s mean_{i in s} (l'_i - l_i); l_i (pass 1), w
        and the global group counts enter as constants."""
        per_sample = per_sample_ce(self.network(image), label)
        # stop_gradient: PyNative would otherwise walk back into pass 1's freed graph.
        rise = per_sample - ops.stop_gradient(clean_per_sample)
        sums = group_sums(rise, self.group_loss.one_hot(group))
        return self.scale_loss(
            (ops.stop_gradient(weights) * safe_mean(sums, ops.stop_gradient(counts))).sum())

    def subset_sharpness(self, image, label, clean_per_sample, coef):
        """This rank's estimate of its share of J from the images of pass 2's subset:
        sum_j coef_j (l'_j - l_j)."""
        rise = per_sample_ce(self.network(image), label) - ops.stop_gradient(clean_per_sample)
        return self.scale_loss((ops.stop_gradient(coef) * rise).sum())

    def pass2_subset(self, group, weights, counts):
        """(indices into this rank's slice, their coefficients) of pass 2's k images. a_i =
        w_{s_i} / n_{s_i} with the global counts n, so that the ranks' J^ add up to an
        unbiased estimate of the global J (each rank's is unbiased for its share)."""
        per_image = ops.stop_gradient(weights / ops.maximum(counts, 1.0))
        a = ops.matmul(self.group_loss.one_hot(group), per_image.reshape(-1, 1)).reshape(-1)
        k = pass2_size(a.shape[0], self.pass2_fraction)
        total = a.sum()
        if self.pass2_rule == "sample":
            u = uniforms(self.seed, self.optimizer.global_step, self.rank, k)
            index = draw_by_weight(a, u)
            return index, ops.ones((k,), ms.float32) * (total / k)
        if self.pass2_rule == "uniform":  # k of the B without replacement, each with chance k / B
            u = uniforms(self.seed, self.optimizer.global_step, self.rank, a.shape[0])
            index = top_indices(u, k)
            return index, ops.gather(a, index, 0) * (a.shape[0] / k)
        index = top_indices(a, k)
        chosen = ops.gather(a, index, 0)
        return index, chosen * (total / chosen.sum())

    def weighted_loss(self, image, label, group, weights, counts):
        """This rank's share of sum_s w_s L_s at theta: the eps source of the 'weighted'
        option (one more pass)."""
        sums = self.clean_loss(image, label, group)[2]
        return self.scale_loss(
            (ops.stop_gradient(weights) * safe_mean(sums, ops.stop_gradient(counts))).sum())

    def construct(self, image, label, group=None):
        group = self.groups(label, group)
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
        if self.subset:
            index, coef = self.pass2_subset(group, weights, counts)
            sharp_grads = self.at_perturbed(
                ops.gather(image, index, 0), eps_grads, self.grad_subset,
                ops.gather(label, index, 0), ops.gather(per_sample, index, 0), coef)
        else:
            sharp_grads = self.at_perturbed(image, eps_grads, self.grad_sharpness, label, group,
                                            per_sample, weights, counts)
        return self.apply(self.with_held_grads(sharp_grads), loss, group_loss, counts,
                          self.finite_flags(self.held, sharp_grads), old_weights)
