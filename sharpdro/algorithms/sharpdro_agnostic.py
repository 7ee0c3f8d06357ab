"""Distribution-agnostic SharpDRO (SPEC section 4): no severity labels.

The worst-case set is the ``fraction`` of the batch with the highest ``score``: an OOD
score of the pass-1 logits (msp, energy, entropy), the pass-1 loss (loss, as JTT and CVaR
DRO select), or the image's noise level (noise, see ``selection.noise_level``). J is the
(optionally tilted) mean sharpness over the set; the update direction is
grad mean_loss(theta) + grad J(theta + eps). The update never depends on the group column:
it is read only for the diagnostics that callbacks log (per-group loss and counts, like
every cell, and ``last_group_selected``: how many of each group's samples were selected),
which is how the selection is compared with the severities when they are known.

With ``pass2_selected`` the sharpness pass forwards and backpropagates the selected images
only (k = the selected count is static, so the gathered subset keeps the graph's shapes):
J reads nothing else, so the update differs from the whole-batch pass 2 only through
BatchNorm, which normalises pass 2 by the subset's statistics (SPEC section 3b).
"""
import numpy as np

import mindspore as ms
from mindspore import ops, Parameter, Tensor

from ..losses import group_sums, per_sample_ce
from ..selection import noise_level, num_selected, ood_score, select_top, top_indices
from .base import TrainStep
from .registry import ALGORITHMS

LAST_GROUP_SELECTED = "last_group_selected"


@ALGORITHMS.register("sharpdro_agnostic")
class SharpDROAgnostic(TrainStep):
    perturbs = True
    adds_clean_grads = True

    def __init__(self, network, optimizer, num_groups, world_size, *, rho, adaptive, score,
                 fraction, tilt, sync_perturbation, pass2_selected):
        super().__init__(network, optimizer, num_groups, world_size)
        self.init_perturbation(rho, adaptive, sync_perturbation)
        self.score, self.fraction, self.tilt = score, float(fraction), float(tilt)
        if self.tilt and score == "energy":
            raise ValueError("tilt needs a score >= 0; energy is negative (use msp, entropy, "
                             "loss or noise)")
        self.last_group_selected = Parameter(Tensor(np.zeros(self.num_groups, np.float32)),
                                             name=LAST_GROUP_SELECTED, requires_grad=False)
        self.grad_sharpness = ms.value_and_grad(self.sharpness, None, self.weights)
        self.pass2_selected = bool(pass2_selected)

    def scores(self, image, logits, per_sample):
        """The per-sample selection score (no gradient)."""
        if self.score == "loss":
            score = per_sample
        elif self.score == "noise":
            score = noise_level(image)
        else:
            score = ood_score(logits, self.score)
        return ops.stop_gradient(score)

    def select(self, score, k):
        """The worst-case set's weights: 1 for the top fraction of the batch (times
        exp(tilt * s_i / mean s over the set) with a tilt), 0 elsewhere. Data parallel:
        each rank selects the top fraction of its own slice (no all-gather of scores), so
        the set is the union of the ranks' top fractions, not the global batch's top
        fraction."""
        mask = select_top(score, k)
        if not self.tilt:
            return mask
        relative = score / ((mask * score).sum() / k + 1e-12)
        return mask * ops.exp(self.tilt * (relative - (mask * relative).max()))  # no overflow

    def sharpness(self, image, label, clean_per_sample, mask):
        """This rank's share of J = the weighted mean over the selected samples of
        l'_i - l_i (``mask`` holds the weights; every rank selects as many)."""
        per_sample = per_sample_ce(self.network(image), label)
        rise = per_sample - ops.stop_gradient(clean_per_sample)
        mask = ops.stop_gradient(mask)
        return self.scale_loss((mask * rise).sum() / (mask.sum() * self.world_size))

    def construct(self, image, label, group=None):
        group = self.groups(label, group)
        image, old_weights = self.begin(image)
        out, grads = self.grad_clean(image, label, group)
        per_sample, logits = out[1], out[4]
        loss, group_loss, counts = self.gather(out[0], out[2], out[3])
        grads = self.unscale(grads)
        global_grads = self.all_sum_grads(grads)
        image = self.hold_stats(image, loss)
        image = self.hold_grads(image, global_grads)
        score = self.scores(image, logits, per_sample)
        k = num_selected(logits.shape[0], self.fraction)
        mask = self.select(score, k)
        eps_grads = self.eps_grads(grads, global_grads)
        if self.pass2_selected:  # the same k images select_top marked
            index = top_indices(score, k)
            sharp_grads = self.at_perturbed(
                ops.gather(image, index, 0), eps_grads, self.grad_sharpness,
                ops.gather(label, index, 0), ops.gather(per_sample, index, 0),
                ops.gather(mask, index, 0))
        else:
            sharp_grads = self.at_perturbed(image, eps_grads, self.grad_sharpness, label,
                                            per_sample, mask)
        chosen = (mask > 0).astype(ms.float32)  # counts, whatever the tilt's weights
        selected = self.all_sum(group_sums(chosen, self.group_loss.one_hot(group)))
        loss = ops.depend(loss, ops.assign(self.last_group_selected, selected))
        return self.apply(self.with_held_grads(sharp_grads), loss, group_loss, counts,
                          self.finite_flags(self.held, sharp_grads), old_weights)
