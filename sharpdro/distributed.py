"""Data parallel under ``msrun``: start-up, and the replicas' non-trainable state.

The train-step cells reduce gradients and group statistics themselves (see
``algorithms/base.py``); this module starts the communication and keeps what the cells do
not reduce, the BatchNorm moving statistics (each rank normalises with its own batch's
statistics, as usual in data parallel), from drifting apart: ``ReplicaAverage`` averages
them across the ranks, which the run layer does before every evaluation and checkpoint.
"""
import os

from mindspore import nn, ops, ParameterTuple

from .choices import PARALLEL_MODES

# what msrun sets for every worker; read to detect it and named in errors
MSRUN_VARIABLES = ("MS_ROLE", "MS_WORKER_NUM", "MS_SCHED_HOST", "MS_SCHED_PORT", "RANK_ID",
                   "RANK_SIZE")


class DistributedError(RuntimeError):
    """Communication could not be set up; the message names what was read."""


def under_msrun():
    """msrun starts the script in a scheduler process (MS_ROLE=MS_SCHED) and in each worker
    (MS_WORKER); both must call init(): in the scheduler it serves the cluster and exits."""
    return "MS_ROLE" in os.environ


def init_distributed(mode="auto"):
    """-> (rank, world_size). ``auto``: initialise communication when started by msrun
    (``MS_ROLE=MS_WORKER``), else one process; ``off``: one process even under msrun.
    Call after the device is set."""
    if mode not in PARALLEL_MODES:
        raise ValueError(f"train.distributed must be one of {PARALLEL_MODES}, got {mode!r}")
    if mode == "off" or not under_msrun():
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init

    seen = ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in MSRUN_VARIABLES)
    try:
        init()
        return get_rank(), get_group_size()
    except Exception as err:  # MindSpore raises RuntimeError or ValueError
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DistributedError(f"started by msrun ({seen}) but the communication could not "
                               f"be initialised: {first}") from None


_average = ops.MultitypeFuncGraph("average")


@_average.register("Function", "Number", "Tensor")
def _average_tensor(all_reduce, scale, param):
    return ops.assign(param, all_reduce(param) * scale)


class ReplicaAverage(nn.Cell):
    """Calling it replaces each of ``params`` by its mean over the ranks (in place).
    With one rank it does nothing."""

    def __init__(self, params, world_size):
        super().__init__(auto_prefix=False)
        self.params = ParameterTuple(params)
        self.world_size = int(world_size)
        self.active = self.world_size > 1 and len(self.params) > 0
        if self.active:
            self.all_reduce = ops.AllReduce()
        self.hyper_map = ops.HyperMap()

    def construct(self):
        if self.active:
            return self.hyper_map(ops.partial(_average, self.all_reduce, 1.0 / self.world_size),
                                  self.params)
        return ()
