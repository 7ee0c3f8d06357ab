"""The two plots of a run folder, drawn from its CSV/JSONL files (matplotlib, Agg)."""
import csv
import os

from sharpdro.atomic import atomic_path

from .run_folder import read_records


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def plot_group_weights(csv_path, png_path):
    """Worst-case group weights over training steps, one line per severity group."""
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [int(r[1]) for r in rows]
    for j, name in enumerate(header[2:], start=2):
        ax.plot(steps, [float(r[j]) for r in rows], label=f"severity {name[2:]}")
    ax.set_xlabel("step")
    ax.set_ylabel("group weight")
    ax.set_title("worst-case group weights")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, png_path)
    plt.close(fig)
    return png_path


def plot_accuracy_by_severity(jsonl_path, png_path):
    """Accuracy against severity at the last evaluation (validation and test); with several
    evaluations, a second panel with the worst-severity accuracy over the epochs."""
    records = read_records(jsonl_path)
    if not records:
        return None
    plt = _pyplot()
    epochs = sorted({r["epoch"] for r in records})
    if len(epochs) > 1:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    else:  # one evaluation: a second panel would be two dots on a meaningless axis
        fig, left = plt.subplots(figsize=(5.5, 3.8), constrained_layout=True)
        right = None
    last_epoch = epochs[-1]
    for r in records:
        if r["epoch"] == last_epoch:
            levels = [int(s) for s in r["acc"]]
            left.plot(levels, [100 * a for a in r["acc"].values()], marker="o", label=r["split"])
            left.set_xticks(levels)
    left.set_xlabel("severity (0 = clean)")
    left.set_ylabel("accuracy (%)")
    left.set_title(f"accuracy by severity, epoch {last_epoch}")
    left.grid(alpha=0.3)
    left.legend()
    if right is not None:
        for split in ("val", "test"):
            points = [(r["epoch"], 100 * r["worst_acc"]) for r in records if r["split"] == split]
            if points:
                right.plot(*zip(*points), marker=".", label=f"{split}")
        right.set_xlabel("epoch")
        right.set_ylabel("worst-severity accuracy (%)")
        right.set_title("worst severity over training")
        right.xaxis.get_major_locator().set_params(integer=True)
        right.grid(alpha=0.3)
        right.legend()
    _save(fig, png_path)
    plt.close(fig)
    return png_path
