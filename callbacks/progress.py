"""Progress lines with the worst-case group, train_log.csv and group_weights.csv; NaN guard."""
import csv
import math
import time

import numpy as np
from mindspore.train import Callback


def _loss_value(run_context):
    out = run_context.original_args().net_outputs
    out = out[0] if isinstance(out, (tuple, list)) else out
    return float(np.asarray(out.asnumpy()).reshape(-1)[0])


class ProgressLogger(Callback):
    """Every ``every`` steps: a line with loss, lr, group weights, worst group and ETA, and
    a row in ``train_log.csv`` and ``group_weights.csv``."""

    def __init__(self, cell, lrs, steps_per_epoch, epochs, every, log_path, weights_path,
                 print_fn=print):
        super().__init__()
        self.cell, self.lrs, self.every = cell, lrs, every
        self.steps_per_epoch, self.total = steps_per_epoch, steps_per_epoch * epochs
        self.print = print_fn
        groups = cell.num_groups
        self.log_path, self.weights_path = log_path, weights_path
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(["epoch", "step", "loss", "lr", "seconds"]
                                   + [f"group_loss_{s}" for s in range(groups)])
        with open(weights_path, "w", newline="") as f:
            csv.writer(f).writerow(["epoch", "step"] + [f"w_{s}" for s in range(groups)])
        self.start = None

    def on_train_begin(self, run_context):
        self.start = time.time()

    def on_train_step_end(self, run_context):
        args = run_context.original_args()
        step = args.cur_step_num
        if step % self.every and step != self.total:
            return
        loss = _loss_value(run_context)
        epoch = args.cur_epoch_num
        weights = self.cell.group_weights.asnumpy()
        group_loss = self.cell.last_group_loss.asnumpy()
        elapsed = time.time() - self.start
        eta = elapsed / max(step, 1) * (self.total - step)
        lr = self.lrs[min(step, len(self.lrs)) - 1]
        with open(self.log_path, "a", newline="") as f:
            csv.writer(f).writerow([epoch, step, f"{loss:.6f}", f"{lr:.6g}", f"{elapsed:.1f}"]
                                   + [f"{v:.6f}" for v in group_loss])
        with open(self.weights_path, "a", newline="") as f:
            csv.writer(f).writerow([epoch, step] + [f"{v:.6f}" for v in weights])
        self.print(f"epoch {epoch} step {step}/{self.total} loss {loss:.4f} lr {lr:.4g} "
                   f"w=[{' '.join(f'{v:.3f}' for v in weights)}] worst group {int(weights.argmax())} "
                   f"| {elapsed:.0f}s elapsed, ETA {eta:.0f}s", flush=True)


class NanGuard(Callback):
    """Stop with a clear message when the loss is NaN or infinite."""

    def __init__(self):
        super().__init__()
        self.bad_step = None

    def on_train_step_end(self, run_context):
        loss = _loss_value(run_context)
        if not math.isfinite(loss):
            self.bad_step = run_context.original_args().cur_step_num
            run_context.request_stop()
            raise FloatingPointError(
                f"training loss is {loss} at step {self.bad_step}; stopped. The last good "
                "checkpoint is kept. Try a lower lr or rho.")
