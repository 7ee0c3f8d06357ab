"""The run folder: the one owner of its file names, the ``done`` marker, clearing for
``--overwrite`` and the truncation of logs on resume.

    runs/<name>/
      config.yaml           the resolved config (loads again as a config)
      data.json             the model's input contract: class names, channels, image size,
                            mean/std, group kind and names (eval.py, export.py read it)
      start_weights.json    model.checkpoint / model.pretrained: the file, its sha256, what
                            was loaded, re-initialised, adapted and skipped
      train_log.csv         every log_every steps: epoch, step, loss, lr, seconds, train_seconds, group_loss_*
      group_weights.csv     every log_every steps: epoch, step, w_*
      selection.csv         sharpdro_agnostic: epoch, step, share_*, rate_*
      eval.jsonl            one line per evaluation and split
      predictions.npz       the latest evaluation's predictions
      checkpoints/          last.ckpt, best.ckpt
      plots/                groups.png; group_weights.png (if the weights moved);
                            selection.png (sharpdro_agnostic, 2 groups or more);
                            accuracy_by_severity.png or accuracy_by_group.png
      model.mindir          the best model, dynamic batch (written by train.py)
      exports/              export.py's files, named by checkpoint, batch and format
      evals/                eval.py's results, named by what was evaluated
      done                  written last
      .lock                 held by the one process writing the folder (see RunFolder.lock)

Every log row carries the global step (CSV: second column; JSON lines: ``step``), so one
rule resumes all of them: keep the rows up to the checkpoint's step.
"""
import contextlib
import csv
import datetime
import fcntl
import json
import os
import shutil
import socket
import sys

from sharpdro.atomic import atomic_path, remove_stale
from sharpdro.config import METRICS


class RunFolderError(ValueError):
    """The run folder cannot be used: held by another process, not a folder, not writable."""


