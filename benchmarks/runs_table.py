"""Test accuracy per group of a few finished runs side by side, each at its selected epoch
(the epoch of its best.ckpt), as a Markdown table.

    python benchmarks/runs_table.py runs/a runs/b ... [--out results/x.md] [--title T]
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks.reproduce import selected  # noqa: E402


def table(runs):
    rows = []
    for run in runs:
        _, test, _ = selected(run)
        rows.append((os.path.basename(os.path.normpath(run)), test))
    groups = list(rows[0][1]["acc"])
    lines = ["| run | " + " | ".join(map(str, groups)) + " | mean | worst |",
             "|---" * (len(groups) + 3) + "|"]
    for name, r in rows:
        cells = [f"{100 * r['acc'][g]:.2f}" for g in groups]
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {100 * r['mean_acc']:.2f} | {100 * r['worst_acc']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", help="also write the table (with --title) to this file")
    parser.add_argument("--title", default="Test accuracy (%) at each run's selected epoch")
    args = parser.parse_args(argv)
    text = table(args.runs)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(f"# {args.title}\n\nCommand: `python benchmarks/runs_table.py "
                    f"{' '.join(args.runs)}`\n\n{text}\n")


if __name__ == "__main__":
    main()
