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
import shutil
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from sharpdro import config as C  # noqa: E402  (first: process settings before mindspore loads)
from callbacks import sweep  # noqa: E402
from callbacks.run_folder import RunFolder  # noqa: E402
from callbacks.sweep import fixed_args, leaf, selected, step_seconds  # noqa: E402,F401  (reproduce.selected, .step_seconds)
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
    parser.add_argument("--cost_steps", type=int, default=COST_STEPS,
                        help="with --comparison: steps of each method's timing run (the cost "
                        "column; 0: no timing runs)")
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
        for t in args.tables:  # a post-hoc row needs its source row
            for m in args.methods:
                origin = source_row(t, m) if m in COMPARISON[t] else None
                if origin is not None and origin not in args.methods:
                    raise SystemExit(f"method {m!r} starts from {origin!r}'s runs: "
                                     f"add it to --methods")
        algorithms = sorted({COMPARISON[t][m][0] for t in args.tables for m in args.methods
                             if m in COMPARISON[t]})
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
    cmd = sweep.command(config, run_dir, ["--algorithm.name", algorithm, "--seed", str(seed),
                                          *overrides])
    return 0.0 if cmd is None else call(cmd, run_dir, algorithm, seed)


def call(cmd, run_dir, algorithm, seed):
    """``python *cmd`` in the project root, its output in <run_dir>.log."""
    return sweep.call(cmd, run_dir, f"{algorithm} seed {seed}")


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
REFERENCE = "algorithm.reference"  # a row's fixed option naming the row it starts from
ANNEAL = "algorithm.anneal_steps"
COMPARISON = {
    "with_labels": {
        "erm": ("erm", {}, None, (None,)),
        "erm+balanced": ("erm", {"data.sampler": "group_balanced"}, None, (None,)),
        # full penalty after 100 steps (of fmnist_shot's 312, own_csv_given's 376), as the
        # recorded runs had it from their configs
        "irm": ("irm", {ANNEAL: 100}, "irm_lambda", (1.0, 10.0, 100.0)),
        "vrex": ("vrex", {ANNEAL: 100}, "vrex_lambda", (1.0, 10.0, 100.0)),
        "groupdro": ("groupdro", {}, "eta", (0.001, 0.01, 0.1)),
        "groupdro+adjustment": ("groupdro", {}, "adjustment", (1.0, 2.0, 4.0)),
        "sam": ("sam", {}, "rho", (0.02, 0.05, 0.1)),
        "sharpdro": ("sharpdro", {}, "rho", (0.02, 0.05, 0.1)),
        "sharpdro+balanced": ("sharpdro", {"data.sampler": "group_balanced"}, "rho",
                              (0.02, 0.05, 0.1)),
        # pass 2 on a fifth (the cost target) or half of the batch, the images of largest
        # weight in J (SPEC section 3b, the 'top' rule: results/*_pass2_rules.md)
        "sharpdro+subset0.2": ("sharpdro", {"algorithm.pass2_fraction": 0.2}, "rho",
                               (0.02, 0.05, 0.1)),
        "sharpdro+subset0.5": ("sharpdro", {"algorithm.pass2_fraction": 0.5}, "rho",
                               (0.02, 0.05, 0.1)),
        # DFR refits the last layer of another row's run of the same seed (its
        # algorithm.reference names that row; see source_row); its L1 strength is chosen
        # inside, on half of the validation set, as the recipe says
        "dfr": ("dfr", {REFERENCE: "erm"}, None, (None,)),
        "sharpdro+dfr": ("dfr", {REFERENCE: "sharpdro"}, None, (None,)),
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
        # pass 2 on the selected images only
        "sharpdro_agnostic+subset": ("sharpdro_agnostic", {"algorithm.pass2_selected": "true"},
                                     "rho", (0.02, 0.05, 0.1)),
    },
}
# The cost column: each row's train step time relative to ERM's, from the train_log.csv of
# a short timing run per row (its picked value, the first seed, evaluation cut to one batch)
# run back to back in the sweep; the first logged interval (graph compilation, first data)
# is left out. Two-stage rows time their stage-2 step (the cell that trains the final
# model) and post-hoc rows their source's: the table marks both, since their whole cost is
# more than their steps (benchmarks/README.md has JTT's and EIIL's wall time).
COST_STEPS = 120  # logged every sixth: 5 intervals after the first
COST_CELL = {"jtt": "erm", "eiil": "groupdro"}  # two-stage: the stage-2 step
# what the cell shows around the ratio: (before, after)
COST_NOTE = {"jtt": ("stage 1 + ", ""), "eiil": ("stage 1 + ", ""), "dfr": ("", " + refit")}
TABLE_TITLES = {"with_labels": "With group labels", "label_free": "Without group labels"}


