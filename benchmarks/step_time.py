"""Seconds per train step of ERM, SAM, GroupDRO and SharpDRO (graph mode), and peak RSS.

    python benchmarks/step_time.py [--models wrn28_2,small_cnn] [--batch 128] [--steps 5]

Each (model, algorithm) runs in its own process so its peak RSS is its own. Prints a
table: median seconds per step after warm-up, ratio to ERM, peak RSS in MiB.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {"wrn28_2": ("wrn", {"depth": 28, "widen_factor": 2}),
          "small_cnn": ("small_cnn", {})}
ALGORITHMS = ("erm", "sam", "groupdro", "sharpdro")


def one_case(model_key, algorithm, batch, size, steps, warmup, mode):
    sys.path.insert(0, ROOT)
    import resource

    import sharpdro  # noqa: F401
    import numpy as np
    import mindspore as ms

    from sharpdro.algorithms import create_train_step
    from sharpdro.models import create_model
    from sharpdro.runtime import set_context

    set_context("CPU", mode, seed=0)
    name, options = MODELS[model_key]
    net = create_model(name, 10, 3, **options)
    from sharpdro.optim import create_optimizer
    opt = create_optimizer(net.trainable_params(), 0.03)
    cell = create_train_step(algorithm, net, opt, 6,
                             **{"erm": {}, "sam": {"rho": 0.05}, "groupdro": {"eta": 0.01},
                                "sharpdro": {"rho": 0.05, "eta": 0.01}}[algorithm])
    cell.set_train()
    rng = np.random.default_rng(0)
    x = ms.Tensor(rng.normal(size=(batch, 3, size, size)).astype(np.float32))
    y = ms.Tensor(rng.integers(0, 10, batch).astype(np.int32))
    g = ms.Tensor(rng.integers(0, 6, batch).astype(np.int32))
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        cell(x, y, g).asnumpy()  # asnumpy waits for the step to finish
        if i >= warmup:
            times.append(time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"median_s": statistics.median(times), "min_s": min(times), "peak_rss_mib": rss}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="wrn28_2,small_cnn")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mode", default="graph", choices=["graph", "pynative"])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        model_key, algorithm = args.case.split(":")
        print(json.dumps(one_case(model_key, algorithm, args.batch, args.size, args.steps,
                                  args.warmup, args.mode)))
        return
    env = {k: v for k, v in os.environ.items()}
    print(f"batch {args.batch}, {args.size}x{args.size}x3, {args.mode} mode, "
          f"ONEDNN_MAX_CPU_ISA={env.get('ONEDNN_MAX_CPU_ISA', 'AVX2 (default)')}, "
          f"{os.cpu_count()} CPUs; median of {args.steps} steps after {args.warmup} warm-up")
    print(f"{'model':<10} {'algorithm':<9} {'s/step':>8} {'x ERM':>6} {'peak RSS MiB':>13}")
    for model_key in args.models.split(","):
        base = None
        for algorithm in args.algorithms.split(","):
            out = subprocess.run([sys.executable, __file__, "--case", f"{model_key}:{algorithm}",
                                  "--batch", str(args.batch), "--size", str(args.size),
                                  "--steps", str(args.steps), "--warmup", str(args.warmup),
                                  "--mode", args.mode], capture_output=True, text=True, env=env)
            if out.returncode:
                print(out.stderr[-2000:])
                raise SystemExit(f"{model_key}/{algorithm} failed")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            base = r["median_s"] if algorithm == "erm" else base
            ratio = f"{r['median_s'] / base:6.2f}" if base else "     -"
            print(f"{model_key:<10} {algorithm:<9} {r['median_s']:8.3f} {ratio} "
                  f"{r['peak_rss_mib']:13.0f}", flush=True)


if __name__ == "__main__":
    main()
