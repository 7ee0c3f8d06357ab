"""The README's Results tables, from the comparison reports (results/<name>_comparison.json):
worst-group test accuracy per dataset (mean +- std over seeds, the best in bold) and the
step time over ERM's.

    python -m benchmarks.results_table [--check README.md]

``--check``: exit 1 if the README's tables (between its `<!-- results table -->` markers)
differ from what the reports give.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.reproduce import COMPARISON, cost_cell  # noqa: E402

DATASETS = ("fmnist_shot", "own_csv_given")
NAMES = {"erm": "ERM", "erm+balanced": "ERM + group-balanced sampler", "irm": "IRM",
         "vrex": "V-REx", "groupdro": "GroupDRO", "groupdro+adjustment": "GroupDRO + adjustment",
         "sam": "SAM", "sharpdro": "SharpDRO",
         "sharpdro+balanced": "SharpDRO + group-balanced sampler",
         "sharpdro+subset0.2": "SharpDRO, pass 2 on 20 % (`pass2_fraction: 0.2`)",
         "sharpdro+subset0.5": "SharpDRO, pass 2 on 50 % (`pass2_fraction: 0.5`)",
         "dfr": "DFR (ERM's last layer refit on half of validation)",
         "sharpdro+dfr": "SharpDRO + DFR (SharpDRO's last layer refit the same way)",
         "cvar": "CVaR-DRO", "jtt": "JTT", "eiil": "EIIL", "sharpdro_agnostic": "sharpdro_agnostic",
         "sharpdro_agnostic+subset": "sharpdro_agnostic, pass 2 on the selected (`pass2_selected`)"}
START, END = "<!-- results table: python -m benchmarks.results_table -->", "<!-- end results table -->"


def load(results_dir):
    out = {}
    for name in DATASETS:
        with open(os.path.join(results_dir, f"{name}_comparison.json")) as f:
            out[name] = json.load(f)
    return out


def tables(reports):
    lines = []
    for table, title in (("with_labels", "with group labels"), ("label_free", "without")):
        labels = [m for m in COMPARISON[table]
                  if any(m in r["tables"].get(table, {}) for r in reports.values())]
        best = {}
        for name, r in reports.items():
            rows = r["tables"].get(table, {})
            best[name] = max((rows[m]["best_val"]["mean"][-1] for m in labels if m in rows),
                             default=None)
        lines += [f"| {title} | " + " | ".join(DATASETS) + " | step x ERM |",
                  "|---" * (len(DATASETS) + 2) + "|"]
        for m in labels:
            cells = []
            for name, r in reports.items():
                row = r["tables"].get(table, {}).get(m)
                if row is None:
                    cells.append("-")
                    continue
                mean, std = row["best_val"]["mean"][-1], row["best_val"]["std"][-1]
                cell = f"{mean:.2f} +- {std:.2f}"
                cells.append(f"**{cell}**" if mean == best[name] else cell)
            first = reports[DATASETS[0]]["tables"].get(table, {}).get(m)
            cost = cost_cell(first) if first else "-"
            lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(cells) + f" | {cost} |")
        lines.append("")
    return "\n".join(lines)


def splice(text, block):
    a = text.index(START) + len(START) + 1
    return text[:a] + block + text[text.index(END):]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=os.path.join(ROOT, "results"))
    parser.add_argument("--check", help="a Markdown file holding the tables between the markers")
    parser.add_argument("--write", help="replace the tables between the markers in this file")
    args = parser.parse_args(argv)
    block = tables(load(args.results))
    for path in filter(None, (args.check, args.write)):
        with open(path) as f:
            text = f.read()
        if args.write:
            with open(path, "w") as f:
                f.write(splice(text, block))
        elif splice(text, block) != text:
            print(f"{path}: the results tables differ from the reports; rewrite them with "
                  f"--write {path}")
            return 1
    if not (args.check or args.write):
        print(block, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
