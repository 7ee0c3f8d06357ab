"""Distribution-agnostic SharpDRO (SPEC section 4): no severity labels.

The worst-case set is the ``fraction`` of the batch with the highest OOD ``score`` of the
pass-1 logits; J is the mean sharpness over that set; the update direction is
grad mean_loss(theta) + grad J(theta + eps). The group column is never read: the cell
returns (loss, selected mask) so that a callback can compare the selection with the
severities when they are known.
"""
import mindspore as ms
from mindspore import ops

from ..losses import per_sample_ce
from ..selection import check_selection, num_selected, ood_score, select_top
from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("sharpdro_agnostic", options=("rho", "adaptive", "score", "fraction"))
class SharpDROAgnostic(TrainStep):
    perturbs = True

    def __init__(self, network, optimizer, num_groups, score="msp", fraction=0.2, **options):
        super().__init__(network, optimizer, num_groups, **options)
        check_selection(score, fraction)
        self.score, self.fraction = score, float(fraction)
        self.grad_plain = ms.value_and_grad(self.plain_loss, None, self.weights, has_aux=True)
        self.grad_sharpness = ms.value_and_grad(self.sharpness, None, self.weights)

    def plain_loss(self, image, label):
        logits = self.network(image)
        per_sample = per_sample_ce(logits, label)
        return per_sample.mean(), per_sample, logits

    def select(self, logits):
        """The worst-case mask of a batch's logits."""
        k = num_selected(logits.shape[0], self.fraction)
        return select_top(ood_score(ops.stop_gradient(logits), self.score), k)

    def sharpness(self, image, label, clean_per_sample, mask):
        """J = mean over the selected samples of l'_i - l_i."""
        per_sample = per_sample_ce(self.network(image), label)
        rise = per_sample - ops.stop_gradient(clean_per_sample)
        mask = ops.stop_gradient(mask)
        return (mask * rise).sum() / mask.sum()

    def construct(self, image, label, group):
        (loss, per_sample, logits), grads = self.grad_plain(image, label)
        image = ops.depend(image, self.save_stats(loss))
        mask = self.select(logits)
        image = ops.depend(image, self.perturb(grads))
        _, sharp_grads = self.grad_sharpness(image, label, per_sample, mask)
        sharp_grads = ops.depend(sharp_grads, self.restore(sharp_grads))
        sharp_grads = ops.depend(sharp_grads, self.restore_stats(sharp_grads))
        loss = ops.depend(loss, self.optimizer(self.add_grads(grads, sharp_grads)))
        return loss, mask
