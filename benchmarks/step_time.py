"""Seconds per train step of ERM, SAM, GroupDRO, SharpDRO, IRM, V-REx and CVaR (graph mode),
SharpDRO with pass 2 on a fifth, 30 % or half of the batch (sharpdro_fast, sharpdro_f0.3,
sharpdro_f0.5; SPEC section 3b) and
distribution-agnostic SharpDRO with pass 2 on the whole batch or on its selected fifth
(agnostic, agnostic_fast), and peak RSS, side by side with PyTorch where PyTorch is importable (its reference has the
first four; with the others it is left out).

    python benchmarks/step_time.py [--models wrn28_2,small_cnn] [--batch 128] [--rounds 5]
                                   [--torch auto|on|off]

Timing: one worker process per framework and model builds every algorithm's step; the
parent asks for one step at a time, alternating MindSpore and PyTorch and interleaving the
algorithms (erm: ms, torch; sam: ms, torch; ...), so drift in machine speed hits both
frameworks and all algorithms alike and the ratios stay meaningful on a noisy machine.
While one worker steps, the other waits on its pipe and uses no CPU.
Peak RSS: each (framework, algorithm) once more in a process of its own (warm-up + one step).

The PyTorch side (benchmarks/torch_reference.py, eager mode, ``torch.set_num_threads`` =
the CPU count) is the same model and algorithm; PyTorch is never a dependency of the
project: with ``--torch auto`` its columns are left out where it is not installed.
"""
import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MODELS = {"wrn28_2": ("wrn", {"depth": 28, "widen_factor": 2}),
          "small_cnn": ("small_cnn", {})}
ALGORITHMS = ("erm", "sam", "groupdro", "sharpdro", "irm", "vrex", "cvar", "sharpdro_fast",
              "sharpdro_f0.3", "sharpdro_f0.5", "agnostic", "agnostic_fast")
TORCH_ALGORITHMS = ("erm", "sam", "groupdro", "sharpdro")  # benchmarks/torch_reference.py
OPTIONS = {"erm": {}, "sam": {"rho": 0.05}, "groupdro": {"eta": 0.01},
           "sharpdro": {"rho": 0.05, "eta": 0.01}, "irm": {"anneal_steps": 0},
           "vrex": {"anneal_steps": 0}, "cvar": {},
           "sharpdro_fast": {"rho": 0.05, "eta": 0.01, "pass2_fraction": 0.2},
           "sharpdro_f0.3": {"rho": 0.05, "eta": 0.01, "pass2_fraction": 0.3},
           "sharpdro_f0.5": {"rho": 0.05, "eta": 0.01, "pass2_fraction": 0.5},
           "agnostic": {"fraction": 0.2},
           "agnostic_fast": {"fraction": 0.2, "pass2_selected": True}}
# a row that is an algorithm with other options: row -> algorithm
ROW_ALGORITHM = {"sharpdro_fast": "sharpdro", "sharpdro_f0.3": "sharpdro",
                 "sharpdro_f0.5": "sharpdro", "agnostic": "sharpdro_agnostic",
                 "agnostic_fast": "sharpdro_agnostic"}
FRAMEWORKS = ("mindspore", "torch")


def build(model_key, algorithm, batch, size):
    """MindSpore: (train-step cell, inputs) for one algorithm on a fixed random batch."""
    import numpy as np
    import mindspore as ms

    from sharpdro.algorithms import create_train_step
    from sharpdro.models import create_model
    from sharpdro.optim import create_optimizer

    name, options = MODELS[model_key]
    net = create_model(name, 10, 3, **options)
    opt = create_optimizer(net.trainable_params(), 0.03)
    cell = create_train_step(ROW_ALGORITHM.get(algorithm, algorithm), net, opt, 6,
                             **OPTIONS[algorithm])
    cell.set_train()
    rng = np.random.default_rng(0)
    inputs = (ms.Tensor(rng.normal(size=(batch, 3, size, size)).astype(np.float32)),
              ms.Tensor(rng.integers(0, 10, batch).astype(np.int32)),
              ms.Tensor(rng.integers(0, 6, batch).astype(np.int32)))
    return cell, inputs


def make_step(framework, model_key, algorithm, batch, size, mode):
    """A callable that runs one train step and returns when it has finished."""
    if framework == "torch":
        import torch

        torch.set_num_threads(os.cpu_count())
        from torch_reference import Step

        return Step(model_key, algorithm, batch, size)
    from sharpdro.runtime import configure_process
    configure_process()  # before MindSpore loads
    from sharpdro.runtime import set_context

    set_context("CPU", mode, seed=0)
    cell, inputs = build(model_key, algorithm, batch, size)
    return lambda: cell(*inputs).asnumpy()  # asnumpy waits for the step to finish


def worker(args):
    """Build the steps, warm them up, then answer one line per request: an algorithm name
    runs one step and prints its seconds; end of input stops."""
    steps = {a: make_step(args.framework, args.worker, a, args.batch, args.size, args.mode)
             for a in args.algorithms.split(",")}
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    print("ready", flush=True)
    for line in sys.stdin:
        start = time.perf_counter()
        steps[line.strip()]()
        print(time.perf_counter() - start, flush=True)


