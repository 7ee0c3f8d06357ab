"""A ``mindspore.train.Callback`` that logs a train step's worst-case group weights and group
losses, for a user's own ``Model.train``:

    model.train(epochs, dataset, callbacks=[GroupWeightMonitor(train_step, every=50,
                                                               csv_path="group_weights.csv")])

and the one writer of the group-weight CSV (epoch, step, w_<group>...), the format of a
run folder's group_weights.csv.
"""
import csv
import os

import numpy as np
from mindspore.train import Callback


def group_columns(prefix, names):
    """CSV column names: ``<prefix><group name>`` for each group."""
    return [f"{prefix}{n}" for n in names]


def append_row(path, header, row):
    """Append a CSV row, writing ``header`` first if the file is new."""
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerow(row)


def append_group_weights(path, names, epoch, step, weights):
    """Append a row of the group-weight CSV: epoch, step, then the weight of each group
    (6 decimals) under w_<group name>; the header first if the file is new."""
    append_row(path, ["epoch", "step"] + group_columns("w_", names),
               [epoch, step] + [f"{v:.6f}" for v in weights])


def read_groups(cell):
    """(group weights, last step's group losses) of a train-step cell, as NumPy arrays."""
    return cell.group_weights.asnumpy(), cell.last_group_loss.asnumpy()


def worst_group(weights, names):
    """The name of the group with the largest weight, or '-' when the weights are uniform
    (erm, sam, sharpdro_agnostic keep them uniform: no group is the worst)."""
    return names[int(np.argmax(weights))] if np.ptp(weights) > 1e-7 else "-"


class GroupWeightMonitor(Callback):
    """Every ``every`` steps: the group weights and group losses as a console line and, with
    ``csv_path``, the weights as a CSV row (epoch, step, w_<group>...: append_group_weights)."""

    def __init__(self, cell, every=50, csv_path=None, group_names=None, print_fn=print):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.cell, self.every, self.csv_path, self.print = cell, int(every), csv_path, print_fn
        self.names = (list(range(cell.num_groups)) if group_names is None else list(group_names))
        if len(self.names) != cell.num_groups:
            raise ValueError(f"{len(self.names)} group names for {cell.num_groups} groups")

    def on_train_step_end(self, run_context):
        args = run_context.original_args()
        step = args.cur_step_num
        if step % self.every:
            return
        weights, losses = read_groups(self.cell)
        if self.csv_path:
            append_group_weights(self.csv_path, self.names, args.cur_epoch_num, step, weights)
        self.print(f"step {step}: group weights [{' '.join(f'{v:.3f}' for v in weights)}], "
                   f"group losses [{' '.join(f'{v:.3f}' for v in losses)}], worst group "
                   f"{worst_group(weights, self.names)}", flush=True)
