"""What tune.py's successive halving would have picked and cost, from the comparison's own
run records (results/runs/<name>/): tune.py's default candidates are the comparison's seed-0
grid runs, and a run stopped at a rung and resumed past it is the uninterrupted run
(tests/test_run_folder.py), so each rung's decision can be replayed from the records.

    python benchmarks/tune_halving.py --runs_root results/runs/own_csv_given --epochs 8 \
        --eval_every 2 --groups given --out results/tune_own_csv_given.md
    python benchmarks/tune_halving.py --runs_root results/runs/fmnist_shot --epochs 4 \
        --eval_every 2 --groups severity --out results/tune_fmnist_shot.md

For tune.py's default candidates and for every tunable method, per --halving (0: the full
grid): the rungs, the candidates at each, the train processes, the cost in run-epochs (and
x each method's step time over ERM's, from the comparison's timing runs), the pick, and the
pick's test worst group over the seeds the records hold at its value. Nothing is trained.
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
    """[(label, run folder of seed 0, value folder)] in tune.py's candidate order: tune.py's
    own candidates, each in the comparison row that ran it."""
    out = []
    for c in tune.candidates(methods, runs_root, []):
        folder = os.path.join(runs_root, ALIASES.get(c.method.name, c.method.name),
                              os.path.basename(c.run_dir))
        out.append((tune.label(c), os.path.join(folder, "seed0"), folder))
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
            return steps, history, alive[tune.ranked(at, rule)[0]]
        alive = [alive[j] for j in tune.keep(at, eta, rule)]


def test_worst(folder):
    """Worst-group test accuracies (%) at each seed's selected epoch, seeds found."""
    out = []
    for seed in sorted(os.listdir(folder)):
        run = os.path.join(folder, seed)
        if seed.startswith("seed") and RunFolder(run).is_finished():
            out.append(100 * sweep.selected(run)[1]["worst_acc"])
    return out


def simulate(args, texts):
    """{eta: numbers} for the candidates ``texts`` (method names)."""
    methods = [tune.parse_method(t, args.groups) for t in texts]
    cands = candidate_dirs(args.runs_root, methods)
    recs = [records(run) for _, run, _ in cands]
    costs = {m.name: step_cost(args.runs_root, ALIASES.get(m.name, m.name)) for m in methods}
    per_run = [costs[m.name] for m in methods for _ in m.grid]
    out = {}
    for eta in [None] + [int(e) for e in args.eta.split(",") if e]:
        steps, history, best = replay(cands, recs, args.epochs, args.eval_every, eta,
                                      tune.WORST, "val_worst_acc")
        trained = [0] * len(cands)  # epochs each candidate is trained
        for rung, alive in zip(steps, history):
            for i in alive:
                trained[i] = rung
        worst = test_worst(cands[best][2])
        val = tune.rung_record(recs[best], args.epochs, "val_worst_acc")
        out["none" if eta is None else str(eta)] = {
            "rungs": steps, "alive": [len(a) for a in history],
            "processes": sum(len(a) for a in history), "epochs": sum(trained),
            "epochs_x_erm_step": round(sum(t * (c or 1.0) for t, c in zip(trained, per_run)), 1),
            "pick": cands[best][0], "pick_val_worst": round(100 * val["worst_acc"], 2),
            "pick_test_worst": worst}
    return out


def markdown(name, sections):
    lines = [f"# {name}: tune.py's pick and cost with and without successive halving", "",
             "Replayed from the comparison's run records (`python benchmarks/tune_halving.py "
             f"--runs_root results/runs/{name} ...`): a candidate's records up to a rung are "
             "what tune.py's stopped run holds. Cost: run-epochs, and the same weighted by each "
             "method's step time over ERM's; train processes: one per run and rung. Test worst "
             "group: the pick's value over the seeds the comparison ran (mean +- std).", ""]
    for title, out in sections:
        lines += [f"## {title}", "", "| --halving | rungs (epochs) | candidates at each | train "
                  "processes | run-epochs | x ERM step | pick | val worst (%) | test worst (%) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for eta, r in out.items():
            w = r["pick_test_worst"]
            lines.append(f"| {0 if eta == 'none' else eta} | {r['rungs']} | {r['alive']} | "
                         f"{r['processes']} | {r['epochs']} | {r['epochs_x_erm_step']} | "
                         f"{r['pick']} | {r['pick_val_worst']:.2f} | {np.mean(w):.2f} +- "
                         f"{np.std(w, ddof=1):.2f} ({len(w)} seeds) |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--runs_root", required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--eval_every", type=int, required=True)
    parser.add_argument("--eta", default="2,3")
    parser.add_argument("--groups", default="given")
    parser.add_argument("--out", help="write the tables here (markdown) and beside it .json")
    args = parser.parse_args(argv)
    default = tune.default_methods(args.groups)
    every = tune.tunable(args.groups) + [m for m in default if "+" in m]
    sections = [("tune.py's default candidates", simulate(args, default)),
                ("every tunable method (the label-free ones too)", simulate(args, every))]
    name = os.path.basename(os.path.normpath(args.runs_root))
    text = markdown(name, sections)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump(dict(sections), f, indent=2)
    return sections


if __name__ == "__main__":
    main()
