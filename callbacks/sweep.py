"""What a sweep of train.py runs needs (benchmarks/reproduce.py, tune.py): each run a
normal run folder trained in its own process (skipped when finished, resumed when it has a
checkpoint), the validation and test records of the epoch it selected, and its step time."""
import csv
import os
import subprocess
import sys
import time

from sharpdro import config as C

from .run_folder import RunFolder, selected_epoch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def leaf(option, value):
    """The folder of one grid value under its method's: '<option>=<value>', or 'default' for
    a method without a tuned option."""
    return "default" if option is None else f"{option}={value}"


def fixed_args(fixed):
    """Fixed overrides {dotted key: value} as train.py arguments."""
    return [a for key, value in fixed.items() for a in (f"--{key}", str(value))]


def command(config, run_dir, args, more=(), done=RunFolder.is_finished):
    """train.py's arguments for the run in ``run_dir``: None when ``done(folder)`` (it is
    finished), --resume when it has a checkpoint, else a new run of ``config`` with
    ``args``; ``more`` ends both (tune.py: where to stop)."""
    folder = RunFolder(run_dir)
    if done(folder):
        return None
    if folder.has_checkpoint():
        return [os.path.join(ROOT, "train.py"), "--resume", run_dir, *more]
    return [os.path.join(ROOT, "train.py"), "--config", config, "--run_dir", run_dir,
            "--overwrite", *args, *more]


def call(cmd, run_dir, what):
    """``python *cmd`` in the project root, its output in <run_dir>.log; seconds spent.
    SystemExit naming ``what`` when it fails."""
    os.makedirs(run_dir, exist_ok=True)
    start = time.time()
    with open(os.path.join(run_dir + ".log"), "a") as log:
        code = subprocess.call([sys.executable, *cmd], stdout=log, stderr=subprocess.STDOUT,
                               cwd=ROOT)
    if code:
        raise SystemExit(f"{what} failed (exit {code}); see {run_dir}.log")
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


def step_seconds(run_dir, first_process=False):
    """Mean train seconds per step from a timing run's train_log.csv (one process): the
    intervals between its logged rows, the first left out (graph compilation, first data).
    A resumed run's clock starts again: refused, or with ``first_process`` timed on the
    rows of its first process (tune.py's candidates resumed rung after rung)."""
    with open(os.path.join(run_dir, RunFolder.TRAIN_LOG)) as f:
        rows = [(int(r["step"]), float(r["train_seconds"])) for r in csv.DictReader(f)]
    back = next((i for i in range(1, len(rows)) if rows[i][1] < rows[i - 1][1]), None)
    if back is not None and not first_process:
        raise SystemExit(f"{run_dir}: its clock went back (a resumed run); delete it to re-time")
    rows = rows[:back]
    if len(rows) < 3:
        raise SystemExit(f"{run_dir}: too few logged steps to time (train.log_every)")
    (s0, t0), (s1, t1) = rows[1], rows[-1]
    return (t1 - t0) / (s1 - s0)
