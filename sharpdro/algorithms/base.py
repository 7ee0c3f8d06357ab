"""The shared toolkit of the train-one-step cells.

Every algorithm is an ``nn.Cell`` taking (image, label, group) and returning the batch-mean
cross-entropy at the current weights (comparable across algorithms), so it can be handed
to ``mindspore.Model`` as the train network. Parameters loop through ``ops.HyperMap``: a
Python loop over ~100 parameters exceeds the graph compiler's call-depth limit.

The cells index the outputs they use (``out[0]``, ``f(...)[1]``) instead of unpacking into
``_``: in graph mode, an unpacked but unused element of a call that has side effects (the
BatchNorm statistics updates inside a forward-backward) is dropped with the warning "Some
side effect nodes were eliminated by mistake". The dropped node is only the unused
element, never the call's side effects (the NumPy reference and the BatchNorm tests pin
that), so the warning was harmless; not creating the element avoids it.
"""
import numpy as np

import mindspore as ms
from mindspore import nn, ops, Parameter, ParameterTuple, Tensor

from ..losses import GroupLoss, update_group_weights

# Stable names: checkpoints and callbacks find the group state by these.
GROUP_WEIGHTS = "group_weights"
LAST_GROUP_LOSS = "last_group_loss"
LAST_GROUP_COUNT = "last_group_count"
# Prefix of the scratch copies used by the perturbation; they carry no state between
# steps, so a checkpoint writer may drop them.
SCRATCH_PREFIX = "scratch"

_assign_after = ops.MultitypeFuncGraph("assign_after")
_square_sum = ops.MultitypeFuncGraph("square_sum")
_ascend = ops.MultitypeFuncGraph("ascend")


@_assign_after.register("Tensor", "Tensor", "Tensor")
def _assign_tensor(after, dst, src):
    return ops.assign(dst, ops.depend(src, after))


@_assign_after.register("Tuple", "Tensor", "Tensor")
def _assign_tuple(after, dst, src):
    return ops.assign(dst, ops.depend(src, after))


@_square_sum.register("Bool", "Tensor", "Tensor")
def _square_sum_tensor(adaptive, param, grad):
    if adaptive:
        grad = ops.abs(param) * grad
    return ops.reduce_sum(grad * grad)


@_ascend.register("Bool", "Tensor", "Tensor", "Tensor")
def _ascend_tensor(adaptive, scale, param, grad):
    if adaptive:
        grad = param * param * grad
    return ops.assign(param, param + scale * grad)


_add = ops.MultitypeFuncGraph("add")


@_add.register("Tensor", "Tensor")
def _add_tensor(a, b):
    return a + b


