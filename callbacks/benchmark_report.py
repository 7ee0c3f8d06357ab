"""Accuracy on an official corrupted test set (CIFAR-10-C layout or ImageNet-C layout) and
the corruption errors of Hendrycks & Dietterich (2019), for eval.py --benchmark.

- accuracy for every corruption x severity found, its mean per corruption, and the mean
  over the standard 15 found ("mean");
- the unnormalised mean corruption error: 100 - that mean, in percent;
- with a baseline's results file (the .json this writes), the corruption error
  CE_c = sum_s E_{s,c} / sum_s E^baseline_{s,c} and mCE = the mean of CE_c over the
  standard corruptions both have, in percent.
"""
import csv
import json
import os
import sys

import numpy as np

from sharpdro.atomic import atomic_path

from .entry import (contract_predictor, input_contract, make_parent, model_source, output_prefix,
                    write_json)
from .evaluation import predict_set


def evaluate_benchmark(predict, bench, image_size, channels, num_classes, mean, std, batch_size,
                       log=print):
    """{corruption: {severity: accuracy}} over everything ``bench`` holds."""
    from datasets.benchmark import STANDARD
    from datasets.pipeline import EvalSet

    bench.check(image_size, channels, num_classes)  # every file before any is evaluated
    acc = {}
    order = [c for c in STANDARD if c in bench.corruptions] + sorted(
        c for c in bench.corruptions if c not in STANDARD)
    for corruption in order:
        acc[corruption] = {}
        for severity, images, labels in bench.sets(corruption, image_size, channels, num_classes):
            preds, truth, _ = predict_set(predict, EvalSet(images, labels, mean, std, batch_size))
            acc[corruption][severity] = float((preds == truth).mean())
        log(f"  {corruption:<18} " + " ".join(f"{100 * a:6.2f}" for a in acc[corruption].values()))
    return acc


def corruption_errors(acc, baseline=None):
    """The summary of ``acc`` ({corruption: {severity: accuracy}}), see the module docstring."""
    from datasets.benchmark import STANDARD

    per_corruption = {c: float(np.mean(list(a.values()))) for c, a in acc.items() if a}
    standard = [c for c in STANDARD if c in per_corruption]
    mean = float(np.mean([per_corruption[c] for c in standard])) if standard else None
    out = {"acc": acc, "mean_by_corruption": per_corruption, "standard_found": standard,
           "missing": [c for c in STANDARD if c not in acc], "mean_acc": mean,
           "unnormalised_mce": None if mean is None else 1.0 - mean}
    if baseline is not None:
        base = {c: {int(s): v for s, v in a.items()} for c, a in baseline["acc"].items()}
        ce = {}
        for c in standard:
            if c in base:
                shared = [s for s in acc[c] if s in base[c]]
                theirs = sum(1.0 - base[c][s] for s in shared)
                if shared and theirs > 0:
                    ce[c] = sum(1.0 - acc[c][s] for s in shared) / theirs
        out["ce"] = ce
        out["mce"] = float(np.mean(list(ce.values()))) if ce else None
    return out


def load_results(path):
    """A results .json written by eval.py --benchmark (the baseline of the normalised CE)."""
    try:
        with open(path) as f:
            data = json.load(f)
        data["acc"] = {c: {int(s): float(v) for s, v in a.items()} for c, a in data["acc"].items()}
        bad = [f"{c} {s}: {v}" for c, a in data["acc"].items() for s, v in a.items()
               if not 0.0 <= v <= 1.0]  # NaN too
        if bad:
            raise ValueError(f"accuracies outside [0, 1]: {', '.join(bad[:3])}")
    except (OSError, ValueError, KeyError, AttributeError) as err:
        raise ValueError(f"baseline {path}: not a results file of eval.py --benchmark ({err})") from None
    return data


