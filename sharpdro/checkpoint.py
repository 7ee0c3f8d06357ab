"""Train-state checkpoints (save, resume) and trained weights loaded into a bare network,
with clear errors for a mismatch."""
import json
import os
from dataclasses import dataclass, field

import mindspore as ms

from .algorithms import SCRATCH_PREFIX
from .atomic import atomic_path
from .models import create_model_from_config, in_head
from .runtime import quiet_mindspore_log


def read_checkpoint(path):
    """{name: value} of a checkpoint file; ValueError if it is missing, truncated or corrupt."""
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        with quiet_mindspore_log():  # its own ERROR line would repeat ours
            return ms.load_checkpoint(path)
    except Exception as err:  # MindSpore raises ValueError or RuntimeError for bad files
        if isinstance(err.__cause__, KeyboardInterrupt):  # its reader turns Ctrl-C into a
            raise KeyboardInterrupt from None             # ValueError "may not have permission"
        raise ValueError(f"checkpoint {path} cannot be read (truncated or corrupt?): "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


SHOWN = 5  # mismatched parameters named in an error


@dataclass
class Match:
    """What ``load_matching`` did: parameter names by what became of them."""
    loaded: list = field(default_factory=list)
    reinitialised: list = field(default_factory=list)  # the head, for another class count
    adapted: list = field(default_factory=list)  # colour stem summed for grey input
    skipped: list = field(default_factory=list)  # in the file, not in the model


def _colour_stem(have, want):
    """Whether a 4-D weight stored as ``have`` is the colour (3-channel) form of ``want``,
    which takes 1 channel."""
    return (len(want) == 4 and want[1] == 1 and len(have) == 4 and have[1] == 3
            and have[0] == want[0] and have[2:] == want[2:])


def load_matching(network, saved, path, mode="strict", head=None, parameters=None):
    """Load checkpoint values ``saved`` (read from ``path``) into ``network``, matching its
    parameters by name and shape.

    - mode ``"strict"`` (eval, export, resume): every parameter must be in the file with
      its shape.
    - mode ``"start"`` (start weights): the head (attribute path ``head``) keeps its
      initialisation where the file's has another class count (or the file has none), and
      a 4-D weight stored for 3 input channels where the network takes 1 is summed over
      the channels (the network computes the file's on the grey image repeated 3 times).
    - ``parameters``: the network's parameters to fill (default all); entries of the file
      that are none of them are skipped (the run state and scratch entries are not listed).

    Returns a :class:`Match`. Any other parameter that is missing or of another shape is a
    one-line ValueError naming the file, the count and the first ``SHOWN`` names; the
    network is untouched then.
    """
    if mode not in ("strict", "start"):
        raise ValueError(f"load_matching: mode {mode!r} is not 'strict' or 'start'")
    parameters = list(network.get_parameters() if parameters is None else parameters)
    match, values, problems = Match(), {}, []
    for p in parameters:
        name, want = p.name, tuple(p.shape)
        have = tuple(saved[name].shape) if name in saved else None
        if have == want:
            values[name] = saved[name]
            match.loaded.append(name)
        elif mode == "start" and in_head(name, head) and (have is None or have[1:] == want[1:]):
            match.reinitialised.append(name)  # class count differs: keep the new init
        elif mode == "start" and have is not None and _colour_stem(have, want):
            summed = saved[name].asnumpy().sum(axis=1, keepdims=True)
            values[name] = ms.Parameter(ms.Tensor(summed), name=name)
            match.adapted.append(name)
        else:
            problems.append(f"{name}: " + ("not in the file" if have is None else
                                           f"{have} in the file, {want} in the model"))
    if problems:
        more = f"; ... ({len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise ValueError(f"checkpoint {path} does not fit this model ({len(problems)} of "
                         f"{len(parameters)} parameters; a checkpoint of another "
                         "architecture?): " + "; ".join(problems[:SHOWN]) + more)
    own = {p.name for p in parameters}
    match.skipped = sorted(k for k in saved if k not in own and k != STATE_KEY
                           and not k.startswith(SCRATCH_PREFIX))
    with quiet_mindspore_log():  # it warns of the parameters left out on purpose
        ms.load_param_into_net(network, values, strict_load=False)
    return match


def load_network_weights(network, ckpt_path):
    """Load the network's parameters from a train-state or plain checkpoint (every one must
    match, see ``load_matching``); returns the checkpoint's {name: value}."""
    saved = read_checkpoint(ckpt_path)
    load_matching(network, saved, ckpt_path)
    return saved


def create_trained_model(model_cfg, num_classes, in_channels, ckpt_path):
    """The config's model with the checkpoint's weights, in inference mode."""
    network = create_model_from_config(model_cfg, num_classes, in_channels)
    load_network_weights(network, ckpt_path)
    network.set_train(False)
    return network


def copy_trained_model(model_cfg, num_classes, in_channels, trained):
    """The config's model (float32, inference mode) with the values of ``trained``'s
    parameters: what loading the checkpoint written from ``trained`` gives, without reading
    a file another process may still be writing."""
    network = create_model_from_config(model_cfg, num_classes, in_channels)
    values = {p.name: ms.Parameter(ms.Tensor(p.asnumpy()), name=p.name)
              for p in trained.get_parameters()}
    ms.load_param_into_net(network, {p.name: values[p.name] for p in network.get_parameters()},
                           strict_load=True)
    network.set_train(False)
    return network


STATE_KEY = "run_state"  # JSON text in the checkpoint: epoch, step, seed, best metric, config


def save_train_state(cell, path, run_state):
    """Everything needed to resume: network weights, optimizer state (moments, step, lr),
    group weights, and ``run_state`` (a JSON-able dict). Written to a temporary name and
    renamed, so a crash or a full disk never leaves a half-written ``path``."""
    with atomic_path(path) as tmp:
        ms.save_checkpoint(cell, tmp, append_dict={STATE_KEY: json.dumps(run_state)},
                           choice_func=lambda name: not name.startswith(SCRATCH_PREFIX))


def run_state_of(saved, path):
    """The run state in a checkpoint's ``saved`` dict (removed from it); ValueError if the
    checkpoint has none (a plain weights file)."""
    if STATE_KEY not in saved:
        raise ValueError(f"{path} is not a training checkpoint of this project (no {STATE_KEY})")
    return json.loads(saved.pop(STATE_KEY))


def read_run_state(path):
    """The run state (epoch, step, best metric, ...) of the training checkpoint at ``path``."""
    return run_state_of(read_checkpoint(path), path)


# the optimizer's per-step learning rates: rebuilt from the config, never loaded (a resumed
# run may change optim.lr or train.epochs, see sharpdro/config.py RESUMABLE); with
# parameter groups of their own rate (optim.backbone_lr_scale) learning_rate_group_<i> too
FROM_CONFIG = "learning_rate"


def load_train_state(cell, path):
    """Load a ``save_train_state`` checkpoint into a train cell; returns its run_state.
    The learning rates stay the cell's own (FROM_CONFIG).

    Raises ValueError when the checkpoint does not fit the cell (``load_matching``'s error)."""
    saved = read_checkpoint(path)
    run_state = run_state_of(saved, path)
    wanted = [p for p in cell.get_parameters() if not p.name.startswith(SCRATCH_PREFIX)
              and not p.name.startswith(FROM_CONFIG)]
    load_matching(cell, saved, path, parameters=wanted)
    return run_state
