"""Two ``mindspore.train.Callback``s for a user's own ``Model.train``: ``TrainingGuard``, which
stops a broken training at once with one error (group ids out of range, a loss or group
weights that are not finite), and ``GroupWeightMonitor``, which logs what the train step
does with the groups (the worst-case group weights, or a label-free step's group losses and
selection):

    model.train(epochs, dataset, callbacks=[TrainingGuard(train_step),
                                            GroupWeightMonitor(train_step, every=50,
                                                               csv_path="group_weights.csv")])

and the one writer of the group-weight CSV (epoch, step, w_<group>...), the format of a
run folder's group_weights.csv.
"""
import csv
import os

import numpy as np
from mindspore.train import Callback

from .groups import check_group_indices


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


def vector(values, fmt="{:.3f}"):
    return "[" + " ".join(fmt.format(v) for v in values) + "]"


def describe_step(cell, names):
    """One line on what the train step did with the groups at its last step: the group
    weights and losses (groupdro, sharpdro: the weights move); for a label-free step, the
    group losses, the group with the highest, and sharpdro_agnostic's selection (selected
    of each group's samples); without groups (one group), the loss and the selection."""
    weights, losses = read_groups(cell)
    if hasattr(cell, "eta"):  # the exponentiated-gradient update: the weights move
        return (f"group weights {vector(weights)}, group losses {vector(losses)}, worst group "
                f"{worst_group(weights, names)}")
    counts = cell.last_group_count.asnumpy()
    selected = getattr(cell, "last_group_selected", None)
    if len(names) == 1:
        line = f"loss {losses[0]:.3f}"
        if selected is not None:
            line += f", selected {selected.asnumpy()[0]:.0f} of {counts[0]:.0f}"
        return line
    present = counts > 0
    line = f"group losses {vector(losses)}"
    if selected is not None:
        chosen = selected.asnumpy()
        line += (", selected per group [" + " ".join(f"{a:.0f}/{n:.0f}" for a, n in
                                                     zip(chosen, counts)) + "]")
    if present.any():
        line += f", highest loss {names[int(np.argmax(np.where(present, losses, -np.inf)))]}"
    return line


class GroupWeightMonitor(Callback):
    """Every ``every`` steps a console line (``describe_step``): the group weights and group
    losses, or for a label-free step (erm, sam, cvar, sharpdro_agnostic) the group losses and
    the agnostic selection per group; with ``csv_path``, the weights as a CSV row (epoch,
    step, w_<group>...: append_group_weights)."""

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
        if self.csv_path:
            append_group_weights(self.csv_path, self.names, args.cur_epoch_num, step,
                                 self.cell.group_weights.asnumpy())
        self.print(f"step {step}: {describe_step(self.cell, self.names)}", flush=True)


def remedies(cell):
    """What to lower when a training of ``cell`` diverges."""
    knobs = ["the learning rate"]
    if hasattr(cell, "eta"):
        knobs.append("eta (the group-weight step)")
    if hasattr(cell, "rho"):
        knobs.append("rho (the perturbation radius)")
    return ", ".join(knobs[:-1]) + " or " + knobs[-1] if len(knobs) > 1 else knobs[0]


class TrainingGuard(Callback):
    """Stops ``Model.train`` at the first sign that the training of ``cell`` (a train step
    of ``create_train_step``) is broken, with one error:

    - before the training, a ``ValueError`` if the cell needs a group column and the
      dataset has none;
    - before each step, a ``ValueError`` if the batch's group ids are outside
      0..num_groups-1 (the train step would silently count such a sample in no group);
    - after each step, a ``FloatingPointError`` if the step's loss or the group weights are
      not finite, naming the step and what to lower (learning rate, eta, rho).

    It reads the batch that ``Model`` hands to callbacks when the data is not sunk (always
    on the CPU and in PyNative mode; ``dataset_sink_mode=False`` on a device), the loss and
    the cell's group weights: host reads of a scalar and two small vectors per step."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def on_train_begin(self, run_context):
        data = run_context.original_args().get("train_dataset")
        if (data is not None and len(data.get_col_names()) < 3
                and getattr(self.cell, "needs_groups", False)):
            raise ValueError(f"{self.cell.no_group_column}; the dataset's columns are "
                             f"{', '.join(data.get_col_names())}")

    def on_train_step_begin(self, run_context):
        args = run_context.original_args()
        batch = args.get("train_dataset_element") or ()
        if len(batch) < 3:  # no group column (or a sunk dataset): nothing to check
            return
        group = batch[2]
        try:
            check_group_indices(group.asnumpy() if hasattr(group, "asnumpy") else group,
                                self.cell.num_groups)
        except ValueError as error:
            run_context.request_stop()
            raise ValueError(f"step {args.cur_step_num}: {error}, in the batch's group "
                             "column") from None

    def on_train_step_end(self, run_context):
        args = run_context.original_args()
        loss = float(np.asarray(args.net_outputs.asnumpy()).reshape(-1)[0])
        weights = self.cell.group_weights.asnumpy()
        bad = []
        if not np.isfinite(loss):
            bad.append(f"the loss is {loss}")
        if not np.isfinite(weights).all():
            bad.append(f"the group weights are {vector(weights)}")
        if bad:
            run_context.request_stop()
            raise FloatingPointError(
                f"step {args.cur_step_num}: the training diverged ({' and '.join(bad)}, not "
                f"finite): lower {remedies(self.cell)}")