def _cells(summary, corruption):
    a = summary["acc"][corruption]
    row = [f"{100 * a[s]:.2f}" if s in a else "-" for s in range(1, 6)]
    row.append(f"{100 * summary['mean_by_corruption'][corruption]:.2f}")
    if "ce" in summary:
        ce = summary["ce"].get(corruption)
        row.append("-" if ce is None else f"{100 * ce:.1f}")
    return row


def _rows(summary):
    from datasets.benchmark import STANDARD

    head = ["corruption", "1", "2", "3", "4", "5", "mean"] + (["CE"] if "ce" in summary else [])
    rows = [[c] + _cells(summary, c) for c in summary["acc"] if c in STANDARD]
    extra = [[c + " *"] + _cells(summary, c) for c in summary["acc"] if c not in STANDARD]
    return head, rows, extra


def _footer(summary):
    lines = []
    if summary["mean_acc"] is not None:
        lines.append(f"mean accuracy over the {len(summary['standard_found'])} standard "
                     f"corruptions found: {100 * summary['mean_acc']:.2f} %; unnormalised mCE "
                     f"{100 * summary['unnormalised_mce']:.2f} %")
    if summary.get("mce") is not None:
        lines.append(f"mCE relative to the baseline ({len(summary['ce'])} corruptions): "
                     f"{100 * summary['mce']:.1f} %")
    if summary["missing"]:
        lines.append(f"not found (left out of the means): {', '.join(summary['missing'])}")
    return lines


def format_benchmark(summary):
    head, rows, extra = _rows(summary)
    widths = [max(len(r[i]) for r in [head] + rows + extra) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    lines = [fmt(head)] + [fmt(r) for r in rows + extra]
    if extra:
        lines.append("* not one of the standard 15: shown, not in the means")
    return "\n".join(lines + _footer(summary))


def write_benchmark(prefix, summary, source, benchmark):
    """<prefix>.json (everything), .md (the table) and .csv (one row per corruption x severity)."""
    head, rows, extra = _rows(summary)
    write_json(prefix + ".json", {"source": source, "benchmark": benchmark, **summary})
    md = [f"Accuracy (%) on {benchmark} ({source})", "",
          "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in rows + extra]
    with atomic_path(prefix + ".md") as tmp, open(tmp, "w") as f:
        f.write("\n".join(md + [""] + _footer(summary)) + "\n")
    with atomic_path(prefix + ".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["corruption", "severity", "accuracy", "error"])
        for c, by_severity in summary["acc"].items():
            for s, a in by_severity.items():
                writer.writerow([c, s, f"{a:.6f}", f"{1 - a:.6f}"])


def run_benchmark(args, cfg):
    """eval.py --benchmark: accuracy on an official corrupted test set, printed and written
    to the run folder's evals/benchmark_<folder>_<model>.json/.md/.csv (eval.py's docstring)."""
    from datasets.benchmark import open_benchmark
    from datasets.readers import DatasetNotFoundError

    name = os.path.basename(os.path.normpath(args.benchmark))
    try:
        baseline = load_results(args.baseline) if args.baseline else None
        bench = open_benchmark(args.benchmark)
        info = input_contract(args, cfg)
        predict = contract_predictor(args, cfg, info)
        print(f"{name}: {bench.layout} layout, {len(bench.corruptions)} corruption(s); "
              f"accuracy (%) at severities 1-5:", flush=True)
        acc = evaluate_benchmark(predict, bench, info["image_size"], info["channels"],
                                 len(info["class_names"]), info["mean"], info["std"],
                                 cfg.train.eval_batch_size)
    except (ValueError, DatasetNotFoundError) as err:
        sys.exit(f"error: {err}")
    summary = corruption_errors(acc, baseline)
    print(format_benchmark(summary))
    source = model_source(args)
    out = make_parent(output_prefix(args, source, f"benchmark_{name}"))
    write_benchmark(out, summary, source, args.benchmark)
    print(f"written: {out}.json, {out}.md, {out}.csv")
    return summary
