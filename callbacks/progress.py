"""Worst-case group tracking: progress lines, train_log.csv, group_weights.csv and its plot;
the NaN guard; the max_steps stop."""
import math
import time

import numpy as np
from mindspore.train import Callback

from sharpdro.monitor import append_group_weights, append_row, group_columns, read_groups, worst_group

from .run_folder import RunFolder


def _loss_value(run_context):
    out = run_context.original_args().net_outputs
    return float(np.asarray(out.asnumpy()).reshape(-1)[0])


def format_seconds(seconds):
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class ProgressLogger(Callback):
    """Every ``every`` steps: a line with loss, lr, group weights, the worst group and the
    ETA (training plus the evaluations still to come), and a row in ``train_log.csv`` and
    ``group_weights.csv`` (finish_run plots it at the end of the run, if the weights moved)."""

    def __init__(self, cell, lrs, state, every, folder, print_fn=print, group_names=None):
        """``group_names``: the column suffixes (default 0..G-1, the severities)."""
        super().__init__()
        self.cell, self.lrs, self.state, self.every = cell, lrs, state, every
        self.folder, self.print = folder, print_fn
        names = list(range(cell.num_groups)) if group_names is None else list(group_names)
        if len(names) != cell.num_groups:
            raise ValueError(f"{len(names)} group names for {cell.num_groups} groups")
        self.names = names
        # seconds: since this process's first step; train_seconds: the same less the
        # evaluations (the step time that benchmarks/reproduce.py's cost column reads)
        self.log_header = (["epoch", "step", "loss", "lr", "seconds", "train_seconds"]
                           + group_columns("group_loss_", names))
        self.start = self.first_step = None

    def on_train_step_end(self, run_context):
        args = run_context.original_args()
        step = self.state.step(args)
        if self.start is None:  # timing from this process's first step
            self.start, self.first_step = time.time(), step - 1
        if step % self.every and not self.state.is_last_step(step):
            return
        loss = _loss_value(run_context)
        epoch = args.cur_epoch_num
        weights, group_loss = read_groups(self.cell)
        elapsed = time.time() - self.start
        # evaluations ran inside the elapsed time: not training time
        train_seconds = elapsed - self.state.eval_spent
        per_step = train_seconds / max(step - self.first_step, 1)
        eta = per_step * (self.state.total_steps - step)
        eta += self.state.evals_left(step) * (self.state.eval_seconds or 0.0)
        lr = self.lrs[min(step, len(self.lrs)) - 1]
        append_row(self.folder.file(RunFolder.TRAIN_LOG), self.log_header,
                   [epoch, step, f"{loss:.6f}", f"{lr:.6g}", f"{elapsed:.1f}",
                    f"{train_seconds:.2f}"] + [f"{v:.6f}" for v in group_loss])
        append_group_weights(self.folder.file(RunFolder.WEIGHTS_LOG), self.names, epoch, step,
                             weights)
        worst = worst_group(weights, self.names)
        # dynamic loss scaling: the scale falls at every skipped (overflowing) step
        scale = (f" scale {float(self.cell.loss_scale.asnumpy()):g}"
                 if self.cell.scaling else "")
        self.print(f"epoch {epoch} step {step}/{self.state.total_steps} loss {loss:.4f} lr {lr:.4g} "
                   f"w=[{' '.join(f'{v:.3f}' for v in weights)}] worst group {worst}{scale} "
                   f"| {format_seconds(elapsed)} elapsed, ETA {format_seconds(eta)} "
                   f"(evaluation included)", flush=True)


class NanGuard(Callback):
    """Stop with a clear message when the loss is NaN or infinite (before the epoch's
    checkpoint is written, so the last good checkpoint, if any, stays)."""

    def on_train_step_end(self, run_context):
        loss = _loss_value(run_context)
        if not math.isfinite(loss):
            step = run_context.original_args().cur_step_num
            run_context.request_stop()
            raise FloatingPointError(  # train.py says which checkpoint is kept
                f"training loss is {loss} at step {step} of epoch "
                f"{run_context.original_args().cur_epoch_num}; stopped")


class StopAtStep(Callback):
    """Stop after ``state.total_steps`` steps when that is fewer than the epochs hold."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_train_step_end(self, run_context):
        if self.state.is_last_step(self.state.step(run_context.original_args())):
            self.state.stopped = True
            run_context.request_stop()
