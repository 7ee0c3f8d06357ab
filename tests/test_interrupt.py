"""The Interrupt callback: a signal whose KeyboardInterrupt was swallowed still stops the run."""
import os
import signal

import pytest

from callbacks import Interrupt


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_swallowed_interrupt_is_raised_again_at_the_next_step(signum):
    before = signal.getsignal(signum)
    interrupt = Interrupt()
    with interrupt:
        interrupt.on_train_step_end(None)  # nothing recorded: no raise
        try:  # as a __del__ or a broad except inside MindSpore would
            os.kill(os.getpid(), signum)
            for _ in range(1000):  # the handler runs between bytecodes of the main thread
                pass
        except KeyboardInterrupt:
            pass
        assert interrupt.signum == signum
        with pytest.raises(KeyboardInterrupt, match=f"signal {int(signum)}"):
            interrupt.on_train_step_end(None)
        with pytest.raises(KeyboardInterrupt):
            interrupt.on_train_epoch_end(None)
    assert signal.getsignal(signum) is before


def test_handlers_are_restored_when_training_raises():
    before = {s: signal.getsignal(s) for s in Interrupt.SIGNALS}
    with pytest.raises(RuntimeError):
        with Interrupt():
            assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
            raise RuntimeError("boom")
    assert {s: signal.getsignal(s) for s in Interrupt.SIGNALS} == before
