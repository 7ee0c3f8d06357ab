"""A clean stop on Ctrl-C (SIGINT) and kill (SIGTERM)."""
import signal

from mindspore.train import Callback


class Interrupt(Callback):
    """Turns SIGINT and SIGTERM into a KeyboardInterrupt that reaches train.py.

    The handler raises at once, but Python runs it at whatever bytecode the main thread is
    at, and that can be a ``__del__`` or a MindSpore ``except`` block that swallows it (seen
    in CI: the run went on to the end and exited 0). So the signal is also recorded, and
    raised again at the next step or epoch end, where nothing swallows it. Use as a context
    manager around training; it restores the previous handlers on exit.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        super().__init__()
        self.signum = None
        self._previous = {}
        self._depth = 0  # Model.train enters a Callback too: restore on the outermost exit

    def _handle(self, signum, frame):
        self.signum = signum
        raise KeyboardInterrupt(f"signal {signum}")

    def check(self):
        if self.signum is not None:
            raise KeyboardInterrupt(f"signal {self.signum}")

    def on_train_step_end(self, run_context):
        self.check()

    def on_train_epoch_end(self, run_context):
        self.check()

    def __enter__(self):
        if self._depth == 0:
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            for s, handler in self._previous.items():
                signal.signal(s, handler)
        return False
