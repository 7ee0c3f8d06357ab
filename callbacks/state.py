"""What the callbacks share about one run.

train.py calls ``Model.train`` once per epoch (each epoch's data is rebuilt from the seed
and the epoch number, so a resumed run sees the same batches), which restarts MindSpore's
step counter; ``RunState`` turns the callback arguments back into a global step and knows
when the run is over (last epoch, or ``max_steps``) and which evaluation was best.
"""


class RunState:
    def __init__(self, steps_per_epoch, epochs, max_steps=0, best_value=None, best_epoch=None):
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.total_steps = steps_per_epoch * epochs
        if max_steps:
            self.total_steps = min(self.total_steps, max_steps)
        self.stopped = False       # max_steps reached
        self.best_value, self.best_epoch = best_value, best_epoch

    def step(self, args):
        """Global step (1-based) of the step that just ran."""
        within = (args.cur_step_num - 1) % self.steps_per_epoch + 1
        return (args.cur_epoch_num - 1) * self.steps_per_epoch + within

    def is_last_step(self, step):
        return step >= self.total_steps

    def is_over(self, args):
        """True at the end of the run's last epoch (or of the epoch where it stopped)."""
        return self.stopped or args.cur_epoch_num >= self.epochs

    def offer(self, value, epoch):
        """Record a validation metric (higher is better); True if it is the best so far."""
        if self.best_value is None or value > self.best_value:
            self.best_value, self.best_epoch = value, epoch
            return True
        return False