class RunFolder:
    CONFIG = "config.yaml"
    DATA = "data.json"
    TRAIN_LOG = "train_log.csv"
    WEIGHTS_LOG = "group_weights.csv"
    SELECTION = "selection.csv"
    EVAL_LOG = "eval.jsonl"
    PREDICTIONS = "predictions.npz"
    CHECKPOINTS = "checkpoints"
    PLOTS = "plots"
    MODEL = "model.mindir"
    EXPORTS = "exports"
    EVALS = "evals"
    DONE = "done"
    LOCK = ".lock"
    STAGE1 = "stage1"                # jtt, eiil: the ERM reference run, a run folder itself
    INFERRED = "inferred_groups.csv"  # jtt's error set, eiil's environments
    START = "start_weights.json"     # where the weights came from (model.checkpoint)
    DFR = "dfr.json"                 # a DFR run: its recipe, grid scores, pick, solver
    LOGS = (TRAIN_LOG, WEIGHTS_LOG, SELECTION, EVAL_LOG)
    # what a run writes; --overwrite removes exactly these (a user's own files stay)
    FILES = (CONFIG, DATA, *LOGS, PREDICTIONS, CHECKPOINTS, PLOTS, MODEL, EXPORTS, EVALS, DONE,
             STAGE1, INFERRED, START, DFR)
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

    def accuracy_plot(self, kind):
        """plots/accuracy_by_<kind>.png: by severity (the protocol's groups) or by group."""
        return self.plot(f"accuracy_by_{kind}")

    def export_base(self, source, batch_size):
        """exports/model_<source>_batch<N|dynamic> (the format adds its suffix)."""
        return os.path.join(self.path, self.EXPORTS,
                            f"model_{source}_batch{batch_size or 'dynamic'}")

    def eval_base(self, source, split="test"):
        """evals/<split>_<source> (.json and .md are added); split "test", or
        "benchmark_<name>" for a corrupted benchmark."""
        return os.path.join(self.path, self.EVALS, f"{split}_{source}")

    # -- state -----------------------------------------------------------------------
    def stage1(self):
        """The run folder of a two-stage run's ERM stage 1."""
        return RunFolder(self.file(self.STAGE1))

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
        return self.read_json(self.DATA)

    def read_json(self, name):
        """The JSON file ``name`` of the folder, or None when there is none."""
        path = self.file(name)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    def write_json(self, name, value):
        with atomic_path(self.file(name)) as tmp, open(tmp, "w") as f:
            json.dump(value, f, indent=1)

    def append_jsonl(self, name, record):
        """One JSON line appended to the log ``name`` (a torn last line is cut on read)."""
        with open(self.file(name), "a") as f:
            f.write(json.dumps(record) + "\n")

    def eval_records(self):
        return read_records(self.file(self.EVAL_LOG))

    # -- one writer --------------------------------------------------------------------
    def holder(self):
        """Who holds the lock ("pid 123 on host, since ..."), or None when it is free."""
        path = self.file(self.LOCK)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # no lock file (or unreadable): nobody holds it
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            with open(path) as f:
                text = f.read().strip()
            try:
                who = json.loads(text)
                return (f"{who['program']} (pid {who['pid']} on {who['host']}, "
                        f"since {who['since']})")
            except (ValueError, KeyError, TypeError):
                return "another process (starting, or reading it)"
        finally:
            os.close(fd)
        return None

    def check_free(self):
        """RunFolderError when the path is a file or another process holds the folder
        (nothing is written)."""
        self._check_is_folder()
        who = self.holder()
        if who is not None:
            raise RunFolderError(self._busy(who))

    def _check_is_folder(self):
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise RunFolderError(f"run folder {self} is a file, not a folder")

    def _busy(self, who):
        return (f"{self} is in use by {who}; wait for it to end or stop it (a run that "
                "crashed or was killed holds nothing)")

    @contextlib.contextmanager
    def lock(self, program=None):
        """Hold the folder for one writer while the block runs: an exclusive ``flock`` on
        ``.lock`` (the kernel releases it when the process ends in any way, so a killed
        run leaves nothing stale), which names its holder. RunFolderError when another
        process holds it (or reads it: ``read_lock``), when the path is not a folder, or
        when it cannot be written. A folder this call created and nothing wrote into is
        removed again on release: taking a folder early leaves nothing behind a refusal."""
        self._check_is_folder()
        created = not os.path.exists(self.path)
        try:
            os.makedirs(self.path, exist_ok=True)
            fd = os.open(self.file(self.LOCK), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise RunFolderError(f"cannot write the run folder {self}: {err.strerror}") from None
        self._flock(fd, fcntl.LOCK_EX)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({
                "program": program or os.path.basename(sys.argv[0] or "python"),
                "pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.datetime.now().isoformat(timespec="seconds")}).encode())
            for sub in ("", self.CHECKPOINTS, self.EXPORTS, self.EVALS, self.PLOTS, self.STAGE1,
                        os.path.join(self.STAGE1, self.CHECKPOINTS)):
                remove_stale(self.file(sub))  # what a killed writer left
            yield self
        finally:
            os.ftruncate(fd, 0)
            if created and os.listdir(self.path) == [self.LOCK]:
                os.remove(self.file(self.LOCK))  # still held: nobody can have taken it
                os.rmdir(self.path)
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def read_lock(self):
        """Hold the folder against writers while the block reads it: a shared ``flock``
        on ``.lock`` (readers do not exclude each other; a writer's ``lock`` is refused
        while it is held, and this is refused while a writer holds the folder)."""
        self._check_is_folder()
        try:
            fd = os.open(self.file(self.LOCK), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:  # a read-only folder: nobody can write it either
            yield self
            return
        self._flock(fd, fcntl.LOCK_SH)
        try:
            yield self
        finally:
            os.close(fd)

    def _flock(self, fd, mode):
        """``flock`` without waiting; RunFolderError naming the holder (fd closed) if taken."""
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunFolderError(self._busy(self.holder() or "another process")) from None

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

    def unmark_done(self):
        """A finished run goes on (resumed with more epochs): no longer done."""
        if self.is_finished():
            os.remove(self.file(self.DONE))

    def mark_done(self, text):
        with atomic_path(self.file(self.DONE)) as tmp, open(tmp, "w") as f:
            f.write(text)


def _complete_lines(path):
    """The lines of a log, without a torn last line (a crash while appending leaves one
    without its newline): (lines, torn text or None)."""
    with open(path, newline="") as f:
        lines = f.readlines()
    if lines and not lines[-1].endswith("\n"):
        return lines[:-1], lines[-1]
    return lines, None


def _parse_jsonl(path, lines):
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            raise ValueError(f"{path}, line {number}: not a JSON record (the file is "
                             "damaged; remove the line to go on)") from None
    return out


def read_records(path):
    """The records of a JSON-lines log ([] if it does not exist); a torn last line (a
    crash while appending) is left out, a damaged line elsewhere is a ValueError naming it."""
    if not os.path.isfile(path):
        return []
    lines, _ = _complete_lines(path)
    return _parse_jsonl(path, lines)


def keep_up_to_step(path, step):
    """Rewrite a log keeping its rows with global step <= ``step`` (CSV: header kept,
    step in the second column; JSON lines: the ``step`` field). A torn last line is dropped
    with a note; a damaged line elsewhere is a ValueError naming file and line."""
    lines, torn = _complete_lines(path)
    if torn is not None:
        print(f"note: dropped the incomplete last line of {path} (a crash while writing "
              f"it): {torn[:60]!r}", file=sys.stderr)
    if path.endswith(".jsonl"):
        records = _parse_jsonl(path, lines)
        kept = [line for line in lines if line.strip()]
        lines = [line for line, r in zip(kept, records) if r["step"] <= step]
    else:
        rows = list(csv.reader(lines))
        for number, row in enumerate(rows[1:], 2):
            if len(row) < 2 or not row[1].isdigit():
                raise ValueError(f"{path}, line {number}: not a log row (the file is damaged; "
                                 "remove the line to go on)")
        lines = rows[:1] + [r for r in rows[1:] if int(r[1]) <= step]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        if path.endswith(".jsonl"):
            f.writelines(lines)
        else:
            csv.writer(f).writerows(lines)


def is_better(value, best):
    """Model selection's one rule: a strictly higher metric (a tie keeps the earlier epoch)."""
    return best is None or value > best


def short_path(path):
    """``path`` relative to the working directory when it lies below it, else as given."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def selected_epoch(records, best_metric):
    """The epoch whose checkpoint is best.ckpt, from a run's eval records: the first epoch
    with the highest ``best_metric`` (train.best_metric); None without a validation record."""
    split, field = METRICS[best_metric]
    best_epoch, best = None, None
    for record in records:
        if record["split"] == split and is_better(record[field], best):
            best_epoch, best = record["epoch"], record[field]
    return best_epoch


def write_csv(path, header, rows):
    """Write a whole CSV atomically: ``header``, then ``rows``."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
