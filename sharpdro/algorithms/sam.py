"""SAM (Foret et al., 2021): the gradient of the batch-mean loss at theta + eps (SPEC section 5)."""
import mindspore as ms

from .base import TrainStep
from .registry import ALGORITHMS


@ALGORITHMS.register("sam")
class SAM(TrainStep):
    perturbs = True

    def __init__(self, network, optimizer, num_groups, world_size, *, rho, adaptive,
                 sync_perturbation):
        super().__init__(network, optimizer, num_groups, world_size)
        self.init_perturbation(rho, adaptive, sync_perturbation)
        self.grad_perturbed = ms.value_and_grad(self.clean_loss, None, self.weights, has_aux=True)

    def construct(self, image, label, group=None):
        group = self.groups(label, group)
        image, old_weights = self.begin(image)
        out, grads = self.grad_clean(image, label, group)
        loss, group_loss, counts = self.gather(out[0], out[2], out[3])
        grads = self.unscale(grads)
        global_grads = self.all_sum_grads(grads)
        image = self.hold_stats(image, loss)
        grads2 = self.at_perturbed(image, self.eps_grads(grads, global_grads),
                                   self.grad_perturbed, label, group)
        return self.apply(grads2, loss, group_loss, counts,
                          self.finite_flags(global_grads, grads2), old_weights)