def value_folder(runs_root, table, label, value):
    """The folder of one grid value of one row: <runs_root>/<label>/<key>=<value>."""
    key = COMPARISON[table][label][2]
    return os.path.join(runs_root, label, leaf(key, value))


def method_runs(table, label, seeds, runs_root, picks=None):
    """[(value, seed, run folder, algorithm, train.py overrides)] of one row's grid; a row
    with a source row (source_row) refers to that row's run of the same seed at its picked
    value (``picks``: (table, label) -> (value, grid))."""
    algorithm, fixed, key, grid = COMPARISON[table][label]
    origin = source_row(table, label)
    extra = fixed_args({k: v for k, v in fixed.items() if k != REFERENCE})
    out = []
    for value in grid:
        folder = value_folder(runs_root, table, label, value)
        more = [] if key is None else [f"--algorithm.{key}", str(value)]
        for seed in seeds:
            if origin is not None:
                more = [f"--{REFERENCE}", os.path.join(value_folder(
                    runs_root, table, origin, picks[table, origin][0]), f"seed{seed}")]
            out.append((value, seed, os.path.join(folder, f"seed{seed}"), algorithm,
                        extra + more))
    return out


def source_row(table, label):
    """The row whose runs ``label``'s runs start from (its fixed algorithm.reference), or
    None; that row comes first in its table."""
    return COMPARISON[table][label][1].get(REFERENCE)


