"""Every algorithm x seed on one config, then test accuracy per severity as mean +- std.

    python benchmarks/reproduce.py --config configs/fmnist_gaussian.yaml \
        --algorithms erm,groupdro,sam,sharpdro,sharpdro_agnostic --seeds 0,1,2 [--key value ...]

Each run is a normal run folder, <runs_root>/<algorithm>-seed<seed>/ (default runs_root:
runs/<name>), trained by train.py in its own process; a run with a `done` marker is
skipped and an interrupted one is resumed, so an interrupted sweep picks up where it
stopped. All algorithms share the config (and the extra --key value overrides); each one
uses only its own options from the algorithm section (rho, eta, fraction, ...).

Model selection is by validation, never by test: for each run, the test evaluation of the
epoch with the best worst-severity validation accuracy ("best-val"); the last epoch's is
reported too. Writes results/<name>.md, results/<name>.json and results/<name>.png.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sharpdro import config as C  # noqa: E402  (first: process settings before mindspore loads)
from callbacks.run_folder import RunFolder  # noqa: E402
from sharpdro.registry import closest  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--algorithms", default="erm,groupdro,sam,sharpdro,sharpdro_agnostic")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--name", help="result name (default: the config's name)")
    parser.add_argument("--runs_root", help="parent of the run folders (default: runs/<name>)")
    parser.add_argument("--results", default=os.path.join(ROOT, "results"))
    parser.add_argument("--report_only", action="store_true", help="only aggregate finished runs")
    return parser.parse_known_args(argv)


def check(args, overrides):
    """Everything that can be wrong, before any run starts."""
    from sharpdro.algorithms import ALGORITHMS

    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    for name in algorithms:
        if name not in ALGORITHMS.names():
            hint = closest(name, ALGORITHMS.names())
            raise SystemExit(f"unknown algorithm {name!r}" + (f"; did you mean {hint!r}?" if hint else "")
                             + f" (valid: {', '.join(ALGORITHMS.names())})")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds must be comma-separated integers, got {args.seeds!r}") from None
    try:
        cfg = C.load_config(args.config, overrides)
    except C.ConfigError as err:
        raise SystemExit(f"config error: {err}") from None
    name = args.name or cfg.name or os.path.splitext(os.path.basename(args.config))[0]
    return algorithms, seeds, cfg, name


def run_one(config, run_dir, algorithm, seed, overrides):
    """Train (or resume, or skip) one run in its own process; returns seconds spent."""
    folder = RunFolder(run_dir)
    if folder.is_finished():
        return 0.0
    if folder.has_checkpoint():
        cmd = ["--resume", run_dir]
    else:
        cmd = ["--config", config, "--run_dir", run_dir, "--overwrite",
               "--algorithm.name", algorithm, "--seed", str(seed), *overrides]
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    with open(os.path.join(run_dir + ".log"), "a") as log:
        code = subprocess.call([sys.executable, os.path.join(ROOT, "train.py"), *cmd],
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if code:
        raise SystemExit(f"{algorithm} seed {seed} failed (exit {code}); see {run_dir}.log")
    return time.time() - start


def selected_test(run_dir):
    """(test record at the best worst-severity validation epoch, last test record)."""
    records = RunFolder(run_dir).eval_records()
    val = {r["epoch"]: r for r in records if r["split"] == "val"}
    test = {r["epoch"]: r for r in records if r["split"] == "test"}
    best = max(val, key=lambda e: (val[e]["worst_acc"], e))  # ties: the later epoch
    return test[best], test[max(test)]


def summarise(records):
    """mean and std (ddof 1) over seeds of accuracy per severity or group, mean and worst (in %)."""
    levels = list(records[0]["acc"])  # the groups' own order (severities 0..S, or the names)
    table = np.array([[100 * r["acc"][s] for s in levels] + [100 * r["mean_acc"], 100 * r["worst_acc"]]
                      for r in records])
    std = table.std(0, ddof=1) if len(table) > 1 else np.zeros(table.shape[1])
    return {"columns": levels + ["mean", "worst"], "mean": table.mean(0).tolist(),
            "std": std.tolist(), "per_seed": table.tolist(),
            "group_kind": records[0].get("group_kind", "severity")}


def markdown(name, results, algorithms, seeds, command):
    kind = results[algorithms[0]]["best_val"]["group_kind"]
    lines = [f"# {name}", "", f"Command: `{command}`", "",
             f"Test accuracy (%) per {kind}, mean +- std over seeds {seeds}.", ""]
    for selection in ("best_val", "last"):
        title = {"best_val": f"Model selected by worst-{kind} validation accuracy",
                 "last": "Last epoch"}[selection]
        columns = results[algorithms[0]][selection]["columns"]
        lines += [f"## {title}", "", "| algorithm | " + " | ".join(columns) + " |",
                  "|---" * (len(columns) + 1) + "|"]
        for a in algorithms:
            r = results[a][selection]
            lines.append(f"| {a} | " + " | ".join(f"{m:.2f} +- {s:.2f}" for m, s in zip(r["mean"], r["std"])) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(path, name, results, algorithms):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, a in enumerate(algorithms):
        r = results[a]["best_val"]
        names = r["columns"][:-2]
        x = np.arange(len(names)) + (i - (len(algorithms) - 1) / 2) * 0.06  # dodge the error bars
        ax.errorbar(x, r["mean"][:-2], yerr=r["std"][:-2], marker="o", capsize=3, label=a)
    ax.set_xticks(range(len(names)), names)
    ax.set_xlabel(r["group_kind"])
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{name}: mean +- std over seeds (best-val selection)")
    ax.legend()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None):
    args, overrides = parse_args(argv)
    algorithms, seeds, cfg, name = check(args, overrides)
    runs_root = args.runs_root or os.path.join(ROOT, "runs", name)
    command = "python benchmarks/reproduce.py " + " ".join(sys.argv[1:] if argv is None else argv)
    total = len(algorithms) * len(seeds)
    start = time.time()
    jobs = [] if args.report_only else [(a, s) for a in algorithms for s in seeds]
    for i, (algorithm, seed) in enumerate(jobs):
        run_dir = os.path.join(runs_root, f"{algorithm}-seed{seed}")
        print(f"[{i + 1}/{total}] {algorithm} seed {seed} -> {run_dir}", flush=True)
        spent = run_one(args.config, run_dir, algorithm, seed, overrides)
        print(f"    {'skipped (done)' if spent == 0 else f'{spent:.0f}s'}; sweep {time.time() - start:.0f}s",
              flush=True)
    results = {}
    for algorithm in algorithms:
        picked = [selected_test(os.path.join(runs_root, f"{algorithm}-seed{s}")) for s in seeds]
        results[algorithm] = {"best_val": summarise([p[0] for p in picked]),
                              "last": summarise([p[1] for p in picked]),
                              "best_epochs": [p[0]["epoch"] for p in picked]}
    os.makedirs(args.results, exist_ok=True)
    base = os.path.join(args.results, name)
    with open(base + ".json", "w") as f:
        json.dump({"name": name, "command": command, "seeds": seeds, "config": cfg.to_dict(),
                   "results": results}, f, indent=2)
    text = markdown(name, results, algorithms, seeds, command)
    with open(base + ".md", "w") as f:
        f.write(text)
    plot(base + ".png", name, results, algorithms)
    print(text)
    print(f"written: {base}.md, {base}.json, {base}.png")
    return results


if __name__ == "__main__":
    main()
