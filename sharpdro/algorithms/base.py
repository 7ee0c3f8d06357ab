"""The shared toolkit of the train-one-step cells.

Every algorithm is an ``nn.Cell`` taking (image, label, group) and returning the batch-mean
cross-entropy at the current weights (comparable across algorithms), so it can be handed
to ``mindspore.Model`` as the train network. Parameters loop through ``ops.HyperMap``: a
Python loop over ~100 parameters exceeds the graph compiler's call-depth limit.

The cells index the outputs they use (``out[0]``, ``f(...)[1]``) instead of unpacking into
``_``: in graph mode an unpacked, unused element of a call with side effects (BatchNorm's
statistics updates) draws MindSpore's warning "Some side effect nodes were eliminated by
mistake" (harmless: the NumPy reference and the BatchNorm tests pin the side effects).
"""
import numpy as np

import mindspore as ms
from mindspore import nn, ops, Parameter, ParameterTuple, Tensor

from ..groups import group_adjustment
from ..losses import GroupLoss, safe_mean, update_group_weights
from .protocol import ONE_STAGE
from .registry import ALGORITHMS

# Stable names: checkpoints and callbacks find the group state by these.
GROUP_WEIGHTS = "group_weights"
LAST_GROUP_LOSS = "last_group_loss"
LAST_GROUP_COUNT = "last_group_count"
# Prefix of the scratch copies used by the perturbation; they carry no state between
# steps, so a checkpoint writer may drop them.
SCRATCH_PREFIX = "scratch"
LOSS_SCALE = "loss_scale"
LAST_OVERFLOW = "last_overflow"  # (pass 1, pass 2): 1 where the gradients were not finite

_assign_after = ops.MultitypeFuncGraph("assign_after")
_square_sum = ops.MultitypeFuncGraph("square_sum")
_ascend = ops.MultitypeFuncGraph("ascend")


@_assign_after.register("Tensor", "Tensor", "Tensor")
def _assign_tensor(after, dst, src):
    return ops.assign(dst, ops.depend(src, after))


def _token(after):
    """``after`` as one Tensor that depends on all of it: a tuple passed to a
    MultitypeFuncGraph in PyNative mode goes through MindSpore's deprecated pytype_to_dtype,
    which logs a warning on every step."""
    if isinstance(after, (tuple, list)):
        return ops.depend(after[0], after)
    return after


# Plain and adaptive (ASAM) variants as separate functions rather than one taking a Python
# bool: in PyNative mode a MultitypeFuncGraph called with a Python scalar argument looks
# its type up through MindSpore's deprecated pytype_to_dtype, which logs a warning on
# every step.
_square_sum_adaptive = ops.MultitypeFuncGraph("square_sum_adaptive")
_ascend_adaptive = ops.MultitypeFuncGraph("ascend_adaptive")


@_square_sum.register("Tensor", "Tensor")
def _square_sum_tensor(param, grad):
    return ops.reduce_sum(grad * grad)


@_square_sum_adaptive.register("Tensor", "Tensor")
def _square_sum_adaptive_tensor(param, grad):
    grad = ops.abs(param) * grad
    return ops.reduce_sum(grad * grad)


@_ascend.register("Tensor", "Tensor", "Tensor")
def _ascend_tensor(scale, param, grad):
    return ops.assign(param, param + scale * grad)


@_ascend_adaptive.register("Tensor", "Tensor", "Tensor")
def _ascend_adaptive_tensor(scale, param, grad):
    return ops.assign(param, param + scale * (param * param * grad))


_add = ops.MultitypeFuncGraph("add")
_mul = ops.MultitypeFuncGraph("mul")
_is_finite = ops.MultitypeFuncGraph("is_finite")


@_mul.register("Tensor", "Tensor")
def _mul_tensor(scale, x):
    return x * scale


@_is_finite.register("Tensor")
def _is_finite_tensor(x):
    return ops.isfinite(x).all().astype(ms.float32)

_all_reduce = ops.MultitypeFuncGraph("all_reduce")


@_all_reduce.register("Function", "Tensor")
def _all_reduce_tensor(op, tensor):
    return op(tensor)



@_add.register("Tensor", "Tensor")
def _add_tensor(a, b):
    return a + b


def reads_group_column(cls):
    """True if the cell class needs the data's group column: its update reads the group
    labels, or it is a two-stage method's stage 2 (eiil's groups are the inferred ones).
    The others (erm, sam, cvar, sharpdro_agnostic) also train on (image, label) data."""
    return cls.uses_group_labels or cls.kind != ONE_STAGE


