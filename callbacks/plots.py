"""The plots of a run folder: group weights (or, for sharpdro_agnostic, what it selected from
each group) and accuracy by group, drawn from its CSV/JSONL files, and a grid of training
images per group (matplotlib, Agg)."""
import csv
import os

import numpy as np

from sharpdro.atomic import atomic_path
from sharpdro.monitor import worst_group

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


# under the weight plot: why a rare group's weight falls (docs/method.md, absent_groups)
ABSENT_NOTES = {
    "zero": "algorithm.absent_groups zero: a group with no image in a batch counts as loss 0 "
            "in that step's update,\nso the weight of a group absent from most batches (a rare "
            "one) falls between the batches that hold it ('skip' leaves it)",
    "skip": "algorithm.absent_groups skip: a group with no image in a batch keeps its weight "
            "in that step's update;\nthe groups present share the rest",
}


def _read_log(csv_path):
    """(header, rows) of a run's CSV log; ([], []) if there is none."""
    if not os.path.isfile(csv_path):
        return [], []
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    return (rows[0], rows[1:]) if rows else ([], [])


def plot_group_weights(csv_path, png_path, absent_groups=None):
    """Worst-case group weights over training steps, one line per group (the columns
    w_<name>), with a note on what ``absent_groups`` does to a rare group's weight. None
    (no plot) when the weights never moved: one group, or an algorithm that keeps them
    uniform (erm, sam, sharpdro_agnostic: plot_selection shows what the last did)."""
    header, rows = _read_log(csv_path)
    names = [n[2:] for n in header[2:]]
    weights = np.array([[float(v) for v in r[2:]] for r in rows])
    if not rows or all(worst_group(w, names) == "-" for w in weights):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [int(r[1]) for r in rows]
    for j, name in enumerate(names):
        ax.plot(steps, weights[:, j], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("group weight")
    ax.set_title("worst-case group weights")
    ax.legend(fontsize=7, ncol=2, title="group", title_fontsize=7)
    if absent_groups in ABSENT_NOTES:
        fig.text(0.01, -0.02, ABSENT_NOTES[absent_groups], fontsize=6.5, va="top", ha="left")
    _save(fig, png_path)
    plt.close(fig)
    return png_path


def plot_selection(csv_path, png_path, names=None):
    """sharpdro_agnostic's selection.csv: per group, its share of the selected images and
    the part of its images selected, over training steps. None (no plot) without the log
    or with one group (the share is then 1 and the rate the selected fraction)."""
    header, rows = _read_log(csv_path)
    count = (len(header) - 2) // 2
    if not rows or count < 2:
        return None
    names = list(names) if names is not None and len(names) == count else list(range(count))
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
    steps = [int(r[1]) for r in rows]
    for ax, start, what in ((axes[0], 2, "share of the selected images"),
                            (axes[1], 2 + count, "part of the group's images selected")):
        for j, name in enumerate(names):
            ax.plot(steps, [float(r[start + j]) for r in rows], label=str(name))
        ax.set_xlabel("step")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2, title="group", title_fontsize=7)
    fig.suptitle("worst-case set by group (the update never reads the groups; "
                 "the group weights stay uniform)", fontsize=9)
    _save(fig, png_path)
    plt.close(fig)
    return png_path


def plot_accuracy_by_group(jsonl_path, png_path):
    """Accuracy per severity or group at the last evaluation (validation and test); with
    several evaluations, a second panel with the worst group's accuracy over the epochs."""
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
    kind = records[-1].get("group_kind", "severity")
    for r in records:
        if r["epoch"] == last_epoch:
            names = list(r["acc"])  # groups as positions: names need not be numbers
            left.plot(range(len(names)), [100 * a for a in r["acc"].values()], marker="o",
                      label=r["split"])
            left.set_xticks(range(len(names)), names, rotation=30 if len(names) > 8 else 0)
    left.set_xlabel("severity (0 = clean)" if kind == "severity" else kind)
    left.set_ylabel("accuracy (%)")
    left.set_title(f"accuracy by {kind}, epoch {last_epoch}")
    left.grid(alpha=0.3)
    left.legend()
    if right is not None:
        for split in ("val", "test"):
            points = [(r["epoch"], 100 * r["worst_acc"]) for r in records if r["split"] == split]
            if points:
                right.plot(*zip(*points), marker=".", label=f"{split}")
        right.set_xlabel("epoch")
        right.set_ylabel(f"worst-{kind} accuracy (%)")
        right.set_title(f"worst {kind} over training")
        right.xaxis.get_major_locator().set_params(integer=True)
        right.grid(alpha=0.3)
        right.legend()
    _save(fig, png_path)
    plt.close(fig)
    return png_path


def plot_group_examples(examples, kind, png_path):
    """A grid: one row per group (``examples``: {name: uint8 N x H x W x C}), a few training
    images each, so that "severity 5" or "moonless" can be seen, not only read."""
    if not examples:
        return None
    plt = _pyplot()
    rows, cols = len(examples), max(len(x) for x in examples.values())
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols + 1.2, 1.1 * rows + 0.3),
                             squeeze=False)
    for r, (name, images) in enumerate(examples.items()):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(images):
                img = np.asarray(images[c])
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
        axes[r][0].set_ylabel(str(name), rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(f"training images per {kind}", fontsize=9)
    _save(fig, png_path)
    plt.close(fig)
    return png_path


def plot_photon_sweep(curves, png_path):
    """Accuracy against photons per pixel at full scale (log axis, falling to the right),
    one line per run, its accuracy before any capture (clean, or as given) as a dashed line
    of the same colour."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name, result in curves.items():
        photons = [lv["photons"] for lv in result["levels"]]
        line, = ax.plot(photons, [100 * lv["acc"] for lv in result["levels"]], marker="o",
                        label=os.path.basename(name.rstrip("/")) or name)
        ax.axhline(100 * result["clean"], color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.invert_xaxis()  # darker to the right
    ax.set_xlabel("photons per pixel at full scale")
    ax.set_ylabel("accuracy (%)")
    references = sorted({result.get("reference", "clean") for result in curves.values()})
    ax.set_title(f"accuracy as light falls (dashed: {' / '.join(references)})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, png_path)
    plt.close(fig)
    return png_path
