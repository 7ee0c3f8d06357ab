"""Where the time of one train step goes, op by op, in MindSpore and in PyTorch.

    python benchmarks/profile_step.py [--model wrn28_2] [--algorithm erm] [--steps 2]

Three tables, each from processes of their own (warm-up steps first, then ``--steps``
profiled steps, reported per step):

1. MindSpore's profiler (CPU): total ms per op type.
2. torch.profiler: self CPU ms per aten op (only where PyTorch is importable).
3. oneDNN's own log (``ONEDNN_VERBOSE=1``) in both frameworks: ms per primitive kind and
   implementation, the kernels both frameworks call (convolution, BatchNorm, pooling).
   This is the table that shows which convolution algorithm each framework gets.
"""
import argparse
import collections
import csv
import glob
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import step_time  # noqa: E402


def run_steps(framework, model, algorithm, batch, warmup, steps, profile_dir=None):
    """Child process: warm up, then run ``steps`` steps between START/END markers (under
    the framework's profiler when ``profile_dir`` is given)."""
    step = step_time.make_step(framework, model, algorithm, batch, 32, "graph")
    for _ in range(warmup):
        step()
    prof = None
    if profile_dir and framework == "mindspore":
        import mindspore as ms

        prof = ms.Profiler(output_path=profile_dir)
    elif profile_dir:
        from torch.profiler import ProfilerActivity, profile

        prof = profile(activities=[ProfilerActivity.CPU])
        prof.__enter__()
    print("=====START", flush=True)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - start) / steps
    print("=====END", flush=True)
    if prof is not None and framework == "mindspore":
        prof.analyse()
    elif prof is not None:
        prof.__exit__(None, None, None)
        with open(os.path.join(profile_dir, "torch_ops.csv"), "w", newline="") as f:
            w = csv.writer(f)
            for e in prof.key_averages():
                w.writerow([e.key, e.count, e.self_cpu_time_total / 1000.0])
    print(f"wall {wall}", flush=True)


def child(args, framework, profile_dir=None, verbose=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", framework, "--model", args.model,
           "--algorithm", args.algorithm, "--batch", str(args.batch), "--warmup", str(args.warmup),
           "--steps", str(args.steps)]
    if profile_dir:
        cmd += ["--profile_dir", profile_dir]
    env = dict(os.environ)
    if verbose:
        env["ONEDNN_VERBOSE"] = "1"
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"{framework} child failed")
    lines = out.stdout.splitlines()
    wall = float([x for x in lines if x.startswith("wall ")][-1].split()[1])
    body = lines[lines.index("=====START") + 1:lines.index("=====END")]
    return wall, body


def onednn_table(lines, steps):
    """{(primitive, implementation, propagation): (calls, ms)} per step."""
    table = collections.defaultdict(lambda: [0, 0.0])
    for line in lines:
        f = line.split(",")
        if line.startswith("onednn_verbose") and len(f) > 8 and f[2] == "primitive" and f[3] == "exec":
            key = (f[5], f[6], f[7])
            table[key][0] += 1
            table[key][1] += float(f[-1])
    return {k: (n / steps, ms / steps) for k, (n, ms) in table.items()}


def mindspore_ops(profile_dir, steps):
    path = glob.glob(os.path.join(profile_dir, "*", "FRAMEWORK", "cpu_op_type_info_*.csv"))
    if not path:
        raise SystemExit(f"no MindSpore profile under {profile_dir}")
    with open(path[0]) as f:
        rows = list(csv.DictReader(f))
    return {r["op_type"]: (int(r["type_occurrences"]) / steps, float(r["total_compute_time"]) / steps)
            for r in rows}


def torch_ops(profile_dir, steps):
    with open(os.path.join(profile_dir, "torch_ops.csv")) as f:
        return {name: (int(n) / steps, float(ms) / steps) for name, n, ms in csv.reader(f)}


def print_table(title, table, limit):
    rows = sorted(table.items(), key=lambda kv: -kv[1][1])
    total = sum(ms for _, ms in table.values())
    print(f"\n{title} (per step; total {total:.0f} ms)")
    print("| op | calls | ms |\n|---|---:|---:|")
    for key, (n, ms) in rows[:limit]:
        name = " ".join(key) if isinstance(key, tuple) else key
        print(f"| {name} | {n:g} | {ms:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="wrn28_2", choices=sorted(step_time.MODELS))
    parser.add_argument("--algorithm", default="erm", choices=step_time.ALGORITHMS)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rows", type=int, default=15, help="rows per op table")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--profile_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_steps(args.child, args.model, args.algorithm, args.batch, args.warmup,
                         args.steps, args.profile_dir)
    frameworks = ["mindspore"] + (["torch"] if step_time.torch_available() else [])
    print(f"{args.model} {args.algorithm}, batch {args.batch}, {args.steps} profiled steps after "
          f"{args.warmup} warm-up, {os.cpu_count()} CPUs, "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'AVX2 (project default)')}")
    with tempfile.TemporaryDirectory() as tmp:
        for framework in frameworks:
            folder = os.path.join(tmp, framework)
            os.makedirs(folder)
            wall, _ = child(args, framework, profile_dir=folder)
            ops = (mindspore_ops if framework == "mindspore" else torch_ops)(folder, args.steps)
            print_table(f"{framework}: ops (step under the profiler {wall * 1000:.0f} ms)", ops,
                        args.rows)
    for framework in frameworks:
        wall, lines = child(args, framework, verbose=True)
        print_table(f"{framework}: oneDNN primitives (step {wall * 1000:.0f} ms with the log on)",
                    onednn_table(lines, args.steps), args.rows)


if __name__ == "__main__":
    main()
