"""Train-state checkpoints (save, resume) and trained weights loaded into a bare network,
with clear errors for a mismatch."""
import json
import os

import mindspore as ms

from .algorithms import SCRATCH_PREFIX
from .atomic import atomic_path
from .models import create_model_from_config
from .runtime import quiet_mindspore_log


def read_checkpoint(path):
    """{name: value} of a checkpoint file; ValueError if it is missing, truncated or corrupt."""
    if not os.path.isfile(path):
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        return ms.load_checkpoint(path)
    except Exception as err:  # MindSpore raises ValueError or RuntimeError for bad files
        raise ValueError(f"checkpoint {path} cannot be read (truncated or corrupt?): "
                         f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def load_network_weights(network, ckpt_path):
    """Load the network's parameters from a train-state or plain checkpoint.

    Raises ValueError naming parameters that are missing or whose shapes differ.
    """
    saved = read_checkpoint(ckpt_path)
    problems = []
    for p in network.get_parameters():
        if p.name not in saved:
            problems.append(f"{p.name}: missing from checkpoint")
        elif tuple(saved[p.name].shape) != tuple(p.shape):
            problems.append(f"{p.name}: checkpoint {tuple(saved[p.name].shape)} vs model {tuple(p.shape)}")
    if problems:
        shown = "\n  ".join(problems[:20]) + ("\n  ..." if len(problems) > 20 else "")
        raise ValueError(f"checkpoint {ckpt_path} does not fit the model "
                         f"({len(problems)} parameters):\n  {shown}")
    ms.load_param_into_net(network, {p.name: saved[p.name] for p in network.get_parameters()},
                           strict_load=True)
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

    Raises ValueError when the checkpoint does not fit the cell (names the parameters)."""
    saved = read_checkpoint(path)
    run_state = run_state_of(saved, path)
    wanted = [p for p in cell.get_parameters() if not p.name.startswith(SCRATCH_PREFIX)
              and not p.name.startswith(FROM_CONFIG)]
    problems = [f"{p.name}: missing from checkpoint" for p in wanted if p.name not in saved]
    problems += [f"{p.name}: checkpoint {tuple(saved[p.name].shape)} vs model {tuple(p.shape)}"
                 for p in wanted if p.name in saved and tuple(saved[p.name].shape) != tuple(p.shape)]
    if problems:
        raise ValueError(f"checkpoint {path} does not fit this run ({len(problems)} parameters):"
                         "\n  " + "\n  ".join(problems[:20]))
    with quiet_mindspore_log():  # it warns of the parameters left out on purpose
        ms.load_param_into_net(cell, {p.name: saved[p.name] for p in wanted})
    return run_state
