"""Worst-case group tracking: progress lines, train_log.csv, group_weights.csv and its plot;
the NaN guard; the max_steps stop."""
import csv
import math
import os
import time

import numpy as np
from mindspore.train import Callback

from sharpdro.atomic import atomic_path

from .plots import plot_group_weights


def _loss_value(run_context):
    out = run_context.original_args().net_outputs
    out = out[0] if isinstance(out, (tuple, list)) else out
    return float(np.asarray(out.asnumpy()).reshape(-1)[0])


def keep_rows(path, keep):
    """Rewrite a CSV keeping its header and the rows for which ``keep(row)`` holds."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(rows[:1] + [r for r in rows[1:] if keep(r)])


class ProgressLogger(Callback):
    """Every ``every`` steps: a line with loss, lr, group weights, the worst group and the
    ETA, and a row in ``train_log.csv`` and ``group_weights.csv``; at the end of the run,
    ``plots/group_weights.png``.

    ``resume_step``: continue the files of an earlier run, dropping rows logged after the
    checkpoint it resumes from.
    """

    def __init__(self, cell, lrs, state, every, run_dir, resume_step=None, print_fn=print):
        super().__init__()
        self.cell, self.lrs, self.state, self.every = cell, lrs, state, every
        self.print = print_fn
        self.log_path = os.path.join(run_dir, "train_log.csv")
        self.weights_path = os.path.join(run_dir, "group_weights.csv")
        self.plot_path = os.path.join(run_dir, "plots", "group_weights.png")
        groups = cell.num_groups
        headers = {self.log_path: ["epoch", "step", "loss", "lr", "seconds"]
                   + [f"group_loss_{s}" for s in range(groups)],
                   self.weights_path: ["epoch", "step"] + [f"w_{s}" for s in range(groups)]}
        for path, header in headers.items():
            if resume_step is not None and os.path.isfile(path):
                keep_rows(path, lambda row: int(row[1]) <= resume_step)
            else:
                with open(path, "w", newline="") as f:
                    csv.writer(f).writerow(header)
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
        weights = self.cell.group_weights.asnumpy()
        group_loss = self.cell.last_group_loss.asnumpy()
        elapsed = time.time() - self.start
        eta = elapsed / max(step - self.first_step, 1) * (self.state.total_steps - step)
        lr = self.lrs[min(step, len(self.lrs)) - 1]
        with open(self.log_path, "a", newline="") as f:
            csv.writer(f).writerow([epoch, step, f"{loss:.6f}", f"{lr:.6g}", f"{elapsed:.1f}"]
                                   + [f"{v:.6f}" for v in group_loss])
        with open(self.weights_path, "a", newline="") as f:
            csv.writer(f).writerow([epoch, step] + [f"{v:.6f}" for v in weights])
        # uniform weights (erm, sam, sharpdro_agnostic): no group is the worst
        worst = int(weights.argmax()) if np.ptp(weights) > 1e-7 else "-"
        self.print(f"epoch {epoch} step {step}/{self.state.total_steps} loss {loss:.4f} lr {lr:.4g} "
                   f"w=[{' '.join(f'{v:.3f}' for v in weights)}] worst group {worst} "
                   f"| {elapsed:.0f}s elapsed, ETA {eta:.0f}s", flush=True)

    def on_train_end(self, run_context):
        if self.state.is_over(run_context.original_args()):
            plot_group_weights(self.weights_path, self.plot_path)


class NanGuard(Callback):
    """Stop with a clear message when the loss is NaN or infinite (before the epoch's
    checkpoint is written, so the last good checkpoint stays)."""

    def on_train_step_end(self, run_context):
        loss = _loss_value(run_context)
        if not math.isfinite(loss):
            step = run_context.original_args().cur_step_num
            run_context.request_stop()
            raise FloatingPointError(
                f"training loss is {loss} at step {step} of epoch "
                f"{run_context.original_args().cur_epoch_num}; stopped. The last good checkpoint "
                "is kept. Try a lower optim.lr or algorithm.rho.")


class StopAtStep(Callback):
    """Stop after ``state.total_steps`` steps when that is fewer than the epochs hold."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def on_train_step_end(self, run_context):
        if self.state.is_last_step(self.state.step(run_context.original_args())):
            self.state.stopped = True
            run_context.request_stop()
