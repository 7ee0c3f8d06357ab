"""ERM: plain SGD on the batch-mean loss (SPEC section 5)."""
from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("erm")
class ERM(TrainStep):
    tune_variants = ("+balanced",)  # the cheap baseline where the data has groups

    def construct(self, image, label, group=None):
        group = self.groups(label, group)
        image, old_weights = self.begin(image)
        out, grads = self.grad_clean(image, label, group)
        loss, group_loss, counts = self.gather(out[0], out[2], out[3])
        grads = self.unscale(self.all_sum_grads(grads))
        return self.apply(grads, loss, group_loss, counts, self.finite_flags(grads), old_weights)
