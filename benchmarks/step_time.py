"""Seconds per train step of ERM, SAM, GroupDRO and SharpDRO (graph mode), and peak RSS.

    python benchmarks/step_time.py [--models wrn28_2,small_cnn] [--batch 128] [--rounds 5]

Timing: one process per model builds every algorithm's cell and times their steps in
interleaved rounds (erm, sam, groupdro, sharpdro, erm, ...), so drift in machine speed
hits all algorithms alike and the ratios to ERM stay meaningful on a noisy machine.
Peak RSS: each algorithm once more in a process of its own (warm-up + one step).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MODELS = {"wrn28_2": ("wrn", {"depth": 28, "widen_factor": 2}),
          "small_cnn": ("small_cnn", {})}
ALGORITHMS = ("erm", "sam", "groupdro", "sharpdro")
OPTIONS = {"erm": {}, "sam": {"rho": 0.05}, "groupdro": {"eta": 0.01},
           "sharpdro": {"rho": 0.05, "eta": 0.01}}


def build(model_key, algorithm, batch, size):
    import numpy as np
    import mindspore as ms

    from sharpdro.algorithms import create_train_step
    from sharpdro.models import create_model
    from sharpdro.optim import create_optimizer

    name, options = MODELS[model_key]
    net = create_model(name, 10, 3, **options)
    opt = create_optimizer(net.trainable_params(), 0.03)
    cell = create_train_step(algorithm, net, opt, 6, **OPTIONS[algorithm])
    cell.set_train()
    rng = np.random.default_rng(0)
    inputs = (ms.Tensor(rng.normal(size=(batch, 3, size, size)).astype(np.float32)),
              ms.Tensor(rng.integers(0, 10, batch).astype(np.int32)),
              ms.Tensor(rng.integers(0, 6, batch).astype(np.int32)))
    return cell, inputs


def timed(cell, inputs):
    start = time.perf_counter()
    cell(*inputs).asnumpy()  # asnumpy waits for the step to finish
    return time.perf_counter() - start


def time_model(model_key, algorithms, batch, size, rounds, warmup):
    cells = {a: build(model_key, a, batch, size) for a in algorithms}
    for cell, inputs in cells.values():
        for _ in range(warmup):
            timed(cell, inputs)
    times = {a: [] for a in algorithms}
    for _ in range(rounds):
        for a, (cell, inputs) in cells.items():
            times[a].append(timed(cell, inputs))
    return {a: {"median_s": statistics.median(t), "min_s": min(t)} for a, t in times.items()}


def peak_rss(model_key, algorithm, batch, size):
    import resource

    cell, inputs = build(model_key, algorithm, batch, size)
    for _ in range(2):
        timed(cell, inputs)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args, *extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--batch", str(args.batch), "--size",
           str(args.size), "--rounds", str(args.rounds), "--warmup", str(args.warmup),
           "--mode", args.mode] + list(extra)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"benchmark child {extra} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="wrn28_2,small_cnn")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mode", default="graph", choices=["graph", "pynative"])
    parser.add_argument("--time-model", help=argparse.SUPPRESS)
    parser.add_argument("--rss", help=argparse.SUPPRESS)
    args = parser.parse_args()
    algorithms = args.algorithms.split(",")
    if args.time_model or args.rss:
        import sharpdro  # noqa: F401  (process settings before mindspore loads)
        from sharpdro.runtime import set_context

        set_context("CPU", args.mode, seed=0)
        if args.time_model:
            result = time_model(args.time_model, algorithms, args.batch, args.size, args.rounds,
                                args.warmup)
        else:
            model_key, algorithm = args.rss.split(":")
            result = peak_rss(model_key, algorithm, args.batch, args.size)
        print(json.dumps(result))
        return
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "AVX2 (project default)")
    print(f"batch {args.batch}, {args.size}x{args.size}x3, {args.mode} mode, "
          f"ONEDNN_MAX_CPU_ISA={isa}, {os.cpu_count()} CPUs; {args.rounds} interleaved rounds "
          f"after {args.warmup} warm-up steps")
    print(f"{'model':<10} {'algorithm':<9} {'median s':>9} {'min s':>7} {'x ERM':>6} "
          f"{'peak RSS MiB':>13}")
    for model_key in args.models.split(","):
        times = child(args, "--time-model", model_key, "--algorithms", ",".join(algorithms))
        base = times.get("erm", {}).get("median_s")
        for a in algorithms:
            rss = child(args, "--rss", f"{model_key}:{a}")
            ratio = f"{times[a]['median_s'] / base:6.2f}" if base else "     -"
            print(f"{model_key:<10} {a:<9} {times[a]['median_s']:9.3f} {times[a]['min_s']:7.3f} "
                  f"{ratio} {rss:13.0f}", flush=True)


if __name__ == "__main__":
    main()
