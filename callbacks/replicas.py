"""Data parallel: the replicas' BatchNorm moving statistics averaged at every epoch end."""
from mindspore.train import Callback

from sharpdro.distributed import ReplicaAverage


class AverageReplicas(Callback):
    """At each epoch end, on every rank and before evaluation and checkpointing: replace
    the network's non-trainable state (BatchNorm moving statistics, which each rank updates
    from its own slice) by its mean over the ranks. Nothing else can drift: gradients and
    group statistics are reduced inside the train step."""

    def __init__(self, network, world_size):
        super().__init__()
        self.average = ReplicaAverage(network.untrainable_params(), world_size)

    def on_train_epoch_end(self, run_context):
        if self.average.active:
            self.average()
