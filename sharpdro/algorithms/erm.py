"""ERM: plain SGD on the batch-mean loss (SPEC section 5)."""
from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("erm")
class ERM(TrainStep):
    def construct(self, image, label, group):
        (loss, _, group_loss, counts, _), grads = self.grad_clean(image, label, group)
        return self.apply(grads, loss, group_loss, counts)
