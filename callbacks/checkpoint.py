"""last.ckpt every epoch, best.ckpt when the validation metric improves."""
from mindspore.train import Callback

from sharpdro.checkpoint import save_train_state


class Checkpointer(Callback):
    """After each epoch (and after SeverityEval in the callback list): ``best.ckpt`` if this
    epoch's evaluation is the best so far, then ``last.ckpt``. Each holds the network, the
    optimizer state, the group weights and the run state (epoch, global step, seed, best
    metric, the config as YAML)."""

    def __init__(self, cell, folder, state, seed, config_text, best_metric, world_size=1):
        super().__init__()
        self.cell, self.folder, self.state = cell, folder, state
        self.seed, self.config_text, self.best_metric = seed, config_text, best_metric
        self.world_size = world_size

    def run_state(self, args):
        return {"epoch": args.cur_epoch_num, "step": self.state.step(args), "seed": self.seed,
                "best_metric": self.best_metric, "best_value": self.state.best_value,
                "best_epoch": self.state.best_epoch, "config": self.config_text,
                "world_size": self.world_size}

    def _save(self, name, run_state):
        path = self.folder.checkpoint(name)
        try:
            save_train_state(self.cell, path, run_state)
        except OSError as err:
            raise OSError(f"could not write checkpoint {path}: {err}; the previous one is "
                          "intact") from err

    def on_train_epoch_end(self, run_context):
        args = run_context.original_args()
        run_state = self.run_state(args)
        if self.state.best_epoch == args.cur_epoch_num:
            self._save("best", run_state)
        self._save("last", run_state)
