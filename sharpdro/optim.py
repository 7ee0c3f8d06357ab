"""SGD with momentum and weight decay, and per-step learning-rate schedules.

MindSpore's optimizers skip weight decay on parameters named gamma/beta unless parameters
are grouped; the authors' PyTorch code decays every parameter. ``decay_bn_bias`` chooses.
"""
import math

from mindspore import nn

from .choices import MAX_STEPS, SCHEDULES
from .models import in_head


def _is_bn_or_bias(param):
    # BatchNorm scale/shift and biases are the 1-D parameters in every model here.
    return len(param.shape) <= 1


def create_optimizer(params, lr, momentum=0.9, weight_decay=5e-4, decay_bn_bias=True,
                     backbone_lr_scale=1.0, head=None):
    """``nn.Momentum``: d = g + wd * theta; buf = m * buf + d; theta -= lr * buf.

    ``lr`` is a float or a per-step list (see :func:`lr_schedule`). ``backbone_lr_scale``
    (fine-tuning): every parameter outside the head (attribute path ``head``) steps at
    that multiple of ``lr``.
    """
    params = list(params)
    if not params:
        raise ValueError("no trainable parameters to optimise")
    backbone_lr_scale = float(backbone_lr_scale)
    if not math.isfinite(backbone_lr_scale) or backbone_lr_scale < 0:
        raise ValueError(f"backbone_lr_scale must be finite and >= 0, got {backbone_lr_scale}")
    if backbone_lr_scale != 1.0 and head is None:
        raise ValueError("backbone_lr_scale needs the model's head (the classifier layer) "
                         "to tell the backbone apart")

    def decay(p):
        return weight_decay if decay_bn_bias or not _is_bn_or_bias(p) else 0.0

    def scale(p):
        return 1.0 if backbone_lr_scale == 1.0 or in_head(p.name, head) else backbone_lr_scale

    groups = {}  # (weight decay, lr scale) -> parameters, in a fixed order
    for p in params:
        groups.setdefault((decay(p), scale(p)), []).append(p)
    out = []
    for (wd, factor) in sorted(groups, key=lambda k: (k[0] != weight_decay, k[1] != 1.0)):
        group = {"params": groups[(wd, factor)], "weight_decay": wd}
        if factor != 1.0:
            group["lr"] = ([factor * v for v in lr] if isinstance(lr, (list, tuple))
                           else factor * lr)
        out.append(group)
    return nn.Momentum(out, learning_rate=lr, momentum=momentum)


def lr_schedule(base_lr, total_steps, schedule="step", milestones=(0.3, 0.6, 0.8), gamma=0.2,
                milestone_unit="step", steps_per_epoch=None):
    """Learning rate of every step 0..total_steps-1.

    step: multiplied by ``gamma`` at each milestone (a fraction of training); cosine: from
    base_lr to 0 over training; constant. ``milestone_unit`` "step": from the first step at
    or past round(m * total_steps); "epoch" (the authors' code, which sets the rate after
    each epoch from that epoch's index): epoch e (0-based) runs at the rate of e - 1, so
    with 200 epochs the first x``gamma`` epoch is 61, one later than "step" gives.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule {schedule!r} is not one of {SCHEDULES}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if total_steps > MAX_STEPS:
        raise ValueError(f"{total_steps:,} steps: more than {MAX_STEPS:,} (the schedule holds "
                         "a learning rate per step, about 55 bytes of memory each)")
    if schedule == "constant":
        return [float(base_lr)] * total_steps
    if schedule == "cosine":
        return [0.5 * base_lr * (1.0 + math.cos(math.pi * s / total_steps)) for s in range(total_steps)]
    if milestone_unit == "epoch":
        if not steps_per_epoch or total_steps % steps_per_epoch:
            raise ValueError(f"milestone_unit 'epoch' needs the steps per epoch; got "
                             f"{steps_per_epoch} for {total_steps} steps")
        epochs = total_steps // steps_per_epoch
        bounds = [int(round(m * epochs)) for m in milestones]
        return [base_lr * gamma ** sum(s // steps_per_epoch - 1 >= b for b in bounds)
                for s in range(total_steps)]
    if milestone_unit != "step":
        raise ValueError(f"milestone_unit must be 'step' or 'epoch', got {milestone_unit!r}")
    bounds = [int(round(m * total_steps)) for m in milestones]
    return [base_lr * gamma ** sum(s >= b for b in bounds) for s in range(total_steps)]


def lr_schedule_from_config(optim_cfg, steps_per_epoch, epochs):
    """lr_schedule of the config's optim section over ``epochs`` x ``steps_per_epoch``
    steps; more than MAX_STEPS is a one-line ValueError, before anything is allocated."""
    if steps_per_epoch * epochs > MAX_STEPS:
        raise ValueError(f"train.epochs {epochs} x {steps_per_epoch} steps per epoch = "
                         f"{steps_per_epoch * epochs:,} steps: more than {MAX_STEPS:,} (the "
                         "learning-rate schedule holds a rate per step, about 55 bytes of "
                         "memory each); lower train.epochs or raise train.batch_size")
    return lr_schedule(optim_cfg["lr"], steps_per_epoch * epochs, optim_cfg["schedule"],
                       optim_cfg["milestones"], optim_cfg["gamma"], optim_cfg["milestone_unit"],
                       steps_per_epoch)


def create_optimizer_from_config(optim_cfg, params, lrs, head=None):
    """The config's optimizer with per-step learning rates ``lrs`` (see lr_schedule_from_config);
    ``head``: the model's classifier layer, for ``backbone_lr_scale``."""
    return create_optimizer(params, lrs, optim_cfg["momentum"], optim_cfg["weight_decay"],
                            optim_cfg["decay_bn_bias"], optim_cfg["backbone_lr_scale"], head)
