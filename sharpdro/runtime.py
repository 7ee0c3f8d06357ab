"""Process set-up that must happen before MindSpore is imported, and the MindSpore context.

Every entry point imports this module first (``import sharpdro`` does it too).
"""
import os

# On CPUs with AVX-512, oneDNN picks a reference convolution kernel that is 20-40x slower
# than its AVX2 one. setdefault: a user who exports another value keeps it.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
# MindSpore's log level (0 debug, 1 info, 2 warning, 3 error): 2 hides the INFO lines of
# its start-up; a user who exports another value keeps it.
os.environ.setdefault("GLOG_v", "2")

DEVICE_TARGETS = ("CPU", "GPU", "Ascend")
MODES = ("graph", "pynative")


def set_context(device_target="CPU", mode="graph", device_id=None, seed=None):
    """Select the device and execution mode; optionally seed MindSpore's global RNG."""
    import mindspore as ms

    if device_target not in DEVICE_TARGETS:
        raise ValueError(f"device_target {device_target!r} is not one of {DEVICE_TARGETS}")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    try:
        if device_id is None:
            ms.set_device(device_target)
        else:
            ms.set_device(device_target, device_id)
    except RuntimeError:
        # the runtime already runs (an earlier call in this process ran kernels): fine if
        # it runs on the requested device, which cannot change any more
        if ms.get_context("device_target") != device_target:
            raise
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    if seed is not None:
        ms.set_seed(seed)