class TrainStep(nn.Cell):
    """Base train-one-step cell: pass 1 (loss and gradient at theta), group bookkeeping,
    and the data-parallel reductions.

    Subclasses implement ``construct``. ``perturbs`` = True adds the scratch copies for the
    sharpness pass (weights and non-trainable network state such as BatchNorm moving
    statistics).

    Data parallel (``world_size`` > 1, one process per device, each with its slice of the
    global batch): every differentiated loss is this rank's *share* of the global-batch
    loss (local sums over global counts), so the all-reduced sum of the gradients is the
    gradient of the global-batch loss, and group sums and counts are all-reduced before
    any group mean is taken. A step is then the one-process step on the global batch (up
    to BatchNorm's per-rank batch statistics). With ``world_size`` 1 nothing is reduced.
    """

    perturbs = False
    # True: the update adds pass 1's gradient to pass 2's (sharpdro, sharpdro_agnostic); it
    # is parked in a buffer across pass 2 (hold_grads)
    adds_clean_grads = False

    # True: the update reads the group labels (refused on data without them)
    uses_group_labels = False
    kind = ONE_STAGE  # how the method trains (protocol.py): jtt and eiil are two-stage
    # tune.py's default candidates beside the method itself where the data has groups:
    # '+balanced' (data.sampler group_balanced), '+option=value' (a fixed option)
    tune_variants = ()

    def __init__(self, network, optimizer, num_groups, world_size):
        """Hyperparameters are keyword arguments of the subclasses, without defaults: their
        defaults and ranges live in ``sharpdro/hparams.py`` and ``create_train_step``
        fills and checks them."""
        super().__init__(auto_prefix=False)
        if int(num_groups) < 1:
            raise ValueError(f"num_groups must be >= 1, got {num_groups}")
        if int(world_size) < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        self.world_size = int(world_size)
        self.needs_groups = reads_group_column(type(self))
        free = ", ".join(n for n in ALGORITHMS.names() if not reads_group_column(ALGORITHMS.get(n)))
        self.no_group_column = (
            f"{type(self).__name__} reads the group column: the data must have three columns "
            f"(image, label, group int32 in 0..num_groups-1); only {free} train on (image, "
            "label) alone")
        self.distributed = self.world_size > 1
        if self.distributed:
            self.all_reduce = ops.AllReduce()  # sum over the ranks
        self.network = network
        self.network.set_grad()
        self.optimizer = optimizer
        # Gradients must come in the optimizer's parameter order (grouped optimizers reorder).
        self.weights = optimizer.parameters
        self.num_groups = int(num_groups)
        self.group_loss = GroupLoss(num_groups, world_size)
        self.hyper_map = ops.HyperMap()
        uniform = np.full(self.num_groups, 1.0 / self.num_groups, np.float32)
        self.group_weights = Parameter(Tensor(uniform), name=GROUP_WEIGHTS, requires_grad=False)
        zeros = np.zeros(self.num_groups, np.float32)
        self.last_group_loss = Parameter(Tensor(zeros), name=LAST_GROUP_LOSS, requires_grad=False)
        self.last_group_count = Parameter(Tensor(zeros), name=LAST_GROUP_COUNT, requires_grad=False)
        self.grad_clean = ms.value_and_grad(self.clean_loss, None, self.weights, has_aux=True)
        self.scaling = False  # dynamic loss scaling: enable_loss_scale()
        if self.perturbs:
            self.backup = self.weights.clone(prefix=f"{SCRATCH_PREFIX}.weights", init="zeros")
            # BatchNorm moving statistics (and any other non-trainable network state) must
            # end the step as pass 1 left them; use_batch_statistics does not do that.
            self.stats = ParameterTuple(network.untrainable_params())
            self.stats_backup = self.stats.clone(prefix=f"{SCRATCH_PREFIX}.stats", init="zeros")
            if self.adds_clean_grads:
                self.held = self.weights.clone(prefix=f"{SCRATCH_PREFIX}.grads", init="zeros")

    def init_group_weights(self, eta, absent_groups, adjustment=0.0, group_counts=None):
        """The exponentiated-gradient group-weight update (groupdro, sharpdro); with
        ``adjustment`` C > 0 it uses L_g + C / sqrt(n_g), ``group_counts`` the n_g."""
        self.eta = float(eta)
        self.skip_absent = absent_groups == "skip"
        self.adjust = None  # C = 0: the update is exactly the plain one
        if adjustment > 0:
            self.adjust = Tensor(group_adjustment(adjustment, group_counts, self.num_groups),
                                 ms.float32)

    def init_perturbation(self, rho, adaptive, sync_perturbation):
        """The sharpness pass (sam, sharpdro, sharpdro_agnostic)."""
        self.rho = float(rho)
        self.adaptive = bool(adaptive)
        self.sync_perturbation = bool(sync_perturbation)

    def enable_loss_scale(self, init_scale=2.0 ** 16, factor=2.0, window=2000):
        """Dynamic loss scaling over the whole step (both passes of the two-pass methods):
        every differentiated loss is multiplied by the scale and every gradient divided
        by it (a power of 2: exact). A step whose pass 1 or pass 2 gradients are not
        finite is skipped entirely: theta is restored (the perturbation's backup), the
        BatchNorm statistics and group weights are put back as they were before the
        step, the optimizer is not called (moments and step counter untouched), and the
        scale is divided by ``factor``; after ``window`` finite steps in a row it is
        multiplied by ``factor``. Data parallel: the check reads the all-reduced
        gradients, identical on every rank, so all ranks skip together."""
        self.scaling = True
        self.scale_factor, self.scale_window = float(factor), float(window)
        self.loss_scale = Parameter(Tensor(np.float32(init_scale)), name=LOSS_SCALE,
                                    requires_grad=False)
        self.good_steps = Parameter(Tensor(np.float32(0)), name=f"{LOSS_SCALE}_good_steps",
                                    requires_grad=False)
        self.last_overflow = Parameter(Tensor(np.zeros(2, np.float32)), name=LAST_OVERFLOW,
                                       requires_grad=False)
        self.step_stats = ParameterTuple(self.network.untrainable_params())
        self.step_stats_backup = self.step_stats.clone(prefix=f"{SCRATCH_PREFIX}.start",
                                                       init="zeros")

    def groups(self, label, group):
        """The batch's group column; for data without one (``construct(image, label)``),
        group 0 for every sample, or the error of a cell that needs it."""
        if group is None:
            if self.needs_groups:
                raise ValueError(self.no_group_column)
            return ops.zeros_like(label)
        return group

    # -- losses -----------------------------------------------------------------------
    def clean_loss(self, image, label, group):
        """This rank's share of the batch-mean loss (differentiated; times the loss scale
        when scaling) and, as aux, per-sample loss, group sums, group counts and the
        logits."""
        logits = self.network(image)
        out = self.group_loss(logits, label, group)
        return (self.scale_loss(out[0]),) + out[1:] + (logits,)

    def scale_loss(self, loss):
        return loss * self.loss_scale if self.scaling else loss

    def unscale(self, grads):
        if self.scaling:
            return self.hyper_map(ops.partial(_mul, 1.0 / self.loss_scale), grads)
        return grads

    def all_finite(self, grads):
        """1.0 if every gradient entry is finite, else 0.0."""
        flags = self.hyper_map(_is_finite, grads)
        return ops.stack(flags).min()

    def finite_flags(self, pass1, pass2=None):
        """(pass 1, pass 2) finiteness of the (all-reduced) gradients; None unless scaling."""
        if not self.scaling:
            return None
        f1 = self.all_finite(pass1)
        return ops.stack((f1, f1 if pass2 is None else self.all_finite(pass2)))

    # -- data parallel ------------------------------------------------------------------
    def all_sum(self, x):
        return self.all_reduce(x) if self.distributed else x

    def all_sum_grads(self, grads):
        if self.distributed:
            return self.hyper_map(ops.partial(_all_reduce, self.all_reduce), grads)
        return grads

    def gather(self, share, sums, counts):
        """Global batch-mean loss, group means and group counts from this rank's share,
        group sums and counts (one all-reduce for all three)."""
        if self.scaling:  # the share comes scaled from clean_loss; a power of 2: exact
            share = share / self.loss_scale
        if self.distributed:
            g = self.num_groups
            packed = self.all_reduce(ops.concat((share.reshape(1), sums, counts)))
            share, sums, counts = packed[0], packed[1:1 + g], packed[1 + g:]
        return share, safe_mean(sums, counts), counts

    def eps_grads(self, local, global_):
        """The gradient that sets epsilon: the global batch's (every rank perturbs alike),
        or with ``sync_perturbation`` off this rank's own (its direction is that of the
        local batch mean: the share only rescales it)."""
        return global_ if self.sync_perturbation else local

    # -- perturbation toolkit -----------------------------------------------------------
    # Graph mode orders Parameter writes after the reads written before them, but some
    # backward kernels (BatchNorm's scale) read a Parameter when they run, not when the
    # forward ran. So every write below takes an explicit ``after``: the values that must
    # be fully computed first (for restore: the pass-2 gradients).
    def perturb(self, grads):
        """theta <- theta + rho * g / ||g|| (ASAM: rho * theta^2 g / ||theta g||), saving theta."""
        square_sum, ascend = ((_square_sum_adaptive, _ascend_adaptive) if self.adaptive
                              else (_square_sum, _ascend))
        squares = self.hyper_map(square_sum, self.weights, grads)
        norm = ops.sqrt(ops.addn(squares))
        scale = self.rho / (norm + 1e-12)
        saved = self.hyper_map(ops.partial(_assign_after, _token(grads)), self.backup, self.weights)
        scale = ops.depend(scale, saved)
        return self.hyper_map(ops.partial(ascend, scale), self.weights, grads)

    def restore(self, after):
        return self.hyper_map(ops.partial(_assign_after, _token(after)), self.weights, self.backup)

    def save_stats(self, after):
        return self.hyper_map(ops.partial(_assign_after, _token(after)), self.stats_backup, self.stats)

    def restore_stats(self, after):
        return self.hyper_map(ops.partial(_assign_after, _token(after)), self.stats, self.stats_backup)

    # The two-pass skeleton of a sharpness-aware step, in two calls: ``hold_stats`` once the
    # clean pass is done, then ``at_perturbed`` with the loss whose gradient is wanted at
    # theta + eps. A new algorithm writes only its losses (docs/extending.md).
    def hold_stats(self, image, after):
        """Save the network's non-trainable state (BatchNorm moving statistics) once
        ``after`` is computed; whatever runs on the returned ``image`` until
        ``at_perturbed`` returns leaves no trace in that state."""
        return ops.depend(image, self.save_stats(after))

    def hold_grads(self, image, grads):
        """Park pass 1's gradients in a buffer the size of the weights until the update.
        Kept as tensors across pass 2 instead, they pin pass 1's memory, which the graph
        could otherwise reuse for pass 2 (measured in benchmarks/README.md)."""
        return ops.depend(image, self.hyper_map(ops.partial(_assign_after, image), self.held,
                                                grads))

    def with_held_grads(self, grads):
        """The parked pass-1 gradients plus ``grads``."""
        return self.hyper_map(_add, self.held, grads)

    def at_perturbed(self, image, eps_grads, grad_fn, *args):
        """The gradient of ``grad_fn(image, *args)`` (a ``value_and_grad`` over
        ``self.weights``) at theta + eps, eps = rho along ``eps_grads``: all-reduced and
        unscaled. theta and the held statistics are put back once it is computed."""
        image = ops.depend(image, self.perturb(eps_grads))
        grads = self.unscale(self.all_sum_grads(grad_fn(image, *args)[1]))
        grads = ops.depend(grads, self.restore(grads))
        return ops.depend(grads, self.restore_stats(grads))

    # -- bookkeeping ----------------------------------------------------------------------
    def new_group_weights(self, group_loss, counts):
        if self.adjust is not None:
            group_loss = group_loss + self.adjust
        return update_group_weights(self.group_weights, group_loss, counts, self.eta,
                                    self.skip_absent)

    def record(self, group_loss, counts):
        """Keep the last step's per-group loss and counts for callbacks."""
        a = ops.assign(self.last_group_loss, group_loss)
        return ops.depend(ops.assign(self.last_group_count, counts), a)

    def begin(self, image):
        """Before pass 1 (loss scaling only): keep what a skipped step must put back.
        Returns (image after the copy, group weights as they were)."""
        if not self.scaling:
            return image, self.group_weights
        old = self.group_weights * 1.0
        saved = self.hyper_map(ops.partial(_assign_after, old), self.step_stats_backup,
                               self.step_stats)
        return ops.depend(image, saved), ops.depend(old, saved)

    def apply(self, grads, loss, group_loss, counts, finite=None, old_weights=None):
        """Optimizer step, diagnostics; returns ``loss`` after both have run. With loss
        scaling, ``finite`` = (pass-1 flag, pass-2 flag): the step is applied only if both
        are 1, else undone (see enable_loss_scale)."""
        if not self.scaling:
            loss = ops.depend(loss, self.optimizer(grads))
            return ops.depend(loss, self.record(group_loss, counts))
        loss = ops.depend(loss, ops.assign(self.last_overflow, 1.0 - finite))
        if finite.min() > 0.5:
            loss = ops.depend(loss, self.optimizer(grads))
            good = self.good_steps + 1.0
            grow = good >= self.scale_window
            loss = ops.depend(loss, ops.assign(self.loss_scale, ops.select(
                grow, self.loss_scale * self.scale_factor, self.loss_scale)))
            loss = ops.depend(loss, ops.assign(self.good_steps, ops.select(grow, good * 0.0, good)))
        else:
            loss = ops.depend(loss, self.hyper_map(ops.partial(_assign_after, _token(grads)),
                                                   self.step_stats, self.step_stats_backup))
            loss = ops.depend(loss, ops.assign(self.group_weights, old_weights))
            loss = ops.depend(loss, ops.assign(self.loss_scale, self.loss_scale / self.scale_factor))
            loss = ops.depend(loss, ops.assign(self.good_steps, self.good_steps * 0.0))
        return ops.depend(loss, self.record(group_loss, counts))