def peak_rss(args):
    step = make_step(args.framework, args.rss, args.algorithms, args.batch, args.size, args.mode)
    for _ in range(args.warmup + 1):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _child_cmd(args, framework, *extra):
    return [sys.executable, os.path.abspath(__file__), "--framework", framework, "--batch",
            str(args.batch), "--size", str(args.size), "--warmup", str(args.warmup),
            "--mode", args.mode] + list(extra)


class Worker:
    def __init__(self, args, framework, model_key, algorithms):
        self.framework = framework
        self.proc = subprocess.Popen(
            _child_cmd(args, framework, "--worker", model_key, "--algorithms", ",".join(algorithms)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"{framework} worker for {model_key} failed (see its output above)")

    def step(self, algorithm):
        self.proc.stdin.write(algorithm + "\n")
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.framework} worker died during {algorithm}")
        return float(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def measure_rss(args, framework, model_key, algorithm):
    out = subprocess.run(_child_cmd(args, framework, "--rss", model_key, "--algorithms", algorithm),
                         capture_output=True, text=True)
    if out.returncode:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"peak RSS child {framework} {model_key} {algorithm} failed")
    return float(out.stdout.strip().splitlines()[-1])


def time_model(args, model_key, algorithms, frameworks):
    """{framework: {algorithm: [seconds per round]}}, steps alternating between frameworks."""
    workers = {f: Worker(args, f, model_key, algorithms) for f in frameworks}
    times = {f: {a: [] for a in algorithms} for f in frameworks}
    try:
        for _ in range(args.rounds):
            for a in algorithms:
                for f, w in workers.items():
                    times[f][a].append(w.step(a))
    finally:
        for w in workers.values():
            w.close()
    return times


def torch_available():
    return importlib.util.find_spec("torch") is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="wrn28_2,small_cnn")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--mode", default="graph", choices=["graph", "pynative"])
    parser.add_argument("--torch", default="auto", choices=["auto", "on", "off"],
                        help="time the PyTorch reference alongside (auto: where importable)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS processes")
    parser.add_argument("--framework", default="mindspore", choices=FRAMEWORKS,
                        help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rss", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.rss:
        return peak_rss(args)
    algorithms = args.algorithms.split(",")
    models = args.models.split(",")
    for name, given, known in (("algorithm", algorithms, ALGORITHMS), ("model", models, MODELS)):
        bad = [x for x in given if x not in known]
        if bad:
            parser.error(f"unknown {name} {bad}; choose from {list(known)}")
    if args.torch == "on" and not torch_available():
        parser.error("--torch on, but PyTorch is not importable here")
    mindspore_only = [a for a in algorithms if a not in TORCH_ALGORITHMS]
    if args.torch == "on" and mindspore_only:
        parser.error(f"the PyTorch reference has no {mindspore_only}; leave them out or use --torch off")
    frameworks = ["mindspore"] + (["torch"] if args.torch != "off" and torch_available()
                                  and not mindspore_only else [])
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "AVX2 (project default)")
    print(f"batch {args.batch}, {args.size}x{args.size}x3, {args.mode} mode, "
          f"ONEDNN_MAX_CPU_ISA={isa}, {os.cpu_count()} CPUs; {args.rounds} rounds after "
          f"{args.warmup} warm-up steps, frameworks {' / '.join(frameworks)} alternating step by step")
    torch_cols = "torch" in frameworks
    head = f"{'model':<10} {'algorithm':<13} {'ms s':>7} {'min':>6} {'x ERM':>6}"
    if torch_cols:
        head += f" {'torch s':>8} {'min':>6} {'ms/torch':>9}"
    head += f" {'ms RSS MiB':>11}"
    if torch_cols:
        head += f" {'torch RSS':>10} {'ms/torch':>9}"
    print(head)
    for model_key in models:
        times = time_model(args, model_key, algorithms, frameworks)
        med = {f: {a: statistics.median(t) for a, t in times[f].items()} for f in frameworks}
        for a in algorithms:
            ms_t = med["mindspore"][a]
            base = med["mindspore"].get("erm")
            row = (f"{model_key:<10} {a:<13} {ms_t:7.3f} {min(times['mindspore'][a]):6.3f} "
                   + (f"{ms_t / base:6.2f}" if base else f"{'-':>6}"))
            if torch_cols:
                t_t = med["torch"][a]
                row += f" {t_t:8.3f} {min(times['torch'][a]):6.3f} {ms_t / t_t:9.2f}"
            if args.no_rss:
                print(row, flush=True)
                continue
            rss = {f: measure_rss(args, f, model_key, a) for f in frameworks}
            row += f" {rss['mindspore']:11.0f}"
            if torch_cols:
                row += f" {rss['torch']:10.0f} {rss['mindspore'] / rss['torch']:9.2f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
