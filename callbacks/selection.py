"""Which severities the distribution-agnostic worst-case set actually comes from.

The sharpdro_agnostic cell never reads the group column; it returns (loss, selected mask).
This callback compares the mask with the batch's severities (known in benchmark data) and
writes ``selection.csv`` every ``every`` steps: for each severity s, ``share_s`` = the part
of the selected samples that had severity s, and ``rate_s`` = the part of severity-s
samples that were selected. Nothing happens for cells that return a loss only.
"""
import csv
import os

import numpy as np
from mindspore.train import Callback

from .progress import keep_rows


class SelectionLogger(Callback):
    def __init__(self, state, num_groups, every, run_dir, resume_step=None, print_fn=print):
        super().__init__()
        self.state, self.num_groups, self.every = state, num_groups, every
        self.path = os.path.join(run_dir, "selection.csv")
        self.print = print_fn
        self.selected = np.zeros(num_groups)
        self.seen = np.zeros(num_groups)
        if resume_step is not None and os.path.isfile(self.path):
            keep_rows(self.path, lambda row: int(row[1]) <= resume_step)
        elif os.path.exists(self.path):
            os.remove(self.path)

    def on_train_step_end(self, run_context):
        args = run_context.original_args()
        out = args.net_outputs
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            return
        mask = out[1].asnumpy()
        group = args.train_dataset_element[2].asnumpy().astype(int)
        self.selected += np.bincount(group, weights=mask, minlength=self.num_groups)
        self.seen += np.bincount(group, minlength=self.num_groups)
        step = self.state.step(args)
        if step % self.every and not self.state.is_last_step(step):
            return
        share = self.selected / max(self.selected.sum(), 1.0)
        rate = self.selected / np.maximum(self.seen, 1.0)
        new = not os.path.exists(self.path)
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["epoch", "step"] + [f"share_{s}" for s in range(self.num_groups)]
                                + [f"rate_{s}" for s in range(self.num_groups)])
            writer.writerow([args.cur_epoch_num, step] + [f"{v:.4f}" for v in np.concatenate([share, rate])])
        self.print(f"  selected by severity: share [{' '.join(f'{v:.2f}' for v in share)}] "
                   f"rate [{' '.join(f'{v:.2f}' for v in rate)}]", flush=True)
        self.selected[:] = 0
        self.seen[:] = 0
