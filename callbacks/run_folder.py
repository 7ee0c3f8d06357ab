"""The run folder: the one owner of its file names, the ``done`` marker, clearing for
``--overwrite`` and the truncation of logs on resume.

    runs/<name>/
      config.yaml           the resolved config (loads again as a config)
      data.json             the model's input contract: class names, channels, image size,
                            mean/std, group kind and names (eval.py, export.py read it)
      train_log.csv         every log_every steps: epoch, step, loss, lr, seconds, group_loss_*
      group_weights.csv     every log_every steps: epoch, step, w_*
      selection.csv         sharpdro_agnostic: epoch, step, share_*, rate_*
      eval.jsonl            one line per evaluation and split
      predictions.npz       the latest evaluation's predictions
      checkpoints/          last.ckpt, best.ckpt
      plots/                groups.png, group_weights.png, accuracy_by_severity.png
      model.mindir          the best model, dynamic batch (written by train.py)
      exports/              export.py's files, named by checkpoint, batch and format
      evals/                eval.py's results, named by what was evaluated
      done                  written last

Every log row carries the global step (CSV: second column; JSON lines: ``step``), so one
rule resumes all of them: keep the rows up to the checkpoint's step.
"""
import csv
import json
import os
import shutil

from sharpdro.atomic import atomic_path


class RunFolder:
    CONFIG = "config.yaml"
    DATA = "data.json"
    TRAIN_LOG = "train_log.csv"
    GROUP_WEIGHTS = "group_weights.csv"
    SELECTION = "selection.csv"
    EVAL_LOG = "eval.jsonl"
    PREDICTIONS = "predictions.npz"
    CHECKPOINTS = "checkpoints"
    PLOTS = "plots"
    MODEL = "model.mindir"
    EXPORTS = "exports"
    EVALS = "evals"
    DONE = "done"
    LOGS = (TRAIN_LOG, GROUP_WEIGHTS, SELECTION, EVAL_LOG)
    # what a run writes; --overwrite removes exactly these (a user's own files stay)
    FILES = (CONFIG, DATA, *LOGS, PREDICTIONS, CHECKPOINTS, PLOTS, MODEL, EXPORTS, EVALS, DONE)
    CHECKPOINT_NAMES = ("best", "last")  # the order a run's model is picked in

    def __init__(self, path):
        self.path = str(path)

    def __str__(self):
        return self.path

    def file(self, name):
        return os.path.join(self.path, name)

    def checkpoint(self, name):
        """checkpoints/<name>.ckpt (name: best or last)."""
        return os.path.join(self.path, self.CHECKPOINTS, f"{name}.ckpt")

    def plot(self, name):
        return os.path.join(self.path, self.PLOTS, f"{name}.png")

    def export_base(self, source, batch_size):
        """exports/model_<source>_batch<N|dynamic> (the format adds its suffix)."""
        return os.path.join(self.path, self.EXPORTS,
                            f"model_{source}_batch{batch_size or 'dynamic'}")

    def eval_base(self, source, split="test"):
        """evals/<split>_<source> (.json and .md are added); split "test", or
        "benchmark_<name>" for a corrupted benchmark."""
        return os.path.join(self.path, self.EVALS, f"{split}_{source}")

    # -- state -----------------------------------------------------------------------
    def exists(self):
        return os.path.isdir(self.path)

    def is_finished(self):
        return os.path.exists(self.file(self.DONE))

    def has_checkpoint(self):
        return os.path.isfile(self.checkpoint("last"))

    def model_checkpoint(self):
        """best.ckpt if there is one, else last.ckpt, else None."""
        for name in self.CHECKPOINT_NAMES:
            if os.path.isfile(self.checkpoint(name)):
                return self.checkpoint(name)
        return None

    def data_info(self):
        """data.json as a dict, or None (a run from before it existed)."""
        path = self.file(self.DATA)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    def write_json(self, name, value):
        with atomic_path(self.file(name)) as tmp, open(tmp, "w") as f:
            json.dump(value, f, indent=1)

    def eval_records(self):
        return read_records(self.file(self.EVAL_LOG))

    # -- writing ---------------------------------------------------------------------
    def create(self):
        os.makedirs(os.path.join(self.path, self.CHECKPOINTS), exist_ok=True)

    def clear(self):
        """Remove what a run writes (for --overwrite)."""
        for name in self.FILES:
            path = self.file(name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)

    def restart_logs(self, resume_step=None):
        """A new run: no logs. A resumed run: keep each log's rows up to ``resume_step``
        (rows written after the checkpoint belong to work the resume repeats)."""
        for name in self.LOGS:
            path = self.file(name)
            if not os.path.isfile(path):
                continue
            if resume_step is None:
                os.remove(path)
            else:
                keep_up_to_step(path, resume_step)

    def mark_done(self, text):
        with atomic_path(self.file(self.DONE)) as tmp, open(tmp, "w") as f:
            f.write(text)


def read_records(path):
    """The records of a JSON-lines log ([] if it does not exist)."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def keep_up_to_step(path, step):
    """Rewrite a log keeping its rows with global step <= ``step`` (CSV: header kept,
    step in the second column; JSON lines: the ``step`` field)."""
    with open(path, newline="") as f:
        if path.endswith(".jsonl"):
            lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
        else:
            rows = list(csv.reader(f))
            lines = rows[:1] + [r for r in rows[1:] if int(r[1]) <= step]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        if path.endswith(".jsonl"):
            f.writelines(lines)
        else:
            csv.writer(f).writerows(lines)


def append_row(path, header, row):
    """Append a CSV row, writing ``header`` first if the file is new."""
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerow(row)
