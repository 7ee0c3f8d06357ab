"""Evaluation under data parallel: rank 0 evaluating everything (what train.py does)
against every rank evaluating its share of each set.

    python benchmarks/eval_sharding.py [--config configs/quickstart.yaml] [--model small_cnn]

N = 1: one process evaluates every split and severity of the config's data. N = 2 (msrun
on this machine): each rank evaluates half of every set at once, then one all-reduce of
the correct counts; the time is the slower rank's, up to the end of the all-reduce.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
MARK = "EVAL_SHARDING "


def worker(args):
    from sharpdro.runtime import configure_process
    configure_process()  # before MindSpore loads
    from sharpdro.runtime import set_context

    set_context("CPU", "graph", seed=0)
    import numpy as np
    import mindspore as ms
    from mindspore import ops

    from datasets import build_data
    from datasets.pipeline import EvalSet
    from sharpdro import config as C
    from sharpdro.distributed import init_distributed
    from sharpdro.models import create_model

    rank, world = init_distributed("auto")
    cfg = C.load_config(args.config)
    data = build_data(cfg)
    net = create_model(args.model, data.num_classes, data.in_channels)
    net.set_train(False)
    sets = [s for split in (data.val, data.test) for s in split.values()]
    shards = []
    for s in sets:
        part = slice(rank * len(s) // world, (rank + 1) * len(s) // world)
        shards.append(EvalSet(s.images[part], s.labels[part], s.mean, s.std, s.batch_size))
    net(ms.Tensor(next(shards[0].batches(1))[0]))  # compile outside the timing
    start = time.perf_counter()
    correct = np.array([sum(int((net(ms.Tensor(x)).asnumpy().argmax(1) == y).sum())
                            for x, y in shard.batches()) for shard in shards], np.float32)
    if world > 1:
        correct = ops.AllReduce()(ms.Tensor(correct)).asnumpy()
    seconds = time.perf_counter() - start
    if rank == 0:
        print(MARK + json.dumps({"seconds": seconds, "images": sum(len(s) for s in sets),
                                 "correct": float(correct.sum())}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", default="configs/quickstart.yaml")
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--as-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_worker:
        return worker(args)
    from scaling import launch  # the same N = 1 / msrun launcher

    own = [os.path.abspath(__file__), "--as-worker", "--config", args.config, "--model", args.model]
    results = {world: launch(own, world, MARK) for world in (1, 2)}
    for world, r in results.items():
        print(f"N={world}: {r['images']} images in {r['seconds']:.1f}s "
              f"({r['images'] / r['seconds']:.0f} img/s), correct {r['correct']:.0f}")


if __name__ == "__main__":
    main()
