"""SPEC section 3b's two rules for sharpdro's pass 2 on a subset ('sample', 'top') and a
random subset ('uniform', ESAM's choice, blind to the groups), side by side with the whole
batch: every (rule, seed) trained by train.py on one config at one rho, then worst-group
validation and test accuracy (mean +- std over the seeds, each run at its best-val epoch).

    python benchmarks/pass2_rules.py --config configs/fmnist_shot.yaml --rho 0.02 \\
        --fraction 0.2 --seeds 0,1,2 --full_runs results/runs/fmnist_shot/sharpdro/rho=0.02

Run folders: <runs_root>/<rule>/seed<s> (default runs_root runs/<name>-pass2); finished runs
are skipped, interrupted ones resumed. ``--full_runs``: the whole-batch runs of the same
config and rho (the comparison's), read for the reference row; without it the whole-batch
runs are trained too. Writes results/<name>_pass2_rules_f<fraction>.md.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.reproduce import run_one, selected  # noqa: E402
from sharpdro import config as C  # noqa: E402

RULES = ("sample", "top", "uniform")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--rho", type=float, required=True)
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rules", default=",".join(RULES), help="the rules to run")
    parser.add_argument("--runs_root")
    parser.add_argument("--full_runs", help="folder of the whole-batch runs' seed<s> folders")
    parser.add_argument("--results", default=os.path.join(ROOT, "results"))
    args, overrides = parser.parse_known_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    name = C.load_config(args.config, overrides).name
    root = args.runs_root or os.path.join(ROOT, "runs", f"{name}-pass2")
    common = ["--algorithm.rho", str(args.rho), *overrides]
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    bad = [r for r in rules if r not in RULES]
    if bad:
        parser.error(f"unknown rules {bad}; choose from {list(RULES)}")
    rows = {}
    for rule in ["full"] + rules:
        extra = [] if rule == "full" else ["--algorithm.pass2_fraction", str(args.fraction),
                                           "--algorithm.pass2_rule", rule]
        folder = args.full_runs if rule == "full" and args.full_runs else os.path.join(root, rule)
        worst = []
        for seed in seeds:
            run_dir = os.path.join(folder, f"seed{seed}")
            spent = run_one(args.config, run_dir, "sharpdro", seed, common + extra)
            print(f"{rule} seed {seed}: {'done before' if not spent else f'{spent:.0f}s'}",
                  flush=True)
            val, test, _ = selected(run_dir)
            worst.append((100 * val["worst_acc"], 100 * test["worst_acc"]))
        rows[rule] = np.array(worst)
    lines = [f"# {name}: pass 2 on a subset, the rules of SPEC section 3b and a random subset", "",
             f"Command: `python benchmarks/pass2_rules.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
             "", f"sharpdro, rho {args.rho}; pass2_fraction {args.fraction} against the whole "
             f"batch ('full'); worst-group accuracy (%), mean +- std over seeds {seeds}, each run "
             "at its best worst-group validation epoch.", "",
             "| pass 2 | validation worst | test worst | test worst per seed |", "|---|---|---|---|"]
    for rule, w in rows.items():
        sd = w.std(0, ddof=1) if len(w) > 1 else np.zeros(2)
        lines.append(f"| {rule} | {w[:, 0].mean():.2f} +- {sd[0]:.2f} | {w[:, 1].mean():.2f} "
                     f"+- {sd[1]:.2f} | {', '.join(f'{v:.2f}' for v in w[:, 1])} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(args.results, exist_ok=True)
    path = os.path.join(args.results, f"{name}_pass2_rules_f{args.fraction:g}.md")
    with open(path, "w") as f:
        f.write(text)
    print(text + f"written: {path}")


if __name__ == "__main__":
    main()
