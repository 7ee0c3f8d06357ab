"""Checkpoints written atomically: a crash never leaves a half-written file."""
import os

import mindspore as ms
from mindspore.train import Callback

from sharpdro.algorithms import SCRATCH_PREFIX


def save_train_state(cell, path, extra=None):
    """Network weights, optimizer state and group weights (not the scratch copies)."""
    tmp = f"{path[:-len('.ckpt')] if path.endswith('.ckpt') else path}.tmp.ckpt"  # MindSpore adds .ckpt
    ms.save_checkpoint(cell, tmp, append_dict=extra,
                       choice_func=lambda name: not name.startswith(SCRATCH_PREFIX))
    os.replace(tmp, path)


class EpochCheckpoint(Callback):
    """``last.ckpt`` after every epoch, with the epoch and global step."""

    def __init__(self, cell, folder, seed):
        super().__init__()
        self.cell, self.folder, self.seed = cell, folder, seed
        os.makedirs(folder, exist_ok=True)

    def on_train_epoch_end(self, run_context):
        args = run_context.original_args()
        save_train_state(self.cell, os.path.join(self.folder, "last.ckpt"),
                         {"epoch": args.cur_epoch_num, "step": args.cur_step_num, "seed": self.seed})
