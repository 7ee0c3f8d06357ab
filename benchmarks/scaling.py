"""Data-parallel scaling: images per second with 1 and 2 processes (msrun), and the bytes
each algorithm all-reduces per step.

    python benchmarks/scaling.py [--models small_cnn,wrn28_2] [--batch 128] [--rounds 6]

N = 1 is a plain process; N = 2 is `msrun --worker_num=2` on this machine (CPU, the same
cores shared by both ranks). The global batch stays --batch (each rank takes batch / N).
The all-reduced bytes per step are counted from the cells' reductions: every gradient
reduction is the full parameter vector in float32; the group statistics (loss, sums,
counts) are 1 + 2G floats; sharpdro_agnostic adds its G selection counts.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MODELS = {"small_cnn": ("small_cnn", {}), "wrn28_2": ("wrn", {"depth": 28, "widen_factor": 2})}
ALGORITHMS = ("erm", "groupdro", "sam", "sharpdro", "sharpdro_agnostic")
GROUPS = 6
# gradient reductions per step (pass 1, pass 2); group statistics are counted apart
GRADIENT_REDUCTIONS = {"erm": 1, "groupdro": 1, "sam": 2, "sharpdro": 2, "sharpdro_agnostic": 2}
MARK = "SCALING_RESULT "


def reduced_bytes(algorithm, num_params):
    floats = GRADIENT_REDUCTIONS[algorithm] * num_params + 1 + 2 * GROUPS
    if algorithm == "sharpdro_agnostic":
        floats += GROUPS
    return 4 * floats


def worker(args):
    from sharpdro.runtime import configure_process
    configure_process()  # before MindSpore loads
    from sharpdro.runtime import set_context

    set_context("CPU", "graph", seed=0)
    import numpy as np
    import mindspore as ms

    from sharpdro.algorithms import create_train_step
    from sharpdro.distributed import init_distributed
    from sharpdro.models import create_model
    from sharpdro.optim import create_optimizer

    rank, world = init_distributed("auto")
    local = args.batch // world
    result = {}
    for model_key in args.models.split(","):
        name, options = MODELS[model_key]
        for algorithm in args.algorithms.split(","):
            net = create_model(name, 10, 3, **options)
            cell = create_train_step(algorithm, net, create_optimizer(net.trainable_params(), 0.03),
                                     GROUPS, world)
            cell.set_train()
            rng = np.random.default_rng(rank)
            inputs = (ms.Tensor(rng.normal(size=(local, 3, args.size, args.size)).astype(np.float32)),
                      ms.Tensor(rng.integers(0, 10, local).astype(np.int32)),
                      ms.Tensor(rng.integers(0, GROUPS, local).astype(np.int32)))
            for _ in range(args.warmup):
                cell(*inputs).asnumpy()
            start = time.perf_counter()
            for _ in range(args.rounds):
                cell(*inputs).asnumpy()
            seconds = (time.perf_counter() - start) / args.rounds
            params = sum(int(np.prod(p.shape)) for p in net.trainable_params())
            result[f"{model_key}:{algorithm}"] = {"step_s": seconds, "params": params,
                                                  "images_per_s": args.batch / seconds}
    if rank == 0:
        print(MARK + json.dumps(result), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(own, world, mark):
    """Run ``own`` (this interpreter's argv) as one process or under msrun with ``world``
    workers; return the JSON that rank 0 printed after ``mark``."""
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
    with tempfile.TemporaryDirectory() as logs:
        if world == 1:
            cmd = [sys.executable, *own]
        else:
            cmd = [os.path.join(bin_dir, "msrun"), f"--worker_num={world}",
                   f"--local_worker_num={world}", f"--master_port={free_port()}", "--join=True",
                   f"--log_dir={logs}", *own]
        out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
        text = out.stdout
        if world > 1 and os.path.exists(os.path.join(logs, "worker_0.log")):
            text += open(os.path.join(logs, "worker_0.log")).read()
    for line in text.splitlines():
        if line.startswith(mark):
            return json.loads(line[len(mark):])
    raise SystemExit(f"N={world} failed:\n{out.stderr[-3000:]}\n{text[-3000:]}")


def run(args, world):
    own = [os.path.abspath(__file__), "--as-worker", "--models", args.models, "--algorithms",
           args.algorithms, "--batch", str(args.batch), "--size", str(args.size), "--rounds",
           str(args.rounds), "--warmup", str(args.warmup)]
    return launch(own, world, MARK)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--models", default="small_cnn,wrn28_2")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--as-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.as_worker:
        return worker(args)
    results = {world: run(args, world) for world in (1, 2)}
    print(f"global batch {args.batch}, {args.size}x{args.size}x3, graph mode, {os.cpu_count()} "
          f"CPUs, mean of {args.rounds} steps after {args.warmup} warm-up")
    print(f"{'model':<10} {'algorithm':<18} {'img/s N=1':>10} {'img/s N=2':>10} {'speed-up':>9} "
          f"{'MB reduced/step':>16}")
    for key, one in results[1].items():
        model_key, algorithm = key.split(":")
        two = results[2][key]
        mb = reduced_bytes(algorithm, one["params"]) / 1e6
        print(f"{model_key:<10} {algorithm:<18} {one['images_per_s']:10.1f} {two['images_per_s']:10.1f} "
              f"{two['images_per_s'] / one['images_per_s']:9.2f} {mb:16.2f}", flush=True)


if __name__ == "__main__":
    main()
