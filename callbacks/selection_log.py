"""Which severities the distribution-agnostic worst-case set actually comes from.

The sharpdro_agnostic cell's update never reads the group column; after each step it keeps
how many of each group's samples it selected (``last_group_selected``) beside the group
counts every cell keeps. This callback sums them and writes ``selection.csv`` every
``every`` steps: for each severity s, ``share_s`` = the part of the selected samples that
had severity s, and ``rate_s`` = the part of severity-s samples that were selected. It does
nothing for cells without a selection.
"""
import numpy as np
from mindspore.train import Callback

from sharpdro.monitor import append_row

from .run_folder import RunFolder


class SelectionLogger(Callback):
    def __init__(self, cell, state, every, folder, print_fn=print):
        super().__init__()
        self.cell, self.state, self.every, self.folder = cell, state, every, folder
        self.print = print_fn
        self.active = hasattr(cell, "last_group_selected")
        groups = cell.num_groups
        self.header = (["epoch", "step"] + [f"share_{s}" for s in range(groups)]
                       + [f"rate_{s}" for s in range(groups)])
        self.selected = np.zeros(groups)
        self.seen = np.zeros(groups)

    def on_train_step_end(self, run_context):
        if not self.active:
            return
        args = run_context.original_args()
        self.selected += self.cell.last_group_selected.asnumpy()
        self.seen += self.cell.last_group_count.asnumpy()
        step = self.state.step(args)
        if step % self.every and not self.state.is_last_step(step):
            return
        share = self.selected / max(self.selected.sum(), 1.0)
        rate = self.selected / np.maximum(self.seen, 1.0)
        append_row(self.folder.file(RunFolder.SELECTION), self.header,
                   [args.cur_epoch_num, step] + [f"{v:.4f}" for v in np.concatenate([share, rate])])
        self.print(f"  selected by severity: share [{' '.join(f'{v:.2f}' for v in share)}] "
                   f"rate [{' '.join(f'{v:.2f}' for v in rate)}]", flush=True)
        self.selected[:] = 0
        self.seen[:] = 0
