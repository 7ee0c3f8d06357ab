"""The callbacks of one training run, in the order they must run, and the end of a run."""
import os

import yaml
from mindspore.train import Callback

from .checkpoint import Checkpointer
from .evaluation import SeverityEval
from .interrupt import Interrupt
from .plots import plot_accuracy_by_group, plot_group_weights, plot_selection
from .progress import NanGuard, ProgressLogger, StopAtStep
from .replicas import AverageReplicas
from .selection_log import SelectionLogger


def create_callbacks(cell, network, data, state, folder, cfg, lrs, rank=0, world_size=1,
                     export=None):
    """(the Interrupt to enter around training, the callback list for ``Model.train``).

    The order matters. Per step: Interrupt first (a signal recorded during the step stops
    before anything logs it), NanGuard next (a NaN stops before anything logs it),
    StopAtStep before the loggers (they read state.stopped through is_last_step). Per
    epoch: AverageReplicas (every rank) before anything reads the BatchNorm statistics;
    SeverityEval records the best metric before Checkpointer decides whether this epoch is
    best.ckpt. At the end: RunEnd after Checkpointer wrote the files. Every rank evaluates
    its share of the evaluation sets; only rank 0 logs, writes and exports. ``export``:
    called with the best checkpoint at the end (None: no export)."""
    main_rank = rank == 0
    interrupt = Interrupt()
    callbacks = [interrupt, NanGuard(), StopAtStep(state), AverageReplicas(network, world_size)]
    if main_rank:
        callbacks += [ProgressLogger(cell, lrs, state, cfg.train.log_every, folder,
                                     group_names=data.group_names),
                      SelectionLogger(cell, state, cfg.train.log_every, folder)]
    callbacks.append(SeverityEval(network, {"val": data.val, "test": data.test}, state, folder,
                                  cfg.train.best_metric, cfg.train.eval_max_batches,
                                  rank=rank, world_size=world_size, kind=data.arrays.group_kind))
    if main_rank:
        callbacks += [Checkpointer(cell, folder, state, cfg.seed,
                                   yaml.safe_dump(cfg.to_dict(), sort_keys=False),
                                   cfg.train.best_metric, world_size),
                      RunEnd(folder, state, export)]
    return interrupt, callbacks


def finish_run(folder, export=None):
    """The end of a run, one owner (RunEnd, and train.py for a resumed run whose last epoch
    had already been trained): the plots of the group weights (if they moved), of
    sharpdro_agnostic's selection per group and of the accuracy per severity or group,
    then ``export(best checkpoint)``."""
    info = folder.data_info() or {}
    plot_group_weights(folder.file(folder.WEIGHTS_LOG), folder.plot("group_weights"),
                       absent_groups(folder))
    plot_selection(folder.file(folder.SELECTION), folder.plot("selection"),
                   info.get("group_names"))
    plot_accuracy_by_group(folder.file(folder.EVAL_LOG),
                           folder.accuracy_plot(info.get("group_kind", "severity")))
    if export is not None:
        export(folder.model_checkpoint())


def absent_groups(folder):
    """The run's algorithm.absent_groups as its config.yaml has it (None: not there)."""
    path = folder.file(folder.CONFIG)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return ((yaml.safe_load(f) or {}).get("algorithm") or {}).get("absent_groups")


class RunEnd(Callback):
    """finish_run when the run is over (not when one epoch's Model.train call returns)."""

    def __init__(self, folder, state, export=None):
        super().__init__()
        self.folder, self.state, self.export = folder, state, export

    def on_train_end(self, run_context):
        if self.state.is_over(run_context.original_args()):
            finish_run(self.folder, self.export)
