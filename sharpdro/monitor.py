"""A ``mindspore.train.Callback`` that logs a train step's worst-case group weights and group
losses, for a user's own ``Model.train``:

    model.train(epochs, dataset, callbacks=[GroupWeightMonitor(train_step, every=50,
                                                               csv_path="group_weights.csv")])
"""
import csv
import os

import numpy as np
from mindspore.train import Callback


def group_columns(prefix, names):
    """CSV column names: ``<prefix><group name>`` for each group."""
    return [f"{prefix}{n}" for n in names]


def read_groups(cell):
    """(group weights, last step's group losses) of a train-step cell, as NumPy arrays."""
    return cell.group_weights.asnumpy(), cell.last_group_loss.asnumpy()


def worst_group(weights, names):
    """The name of the group with the largest weight, or '-' when the weights are uniform
    (erm, sam, sharpdro_agnostic keep them uniform: no group is the worst)."""
    return names[int(np.argmax(weights))] if np.ptp(weights) > 1e-7 else "-"


class GroupWeightMonitor(Callback):
    """Every ``every`` steps: the group weights and group losses as a console line and, with
    ``csv_path``, a CSV row (epoch, step, w_<group>..., group_loss_<group>...)."""

    def __init__(self, cell, every=50, csv_path=None, group_names=None, print_fn=print):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.cell, self.every, self.csv_path, self.print = cell, int(every), csv_path, print_fn
        self.names = (list(range(cell.num_groups)) if group_names is None else list(group_names))
        if len(self.names) != cell.num_groups:
            raise ValueError(f"{len(self.names)} group names for {cell.num_groups} groups")
        self.header = (["epoch", "step"] + group_columns("w_", self.names)
                       + group_columns("group_loss_", self.names))

    def on_train_step_end(self, run_context):
        args = run_context.original_args()
        step = args.cur_step_num
        if step % self.every:
            return
        weights, losses = read_groups(self.cell)
        if self.csv_path:
            new = not os.path.exists(self.csv_path)
            with open(self.csv_path, "a", newline="") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(self.header)
                writer.writerow([args.cur_epoch_num, step] + [f"{v:.6f}" for v in weights]
                                + [f"{v:.6f}" for v in losses])
        self.print(f"step {step}: group weights [{' '.join(f'{v:.3f}' for v in weights)}], "
                   f"group losses [{' '.join(f'{v:.3f}' for v in losses)}], worst group "
                   f"{worst_group(weights, self.names)}", flush=True)