def cost_run(args, overrides, table, label, value, runs_root):
    """Seconds per step of ``label`` at ``value`` (see COST_STEPS): a timing run in
    <runs_root>/<label>/cost, trained if missing. Post-hoc rows: their source's."""
    if source_row(table, label) is not None:
        return None
    algorithm, fixed, key, _ = COMPARISON[table][label]
    run_dir = os.path.join(runs_root, label, "cost")
    extra = fixed_args(fixed)
    if algorithm in COST_CELL:  # the stage-2 step; its own options do not change the cost
        algorithm = COST_CELL[algorithm]
    elif key is not None:
        extra += [f"--algorithm.{key}", str(value)]
    extra += ["--train.max_steps", str(args.cost_steps), "--train.eval_max_batches", "1",
              "--train.log_every", str(max(1, args.cost_steps // 6)), "--train.export_mindir", "false"]
    folder = RunFolder(run_dir)
    if not args.report_only:
        if os.path.isdir(run_dir) and not folder.is_finished():  # one process: start again
            shutil.rmtree(run_dir)
        run_one(args.config, run_dir, algorithm, 0, overrides + extra)
    if not folder.is_finished():
        return None
    return step_seconds(run_dir)


def pick(candidates):
    """The grid value whose seed-0 run has the best worst-group validation accuracy at its
    selected epoch (ties: the first in the grid). ``candidates``: [(value, val record)]."""
    best = max(range(len(candidates)), key=lambda i: (candidates[i][1]["worst_acc"], -i))
    return candidates[best][0]


def compare(args, overrides, tables, seeds, name, runs_root):
    """Both tables of the comparison: seed 0 over every grid, the picks, then the other
    seeds at the picked values, then each row's timing run; writes
    results/<name>_comparison.{md,json}."""
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
            origin = source_row(table, label)
            if origin is not None and (table, origin) not in picks:
                print(f"{table} {label}: {origin} has no pick; left out")
                continue
            runs = method_runs(table, label, [first], runs_root, picks)
            if not args.report_only:
                train(runs)
            elif not all(RunFolder(r[2]).is_finished() for r in runs):
                print(f"{table} {label}: seed {first}'s grid is not finished; left out")
                continue
            grid = [(r[0], selected(r[2])[0]) for r in runs]
            picks[table, label] = (pick(grid), {str(v): rec["worst_acc"] for v, rec in grid})
    report = {"name": name, "seeds": seeds, "config": args.config, "overrides": overrides,
              "cost_steps": args.cost_steps, "tables": {}}
    for table, labels in plan.items():
        rows = {}
        for label in labels:
            if (table, label) not in picks:
                continue
            value, grid = picks[table, label]
            runs = [r for r in method_runs(table, label, seeds, runs_root, picks) if r[0] == value]
            if not args.report_only:
                train([r for r in runs if r[1] in rest])
            # --report_only on an unfinished sweep: the seeds done so far (the table says so)
            runs = [r for r in runs if RunFolder(r[2]).is_finished()]
            chosen = [selected(r[2]) for r in runs]
            algorithm, fixed, key, _ = COMPARISON[table][label]
            rows[label] = {"algorithm": algorithm, "fixed": fixed, "key": key, "grid_val_worst": grid,
                           "picked": value, "runs": [r[2] for r in runs],
                           "seeds": [r[1] for r in runs],
                           "best_epochs": [c[1]["epoch"] for c in chosen],
                           "best_val": summarise([c[1] for c in chosen])}
        if rows:
            report["tables"][table] = rows
    if args.cost_steps:
        add_costs(args, overrides, report, picks, runs_root)
    return report


def add_costs(args, overrides, report, picks, runs_root):
    """Each row's ``step_seconds`` and ``cost`` (its step over ERM's; post-hoc rows take
    their source's), from the timing runs, trained back to back after the sweep."""
    seconds = {}
    for table, rows in report["tables"].items():
        for label in rows:
            if label not in seconds:
                seconds[label] = cost_run(args, overrides, table, label, picks[table, label][0],
                                          runs_root)
    erm = seconds.get("erm")
    for table, rows in report["tables"].items():
        for label, row in rows.items():
            t = seconds.get(source_row(table, label) or label)
            row["step_seconds"] = t
            row["cost"] = t / erm if t is not None and erm else None


def cost_cell(row):
    if row.get("cost") is None:
        return "-"
    before, after = COST_NOTE.get(row["algorithm"], ("", ""))
    return f"{before}{row['cost']:.2f}{after}"


def comparison_markdown(report, command):
    lines = [f"# {report['name']}: the comparison", "", f"Command: `{command}`", "",
             "Test accuracy (%), mean +- std over seeds "
             f"{', '.join(map(str, report['seeds']))}, each run at the epoch of its best "
             "worst-group validation accuracy. Each method's hyperparameter was picked from "
             "its grid on seed 0's worst-group validation accuracy (the label-free methods "
             "too: the usual protocol of this literature).", ""]
    costs = any("cost" in r for rows in report["tables"].values() for r in rows.values())
    if costs:
        lines += [f"Step x ERM: the row's train step time over ERM's, each from a timing run of "
                  f"{report.get('cost_steps', COST_STEPS)} steps at the picked value in the "
                  "same sweep (its train_log.csv; the first logged interval, with the graph "
                  "compilation, left out). JTT and EIIL time the step of their stage 2 and "
                  "train a stage 1 before it; DFR rows add a last-layer refit to their source "
                  "run (benchmarks/README.md has their wall time).", ""]
    for table, rows in report["tables"].items():
        columns = next(iter(rows.values()))["best_val"]["columns"]
        extra = ["step x ERM"] if costs else []
        lines += [f"## {TABLE_TITLES[table]}", "",
                  "| method | " + " | ".join(columns + extra) + " |",
                  "|---" * (len(columns) + len(extra) + 1) + "|"]
        for label, r in rows.items():
            s = r["best_val"]
            partial = "" if r["seeds"] == report["seeds"] else \
                f" (seeds {', '.join(map(str, r['seeds']))} only)"
            cells = [f"{m:.2f} +- {d:.2f}" for m, d in zip(s["mean"], s["std"])]
            if costs:
                cells.append(cost_cell(r))
            lines.append(f"| {label}{partial} | " + " | ".join(cells) + " |")
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
