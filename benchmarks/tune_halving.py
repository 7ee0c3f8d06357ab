"""What tune.py's successive halving would have picked and cost, from the comparison's own
run records (results/runs/<name>/): tune.py's default candidates are the comparison's seed-0
grid runs, and a run stopped at a rung and resumed past it is the uninterrupted run
(tests/test_run_folder.py), so each rung's decision can be replayed from the records.

    python benchmarks/tune_halving.py --runs_root results/runs/own_csv_given --epochs 8 \
        --eval_every 2 [--eta 2,3] [--methods ...]

Prints, per eta (none = the full grid): the rungs, the candidates left at each, the runs
trained to each rung, the cost in epochs (x each method's step time over ERM's, from the
comparison's timing runs), the pick, and the pick's test worst group over the seeds the
records hold at its value (mean +- std). Nothing is trained.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from callbacks import sweep, tune  # noqa: E402
from callbacks.run_folder import RunFolder  # noqa: E402


# tune.py's method name -> the comparison row that ran the same runs
ALIASES = {"sharpdro+pass2_fraction=0.5": "sharpdro+subset0.5"}


def records(run_dir):
    return RunFolder(run_dir).eval_records()


def candidate_dirs(runs_root, methods):
    """[(label, run folder of seed 0, value folder)] in tune.py's candidate order."""
    out = []
    for m in methods:
        for value in m.grid:
            leaf = "default" if m.option is None else f"{m.option}={value}"
            folder = os.path.join(runs_root, ALIASES.get(m.name, m.name), leaf)
            out.append((f"{m.name}" + ("" if m.option is None else f" {m.option}={value}"),
                        os.path.join(folder, "seed0"), folder))
    return out


def step_cost(runs_root, name):
    """The method's step time over ERM's from the comparison's timing runs (None: no run)."""
    try:
        return (sweep.step_seconds(os.path.join(runs_root, name, "cost"))
                / sweep.step_seconds(os.path.join(runs_root, "erm", "cost")))
    except (OSError, SystemExit):
        return None


def replay(cands, recs, epochs, eval_every, eta, rule, metric):
    """(rungs, [alive indices per rung], index of the pick)."""
    steps = tune.rungs(epochs, eval_every, eta)
    alive, history = list(range(len(cands))), []
    for rung in steps:
        history.append(alive)
        at = [tune.rung_record(recs[i], rung, metric) for i in alive]
        if rung == steps[-1]:
            return steps, history, alive[tune.keep(at, len(at), rule)[0]]
        alive = [alive[j] for j in tune.keep(at, eta, rule)]


def test_worst(folder):
    """Worst-group test accuracies (%) at each seed's selected epoch, seeds found."""
    out = []
    for seed in sorted(os.listdir(folder)):
        run = os.path.join(folder, seed)
        if seed.startswith("seed") and RunFolder(run).is_finished():
            out.append(100 * sweep.selected(run)[1]["worst_acc"])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs_root", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--eval_every", type=int, required=True)
    parser.add_argument("--eta", default="2,3")
    parser.add_argument("--groups", default="given")
    parser.add_argument("--methods", help="default: tune.py's")
    parser.add_argument("--json", help="write the numbers here too")
    args = parser.parse_args(argv)
    texts = args.methods.split(",") if args.methods else tune.default_methods(args.groups)
    methods = [tune.parse_method(t, args.groups) for t in texts]
    cands = candidate_dirs(args.runs_root, methods)
    recs = [records(run) for _, run, _ in cands]
    costs = {m.name: step_cost(args.runs_root, ALIASES.get(m.name, m.name)) for m in methods}
    per_run = [costs[m.name] for m in methods for _ in m.grid]
    rule, metric = tune.WORST, "val_worst_acc"
    out = {}
    for eta in [None] + [int(e) for e in args.eta.split(",") if e]:
        steps, history, best = replay(cands, recs, args.epochs, args.eval_every, eta, rule, metric)
        trained = [0] * len(cands)  # epochs each candidate is trained
        for rung, alive in zip(steps, history):
            for i in alive:
                trained[i] = rung
        epochs = sum(trained)
        weighted = sum(t * (c or 1.0) for t, c in zip(trained, per_run))
        processes = sum(len(alive) for alive in history)
        worst = test_worst(cands[best][2])
        val = tune.rung_record(recs[best], args.epochs, metric)
        out["none" if eta is None else str(eta)] = {
            "rungs": steps, "alive": [len(a) for a in history], "processes": processes,
            "epochs": epochs, "epochs_x_erm_step": round(weighted, 1), "pick": cands[best][0],
            "pick_val_worst": round(100 * val["worst_acc"], 2),
            "pick_test_worst": [round(w, 2) for w in worst]}
        print(f"eta {eta or 'none'}: rungs {steps}, candidates {[len(a) for a in history]}, "
              f"{processes} train processes, {epochs} epochs ({weighted:.0f} x ERM's step); pick "
              f"{cands[best][0]} (val worst {100 * val['worst_acc']:.2f}); test worst over "
              f"{len(worst)} seeds {np.mean(worst):.2f} +- {np.std(worst, ddof=1):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