class TrainStep(nn.Cell):
    """Base train-one-step cell: pass 1 (loss and gradient at theta), group bookkeeping.

    Subclasses implement ``construct``. ``perturbs`` = True adds the scratch copies for the
    sharpness pass (weights and non-trainable network state such as BatchNorm moving
    statistics).
    """

    perturbs = False

    def __init__(self, network, optimizer, num_groups):
        """Hyperparameters are keyword arguments of the subclasses, without defaults: their
        defaults and ranges live in ``sharpdro/hparams.py`` and ``create_train_step``
        fills and checks them."""
        super().__init__(auto_prefix=False)
        if int(num_groups) < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        self.network = network
        self.network.set_grad()
        self.optimizer = optimizer
        # Gradients must come in the optimizer's parameter order (grouped optimizers reorder).
        self.weights = optimizer.parameters
        self.num_groups = int(num_groups)
        self.group_loss = GroupLoss(num_groups)
        self.hyper_map = ops.HyperMap()
        uniform = np.full(self.num_groups, 1.0 / self.num_groups, np.float32)
        self.group_weights = Parameter(Tensor(uniform), name=GROUP_WEIGHTS, requires_grad=False)
        zeros = np.zeros(self.num_groups, np.float32)
        self.last_group_loss = Parameter(Tensor(zeros), name=LAST_GROUP_LOSS, requires_grad=False)
        self.last_group_count = Parameter(Tensor(zeros), name=LAST_GROUP_COUNT, requires_grad=False)
        self.grad_clean = ms.value_and_grad(self.clean_loss, None, self.weights, has_aux=True)
        if self.perturbs:
            self.backup = self.weights.clone(prefix=f"{SCRATCH_PREFIX}.weights", init="zeros")
            # BatchNorm moving statistics (and any other non-trainable network state) must
            # end the step as pass 1 left them; use_batch_statistics does not do that.
            self.stats = ParameterTuple(network.untrainable_params())
            self.stats_backup = self.stats.clone(prefix=f"{SCRATCH_PREFIX}.stats", init="zeros")

    def init_group_weights(self, eta, absent_groups):
        """The exponentiated-gradient group-weight update (groupdro, sharpdro)."""
        self.eta = float(eta)
        self.skip_absent = absent_groups == "skip"

    def init_perturbation(self, rho, adaptive):
        """The sharpness pass (sam, sharpdro, sharpdro_agnostic)."""
        self.rho = float(rho)
        self.adaptive = bool(adaptive)

    # -- losses -----------------------------------------------------------------------
    def clean_loss(self, image, label, group):
        """Batch-mean loss (differentiated) and, as aux, per-sample loss, group means,
        counts and the logits."""
        logits = self.network(image)
        return self.group_loss(logits, label, group) + (logits,)

    # -- perturbation toolkit -----------------------------------------------------------
    # Graph mode orders Parameter writes after the reads written before them, but some
    # backward kernels (BatchNorm's scale) read a Parameter when they run, not when the
    # forward ran. So every write below takes an explicit ``after``: the values that must
    # be fully computed first (for restore: the pass-2 gradients).
    def perturb(self, grads):
        """theta <- theta + rho * g / ||g|| (ASAM: rho * theta^2 g / ||theta g||), saving theta."""
        squares = self.hyper_map(ops.partial(_square_sum, self.adaptive), self.weights, grads)
        norm = ops.sqrt(ops.addn(squares))
        scale = self.rho / (norm + 1e-12)
        saved = self.hyper_map(ops.partial(_assign_after, grads), self.backup, self.weights)
        scale = ops.depend(scale, saved)
        return self.hyper_map(ops.partial(_ascend, self.adaptive, scale), self.weights, grads)

    def restore(self, after):
        return self.hyper_map(ops.partial(_assign_after, after), self.weights, self.backup)

    def save_stats(self, after):
        return self.hyper_map(ops.partial(_assign_after, after), self.stats_backup, self.stats)

    def restore_stats(self, after):
        return self.hyper_map(ops.partial(_assign_after, after), self.stats, self.stats_backup)

    # -- bookkeeping ----------------------------------------------------------------------
    def new_group_weights(self, group_loss, counts):
        return update_group_weights(self.group_weights, group_loss, counts, self.eta,
                                    self.skip_absent)

    def record(self, group_loss, counts):
        """Keep the last step's per-group loss and counts for callbacks."""
        a = ops.assign(self.last_group_loss, group_loss)
        return ops.depend(ops.assign(self.last_group_count, counts), a)

    def add_grads(self, a, b):
        return self.hyper_map(_add, a, b)

    def apply(self, grads, loss, group_loss, counts):
        """Optimizer step, diagnostics; returns ``loss`` after both have run."""
        loss = ops.depend(loss, self.optimizer(grads))
        return ops.depend(loss, self.record(group_loss, counts))


class EvalCell(nn.Cell):
    """(image, label, group) -> (batch-mean loss, logits, label) for ``Model.eval``.

    Use with ``Model(..., eval_network=EvalCell(net), eval_indexes=[0, 1, 2])``.
    """

    def __init__(self, network):
        super().__init__(auto_prefix=False)
        self.network = network

    def construct(self, image, label, group):
        logits = self.network(image)
        loss = ops.cross_entropy(logits.astype(ms.float32), label, reduction="mean")
        return loss, logits, label
