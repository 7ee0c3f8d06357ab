"""Every algorithm x seed on one config, then test accuracy per severity as mean +- std.

    python benchmarks/reproduce.py --config configs/fmnist_gaussian.yaml \
        --algorithms erm,groupdro,sam,sharpdro,sharpdro_agnostic --seeds 0,1,2 [--key value ...]

Each run is a normal run folder, <runs_root>/<algorithm>-seed<seed>/ (default runs_root:
runs/<name>), trained by train.py in its own process; a run with a `done` marker is
skipped and an interrupted one is resumed, so an interrupted sweep picks up where it
stopped. All algorithms share the config (and the extra --key value overrides); each one
uses only its own options from the algorithm section (rho, eta, fraction, ...).

Model selection is by validation, never by test: for each run, the test evaluation of the
epoch of its best.ckpt (the best train.best_metric, by default the worst-group validation
accuracy; a tie keeps the earlier epoch: "best-val"); the last epoch's is
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
from callbacks.run_folder import RunFolder, selected_epoch  # noqa: E402
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
    parser.add_argument("--comparison", choices=("with_labels", "label_free", "both"),
                        help="the paper's comparison instead of --algorithms: each method's "
                        "grid on the first seed, then every seed at the picked value "
                        "(COMPARISON below); writes results/<name>_comparison.md and .json")
    parser.add_argument("--methods", help="with --comparison: only these rows (comma-separated)")
    return parser.parse_known_args(argv)


def check(args, overrides):
    """Everything that can be wrong, before any run starts."""
    from sharpdro.algorithms import ALGORITHMS

    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    if args.comparison:
        args.tables = list(COMPARISON) if args.comparison == "both" else [args.comparison]
        known = sorted({label for t in args.tables for label in COMPARISON[t]})
        args.methods = [m.strip() for m in args.methods.split(",")] if args.methods else known
        for label in args.methods:
            if label not in known:
                raise SystemExit(f"unknown method {label!r} (valid: {', '.join(known)})")
        algorithms = sorted({COMPARISON[t][m][0] for t in args.tables for m in args.methods
                             if m in COMPARISON[t] and m not in POST_HOC})
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
    if algorithm in POST_HOC:  # <root>/<method>/<value>/seed<s> -> <root>/<source>/...
        value_dir = os.path.dirname(run_dir)
        root = os.path.dirname(os.path.dirname(value_dir))
        source = os.path.join(root, POST_HOC[algorithm], "default", os.path.basename(run_dir))
        cmd = ["-m", f"benchmarks.{algorithm}", "--run", source, "--out", run_dir,
               "--export_mindir", "false", "--overwrite"]
        return call(cmd, run_dir, algorithm, seed)
    if folder.has_checkpoint():
        cmd = ["--resume", run_dir]
    else:
        cmd = ["--config", config, "--run_dir", run_dir, "--overwrite",
               "--algorithm.name", algorithm, "--seed", str(seed), *overrides]
    return call([os.path.join(ROOT, "train.py"), *cmd], run_dir, algorithm, seed)


def call(cmd, run_dir, algorithm, seed):
    """``python *cmd`` in the project root, its output in <run_dir>.log."""
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    with open(os.path.join(run_dir + ".log"), "a") as log:
        code = subprocess.call([sys.executable, *cmd], stdout=log, stderr=subprocess.STDOUT,
                               cwd=ROOT)
    if code:
        raise SystemExit(f"{algorithm} seed {seed} failed (exit {code}); see {run_dir}.log")
    return time.time() - start


def selected(run_dir):
    """(val record, test record) of the epoch the run selected (its best.ckpt: the rule of
    callbacks/run_folder.py selected_epoch, by the run's train.best_metric), and the last
    test record."""
    folder = RunFolder(run_dir)
    records = folder.eval_records()
    val = {r["epoch"]: r for r in records if r["split"] == "val"}
    test = {r["epoch"]: r for r in records if r["split"] == "test"}
    if not val or not test:
        raise SystemExit(f"{run_dir} has no validation or test evaluation in its eval.jsonl")
    metric = C.load_config(folder.file(folder.CONFIG)).train.best_metric
    best = selected_epoch(records, metric)
    return val[best], test[best], test[max(test)]


def selected_test(run_dir):
    """(test record of the selected epoch, last test record)."""
    _, best, last = selected(run_dir)
    return best, last


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


# The paper's comparison (SPEC section 5), fair by construction: every method gets a grid
# of 3 values of its main hyperparameter, the value is picked on seed 0's worst-group
# validation accuracy, and seeds 0..n run at the picked value; everything else is the
# config's. ERM and ERM + balanced have no hyperparameter of their own: one value.
# label -> (algorithm, fixed overrides, hyperparameter, grid)
COMPARISON = {
    "with_labels": {
        "erm": ("erm", {}, None, (None,)),
        "erm+balanced": ("erm", {"data.sampler": "group_balanced"}, None, (None,)),
        "irm": ("irm", {}, "irm_lambda", (1.0, 10.0, 100.0)),
        "vrex": ("vrex", {}, "vrex_lambda", (1.0, 10.0, 100.0)),
        "groupdro": ("groupdro", {}, "eta", (0.001, 0.01, 0.1)),
        "groupdro+adjustment": ("groupdro", {}, "adjustment", (1.0, 2.0, 4.0)),
        "sam": ("sam", {}, "rho", (0.02, 0.05, 0.1)),
        "sharpdro": ("sharpdro", {}, "rho", (0.02, 0.05, 0.1)),
        "sharpdro+balanced": ("sharpdro", {"data.sampler": "group_balanced"}, "rho",
                              (0.02, 0.05, 0.1)),
        # DFR refits the last layer of the ERM run of the same seed (benchmarks/dfr.py); its
        # L1 strength is chosen inside, on half of the validation set, as the recipe says
        "dfr": ("dfr", {}, None, (None,)),
    },
    "label_free": {
        "erm": ("erm", {}, None, (None,)),
        "sam": ("sam", {}, "rho", (0.02, 0.05, 0.1)),
        "cvar": ("cvar", {}, "fraction", (0.1, 0.2, 0.5)),
        # JTT's epoch holds n + (upweight - 1) |E| images; after one epoch of ERM here |E|
        # is a quarter of the training set, so upweights above 10 would cost 4x or more
        "jtt": ("jtt", {}, "upweight", (2, 5, 10)),
        "eiil": ("eiil", {}, "eta", (0.001, 0.01, 0.1)),
        "sharpdro_agnostic": ("sharpdro_agnostic", {}, "rho", (0.02, 0.05, 0.1)),
    },
}
POST_HOC = {"dfr": "erm"}  # method -> the method whose runs it starts from (same seed)
TABLE_TITLES = {"with_labels": "With group labels", "label_free": "Without group labels"}


def method_runs(table, label, seeds, runs_root):
    """[(value, seed, run folder, algorithm, train.py overrides)] of one method's grid."""
    algorithm, fixed, key, grid = COMPARISON[table][label]
    extra = [a for k, v in fixed.items() for a in (f"--{k}", str(v))]
    out = []
    for value in grid:
        folder = os.path.join(runs_root, label, "default" if key is None else f"{key}={value}")
        more = [] if key is None else [f"--algorithm.{key}", str(value)]
        out += [(value, seed, os.path.join(folder, f"seed{seed}"), algorithm, extra + more)
                for seed in seeds]
    return out


def pick(candidates):
    """The grid value whose seed-0 run has the best worst-group validation accuracy at its
    selected epoch (ties: the first in the grid). ``candidates``: [(value, val record)]."""
    best = max(range(len(candidates)), key=lambda i: (candidates[i][1]["worst_acc"], -i))
    return candidates[best][0]


def compare(args, overrides, tables, seeds, name, runs_root):
    """Both tables of the comparison: seed 0 over every grid, the picks, then the other
    seeds at the picked values; writes results/<name>_comparison.{md,json}."""
    first, rest = seeds[0], seeds[1:]
    plan = {t: [m for m in COMPARISON[t] if m in args.methods] for t in tables}
    plan = {t: labels for t, labels in plan.items() if labels}
    start = time.time()

    def train(runs):
        for value, seed, run_dir, algorithm, extra in runs:
            print(f"{run_dir}", flush=True)
            spent = run_one(args.config, run_dir, algorithm, seed, overrides + extra)
            print(f"    {'skipped (done)' if spent == 0 else f'{spent:.0f}s'}; sweep "
                  f"{time.time() - start:.0f}s", flush=True)

    picks = {}
    for table, labels in plan.items():
        for label in labels:
            runs = method_runs(table, label, [first], runs_root)
            if not args.report_only:
                train(runs)
            elif not all(RunFolder(r[2]).is_finished() for r in runs):
                print(f"{table} {label}: seed {first}'s grid is not finished; left out")
                continue
            grid = [(value, selected(run_dir)[0]) for value, _, run_dir, _, _ in runs]
            picks[table, label] = (pick(grid), {str(v): rec["worst_acc"] for v, rec in grid})
    report = {"name": name, "seeds": seeds, "config": args.config, "overrides": overrides,
              "tables": {}}
    for table, labels in plan.items():
        rows = {}
        for label in labels:
            if (table, label) not in picks:
                continue
            value, grid = picks[table, label]
            runs = [r for r in method_runs(table, label, seeds, runs_root) if r[0] == value]
            if not args.report_only:
                train([r for r in runs if r[1] in rest])
            # --report_only on an unfinished sweep: the seeds done so far (the table says so)
            runs = [r for r in runs if RunFolder(r[2]).is_finished()]
            chosen = [selected(run_dir) for _, _, run_dir, _, _ in runs]
            algorithm, fixed, key, _ = COMPARISON[table][label]
            rows[label] = {"algorithm": algorithm, "fixed": fixed, "key": key, "grid_val_worst": grid,
                           "picked": value, "runs": [r[2] for r in runs],
                           "seeds": [r[1] for r in runs],
                           "best_epochs": [c[1]["epoch"] for c in chosen],
                           "best_val": summarise([c[1] for c in chosen])}
        if rows:
            report["tables"][table] = rows
    return report


def comparison_markdown(report, command):
    lines = [f"# {report['name']}: the comparison", "", f"Command: `{command}`", "",
             "Test accuracy (%), mean +- std over seeds "
             f"{', '.join(map(str, report['seeds']))}, each run at the epoch of its best "
             "worst-group validation accuracy. Each method's hyperparameter was picked from "
             "its grid on seed 0's worst-group validation accuracy (the label-free methods "
             "too: the usual protocol of this literature).", ""]
    for table, rows in report["tables"].items():
        columns = next(iter(rows.values()))["best_val"]["columns"]
        lines += [f"## {TABLE_TITLES[table]}", "", "| method | " + " | ".join(columns) + " |",
                  "|---" * (len(columns) + 1) + "|"]
        for label, r in rows.items():
            s = r["best_val"]
            partial = "" if r["seeds"] == report["seeds"] else \
                f" (seeds {', '.join(map(str, r['seeds']))} only)"
            lines.append(f"| {label}{partial} | " + " | ".join(
                f"{m:.2f} +- {d:.2f}" for m, d in zip(s["mean"], s["std"])) + " |")
        lines += ["", "| method | hyperparameter | grid: seed-0 validation worst (%) | picked |",
                  "|---|---|---|---|"]
        for label, r in rows.items():
            grid = ", ".join(f"{v}: {100 * a:.2f}" if r["key"] else f"{100 * a:.2f}"
                             for v, a in r["grid_val_worst"].items())
            picked = r["picked"] if r["key"] else "-"
            lines.append(f"| {label} | {r['key'] or '(none)'} | {grid} | {picked} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    args, overrides = parse_args(argv)
    algorithms, seeds, cfg, name = check(args, overrides)
    runs_root = args.runs_root or os.path.join(ROOT, "runs", name)
    command = "python benchmarks/reproduce.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.comparison:
        report = compare(args, overrides, args.tables, seeds, name, runs_root)
        report["command"] = command
        os.makedirs(args.results, exist_ok=True)
        base = os.path.join(args.results, f"{name}_comparison")
        with open(base + ".json", "w") as f:
            json.dump(report, f, indent=2)
        text = comparison_markdown(report, command)
        with open(base + ".md", "w") as f:
            f.write(text)
        print(text)
        print(f"written: {base}.md, {base}.json")
        return report
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
