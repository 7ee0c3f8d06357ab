"""Process set-up that must happen before MindSpore is imported, and the MindSpore context.

Importing ``sharpdro`` changes nothing in the process. The entry points (train.py,
eval.py, export.py, the benchmarks, the tests) call :func:`configure_process` first, before
MindSpore loads; a user's own script may call it too (it is optional).
"""
import contextlib
import os
import re

from .choices import EXECUTION_MODES

# Environment variables read once, when MindSpore loads its CPU kernels and its logger:
# - ONEDNN_MAX_CPU_ISA AVX2: on CPUs with AVX-512, oneDNN picks a reference convolution
#   kernel that is 20-40x slower than its AVX2 one;
# - GLOG_v 2 (0 debug, 1 info, 2 warning, 3 error): hides the INFO lines of its start-up.
PROCESS_SETTINGS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "GLOG_v": "2"}


def configure_process():
    """Set PROCESS_SETTINGS where the environment does not already set them (a value the
    user exported is kept). Call before MindSpore is imported: later it has no effect."""
    for key, value in PROCESS_SETTINGS.items():
        os.environ.setdefault(key, value)

DEVICE_TARGETS = ("CPU", "GPU", "Ascend")


@contextlib.contextmanager
def quiet_mindspore_log():
    """MindSpore's Python logger raised to CRITICAL for the block."""
    import logging

    from mindspore import log

    logger = log._get_logger()  # pylint: disable=protected-access
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def set_context(device_target="CPU", mode="graph", device_id=None, seed=None):
    """Select the device and execution mode; optionally seed MindSpore's global RNG."""
    import mindspore as ms

    if device_target not in DEVICE_TARGETS:
        raise ValueError(f"device_target {device_target!r} is not one of {DEVICE_TARGETS}")
    if mode not in EXECUTION_MODES:
        raise ValueError(f"mode {mode!r} is not one of {EXECUTION_MODES}")
    try:
        with quiet_mindspore_log():  # its checks log a page about missing drivers first
            if device_id is None:
                ms.set_device(device_target)
            else:
                ms.set_device(device_target, device_id)
    except RuntimeError as err:
        offered = re.search(r"only supports one of the \[([^\]]*)\]", str(err))
        if offered:  # a backend whose drivers and libraries this machine lacks
            names = offered.group(1).replace("'", "")
            raise ValueError(f"device_target {device_target} is not available here: MindSpore "
                             f"{ms.__version__} on this machine runs on {names} (the "
                             f"{device_target} backend needs its drivers; see MindSpore's "
                             "installation guide)") from None
        # the runtime already runs (an earlier call in this process ran kernels): fine if
        # it runs on the requested device, which cannot change any more
        if ms.get_context("device_target") != device_target:
            raise
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    if seed is not None:
        ms.set_seed(seed)
