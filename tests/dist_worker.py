"""Run by msrun from tests/test_distributed.py (one process per rank): train the tiny
no-BatchNorm cells of every data-parallel case on this rank's slice of the global batches,
and a small CNN with BatchNorm for 3 steps; save every parameter to OUT/rank<r>_<case>.npz."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
from sharpdro.runtime import set_context  # noqa: E402

set_context("CPU", "graph", seed=0)

import numpy as np  # noqa: E402

from helpers import DP_CASES, DP_STEPS, cell_state, global_batch, make_nobn_cell, run  # noqa: E402
from sharpdro.distributed import ReplicaAverage, init_distributed  # noqa: E402


def main(out):
    rank, world = init_distributed("auto")
    assert world == 2, world
    for name, algorithm, options in DP_CASES:
        cell = make_nobn_cell(algorithm, world, **options)
        losses, selected = [], []
        for step in range(DP_STEPS):
            x, label, group = global_batch(step)
            part = slice(rank * len(label) // world, (rank + 1) * len(label) // world)
            losses.append(float(run(cell, x[part], label[part], group[part]).asnumpy()))
            if hasattr(cell, "last_group_selected"):
                selected.append(cell.last_group_selected.asnumpy().copy())
        extra = {"selected_per_step": np.array(selected)} if selected else {}
        np.savez(os.path.join(out, f"rank{rank}_{name}.npz"), loss=np.array(losses),
                 **extra, **cell_state(cell))

    import mindspore as ms
    from sharpdro.algorithms import create_train_step
    from sharpdro.models import create_model
    from sharpdro.optim import create_optimizer

    ms.set_seed(0)
    net = create_model("small_cnn", 4, 1)
    cell = create_train_step("sharpdro", net, create_optimizer(net.trainable_params(), 0.05), 6, world)
    cell.set_train()
    rng = np.random.default_rng([rank, 5])  # each rank its own images: BN statistics differ
    for _ in range(3):
        cell(ms.Tensor(rng.normal(size=(8, 1, 12, 12)).astype(np.float32)),
             ms.Tensor(rng.integers(0, 4, 8).astype(np.int32)),
             ms.Tensor(rng.integers(0, 6, 8).astype(np.int32)))
    before = cell_state(cell)
    ReplicaAverage(net.untrainable_params(), world)()
    np.savez(os.path.join(out, f"rank{rank}_cnn.npz"), **cell_state(cell))
    np.savez(os.path.join(out, f"rank{rank}_cnn_before.npz"), **before)

    # GroupAccuracy: each rank counts its half of a fixed batch; eval() sums over the ranks
    from helpers import group_accuracy_batch
    from sharpdro.metrics import GroupAccuracy

    logits, labels, groups, _, _ = group_accuracy_batch()
    part = slice(rank * len(labels) // world, (rank + 1) * len(labels) // world)
    metric = GroupAccuracy(5)
    metric.update(logits[part], labels[part], groups[part])
    result = metric.eval()
    np.savez(os.path.join(out, f"rank{rank}_groupacc.npz"),
             acc=np.array([np.nan if a is None else a for a in result["acc"].values()]),
             mean=result["mean"], worst=result["worst"])


if __name__ == "__main__":
    main(sys.argv[1])
