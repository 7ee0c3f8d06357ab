"""IRM and V-REx (SPEC section 5): ERM's pass plus a penalty across the groups, read as
environments, weighted by lambda_t (1 for the first ``anneal_steps`` optimizer steps, then
lambda; the optimizer's step counter is checkpointed, so the switch survives resume):

    IRM:   (mean_{g in P} L_g + lambda_t mean_{g in P} D_g^2) / max(lambda_t, 1),
           D_g the group mean of d_i = p_i . z_i - z_{i,y_i} (the IRMv1 gradient term)
    V-REx: (mean_{g in P} L_g + lambda_t var_{g in P} L_g) / max(lambda_t, 1)

P: the groups present in the global batch. One pass: the differentiated loss is a
surrogate whose gradient is the objective's, linear in this rank's group sums (the
nonlinear parts, D_g and L_g - mean L, enter as all-reduced constants), so the ranks'
gradients add up to the one-process gradient, as GroupDRO's do.
"""
import mindspore as ms
from mindspore import ops

from ..losses import group_sums, safe_mean
from .base import TrainStep
from .registry import ALGORITHMS


class PenaltyStep(TrainStep):
    uses_group_labels = True

    def init_penalty(self, penalty, anneal_steps):
        self.penalty, self.anneal_steps = float(penalty), int(anneal_steps)
        self.grad_penalised = ms.value_and_grad(self.penalised, None, self.weights, has_aux=True)

    def penalty_weight(self):
        """lambda_t from the optimizer's step counter (steps taken before this one)."""
        switched = (self.optimizer.global_step.astype(ms.float32) >= self.anneal_steps)
        return 1.0 + switched.astype(ms.float32).reshape(()) * (self.penalty - 1.0)

    def penalised(self, image, label, group):
        logits = self.network(image)
        out = self.group_loss(logits, label, group)  # share, per-sample, group sums, counts
        extra = self.extra_sums(logits.astype(ms.float32), label, group)
        g = self.num_groups
        packed = self.all_sum(ops.stop_gradient(ops.concat(
            (out[0].reshape(1), out[2], out[3], extra))))
        loss, sums, counts, extra_global = packed[0], packed[1:1 + g], packed[1 + g:1 + 2 * g], packed[1 + 2 * g:]
        lam = self.penalty_weight()
        present = (counts > 0).astype(ms.float32)
        # d objective / d (this rank's group sum) for each group: mean over P, / N_g, / max(lam, 1)
        scale = present / (present.sum() * ops.maximum(counts, 1.0) * ops.maximum(lam, 1.0))
        group_loss = safe_mean(sums, counts)
        surrogate = self.surrogate(scale, lam, out[2], extra, group_loss, present,
                                   extra_global, counts)
        return self.scale_loss(surrogate), loss, group_loss, counts

    def construct(self, image, label, group=None):
        group = self.groups(label, group)
        image, old_weights = self.begin(image)
        out, grads = self.grad_penalised(image, label, group)
        grads = self.unscale(self.all_sum_grads(grads))
        return self.apply(grads, out[1], out[2], out[3], self.finite_flags(grads), old_weights)


@ALGORITHMS.register("irm")
class IRM(PenaltyStep):
    def __init__(self, network, optimizer, num_groups, world_size, *, irm_lambda, anneal_steps):
        super().__init__(network, optimizer, num_groups, world_size)
        self.init_penalty(irm_lambda, anneal_steps)

    def extra_sums(self, logits, label, group):
        """Group sums of d_i = p_i . z_i - z_{i,y_i}, differentiated through d_i."""
        d = (ops.softmax(logits, axis=1) * logits).sum(1) - ops.gather_elements(
            logits, 1, label.reshape(-1, 1)).reshape(-1)
        return group_sums(d, self.group_loss.one_hot(group))

    def surrogate(self, scale, lam, loss_sums, d_sums, group_loss, present, d_global, counts):
        d_mean = safe_mean(d_global, counts)
        return (scale * (loss_sums + lam * 2.0 * d_mean * d_sums)).sum()


@ALGORITHMS.register("vrex")
class VREx(PenaltyStep):
    def __init__(self, network, optimizer, num_groups, world_size, *, vrex_lambda, anneal_steps):
        super().__init__(network, optimizer, num_groups, world_size)
        self.init_penalty(vrex_lambda, anneal_steps)

    def extra_sums(self, logits, label, group):
        return ops.zeros((0,), ms.float32)  # the variance needs only the group losses

    def surrogate(self, scale, lam, loss_sums, extra, group_loss, present, extra_global, counts):
        mean = (group_loss * present).sum() / present.sum()
        centred = (group_loss - mean) * present
        return (scale * (1.0 + lam * 2.0 * centred) * loss_sums).sum()
