"""What the callbacks share about one run.

train.py calls ``Model.train`` once per epoch (each epoch's data is rebuilt from the seed
and the epoch number, so a resumed run sees the same batches), which restarts MindSpore's
step counter; ``RunState`` turns the callback arguments back into a global step, knows
when the run is over (last epoch, or ``max_steps``), which evaluation was best, and how
many evaluations are still to come (for an ETA that includes them).
"""
from .run_folder import is_better


def stop_epoch(epochs, until_epoch=0):
    """The epoch a run stops after: train.epochs, or train.until_epoch when that is set and
    earlier (the schedule still spans train.epochs)."""
    return min(epochs, until_epoch or epochs)


class RunState:
    def __init__(self, steps_per_epoch, epochs, max_steps=0, eval_every=1, best_value=None,
                 best_epoch=None, until_epoch=0):
        self.steps_per_epoch, self.eval_every = steps_per_epoch, eval_every
        self.total_steps = steps_per_epoch * stop_epoch(epochs, until_epoch)
        if max_steps:
            self.total_steps = min(self.total_steps, max_steps)
        self.stopped = False       # max_steps reached
        self.best_value, self.best_epoch = best_value, best_epoch
        self.eval_seconds = None   # one evaluation's duration: estimated, then measured
        self.eval_spent = 0.0      # seconds spent evaluating in this process

    def step(self, args):
        """Global step (1-based) of the step that just ran."""
        within = (args.cur_step_num - 1) % self.steps_per_epoch + 1
        return (args.cur_epoch_num - 1) * self.steps_per_epoch + within

    def is_last_step(self, step):
        return step >= self.total_steps

    def is_over(self, args):
        """True at the end of the run's last epoch (or of the epoch where it stopped)."""
        return self.stopped or args.cur_epoch_num >= self.final_epoch()

    def final_epoch(self):
        return -(-self.total_steps // self.steps_per_epoch)

    def is_eval_epoch(self, epoch):
        return epoch % self.eval_every == 0 or epoch >= self.final_epoch()

    def evals_left(self, step):
        """Evaluations still to run after global step ``step`` (that of its own epoch included)."""
        epoch = (step - 1) // self.steps_per_epoch + 1
        return sum(self.is_eval_epoch(e) for e in range(epoch, self.final_epoch() + 1))

    def offer(self, value, epoch):
        """Record a validation metric (higher is better); True if it is the best so far."""
        if is_better(value, self.best_value):
            self.best_value, self.best_epoch = value, epoch
            return True
        return False
