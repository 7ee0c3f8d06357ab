"""The two-stage label-free methods, jtt and eiil (SPEC section 5), as train.py runs them.

Stage 1 is an ordinary ERM run in ``<run>/stage1/`` (its own config, checkpoints and
eval.jsonl) for ``algorithm.first_epochs`` epochs, or an existing finished ERM run given by
``algorithm.reference``. Between the stages its last checkpoint is run over the training
images (inference mode, in order): JTT's error set, or EIIL's two inferred environments,
computed by ``sharpdro.label_free`` and written to ``<run>/inferred_groups.csv``. Stage 2
trains a fresh model (the same initial weights: the same seed) in the run folder itself,
on the upweighted data (JTT) or over the inferred groups (EIIL). Everything here is a
function of the stage-1 checkpoint and the config, so a resumed stage 2 recomputes exactly
what the interrupted one used.
"""
import dataclasses
import sys

import numpy as np

from sharpdro import config as C
from sharpdro import label_free

from .run_folder import RunFolder, write_csv

ENVIRONMENTS = ("env0", "env1")  # EIIL's inferred groups
# where the data is read from or cached: may differ between a reference run and this one
WHERE = ("data.data_dir", "data.cache_dir")


def first_epochs(cfg):
    """Stage 1's epochs: algorithm.first_epochs, or a quarter of train.epochs (at least 1)."""
    epochs = cfg.train.epochs
    first = cfg.algorithm.first_epochs or max(1, epochs // 4)
    if not 1 <= first < epochs:
        raise ValueError(f"algorithm.first_epochs {first} must be at least 1 and below "
                         f"train.epochs {epochs} ({cfg.algorithm.name} trains an ERM model "
                         "for first_epochs, then a fresh one for train.epochs)")
    return first


def stage1_config(cfg, folder):
    """The config of the ERM reference run in ``folder`` (a RunFolder)."""
    values = cfg.to_dict()
    values["algorithm"] = {"name": "erm"}
    values["train"].update(epochs=first_epochs(cfg), max_steps=0, export_mindir=False)
    values["run_dir"] = str(folder)
    values["name"] = f"{cfg.name or cfg.algorithm.name}-stage1"
    return C.from_dict(values)


def check_reference(cfg, path):
    """``algorithm.reference``: a finished ERM run of the same data, model and seed, as a
    RunFolder; ValueError in one line saying what is wrong or which setting differs."""
    ref = RunFolder(path)
    where = f"algorithm.reference {path}"
    if not ref.exists() or not ref.has_checkpoint():
        raise ValueError(f"{where} is not a run folder with a checkpoint")
    if not ref.is_finished():
        raise ValueError(f"{where} is not a finished run (finish it with train.py --resume "
                         f"{path})")
    try:
        used = C.load_config(ref.file(ref.CONFIG))
    except C.ConfigError as err:
        raise ValueError(f"{where}: {err}") from None
    if used.algorithm.name != "erm":
        raise ValueError(f"{where} is a {used.algorithm.name} run; stage 1 of "
                         f"{cfg.algorithm.name} must be an ERM run")
    theirs, mine = C.flat(used), C.flat(cfg)
    for key in C.LEAVES:
        same_kind = key == "seed" or key.startswith(("data.", "model."))
        if same_kind and key not in WHERE and theirs[key] != mine[key]:
            raise ValueError(f"{where} is not a run of the same data, model and seed: {key} "
                             f"is {theirs[key]!r} there and {mine[key]!r} here")
    return ref


def training_logits(network, data, batch_size):
    """The network's outputs (float64) on every training image, in order, unaugmented: the
    logits, or the features of a network whose head was split off (DFR)."""
    import mindspore as ms

    network.set_train(False)
    out = [network(ms.Tensor(x)).asnumpy() for x, _ in data.training_set(batch_size).batches()]
    return np.concatenate(out).astype(np.float64)


def between_stages(cfg, data, logits, seed):
    """(stage 2's data, the per-image table for inferred_groups.csv, the summary lines):
    JTT's upweighted data or EIIL's regrouped data, from the stage-1 model's ``logits``."""
    _, labels, groups = data.arrays.train
    name = cfg.algorithm.name
    n = len(labels)
    if name == "jtt":
        inferred = label_free.jtt_error_set(logits, labels).astype(np.int64)
        chosen = int(inferred.sum())
        lines = [f"jtt: error set of the stage-1 model: {chosen} of {n} training images "
                 f"({100 * chosen / n:.1f} %), each counted {cfg.algorithm.upweight} times per "
                 "epoch of stage 2"]
        if chosen in (0, n):
            lines.append(f"warning: the error set holds {'none' if chosen == 0 else 'all'} of "
                         f"the {n} training images, so stage 2 is plain ERM; train stage 1 "
                         "longer or shorter (algorithm.first_epochs)")
        new = dataclasses.replace(data, repeats=label_free.jtt_repeats(
            inferred, cfg.algorithm.upweight))
        columns = {"in_error_set": inferred}
    else:
        d = label_free.irm_terms(logits, labels)
        inferred, q, objective = label_free.eiil_environments(
            d, cfg.algorithm.eiil_steps, cfg.algorithm.eiil_lr, seed)
        counts = np.bincount(inferred, minlength=2)
        lines = [f"eiil: inferred environments of the stage-1 model: {ENVIRONMENTS[0]} "
                 f"{counts[0]}, {ENVIRONMENTS[1]} {counts[1]} images (IRMv1 penalty of the "
                 f"split {objective:.4g})"]
        if counts.min() == 0:
            lines.append(f"warning: EIIL put all {n} training images in one environment, so "
                         "stage 2 is GroupDRO over one group (plain ERM); try other "
                         "algorithm.eiil_steps / eiil_lr or a longer stage 1")
        new = data.with_training_groups(inferred, ENVIRONMENTS)
        columns = {"environment": inferred, "q": np.round(q, 6)}
    rows = {"index": np.arange(n)}
    if data.arrays.train_files is not None:
        rows["path"] = list(data.arrays.train_files)
    rows["label"] = labels
    if len(data.arrays.group_names) > 1:
        rows[data.arrays.group_kind] = [data.arrays.group_names[g] for g in groups]
        lines += recovery_table(inferred, groups, data.arrays.group_names, data.arrays.group_kind,
                                "in the error set" if name == "jtt" else f"in {ENVIRONMENTS[1]}")
    rows.update(columns)
    return new, rows, lines


def recovery_table(inferred, groups, names, kind, what):
    """How many images of each true group the inference put in its set: the data's groups
    are read only here, to judge the inference, never by training."""
    lines = [f"  {kind:<10} {'images':>8} {what:>18} {'rate':>7} {'share':>7}"]
    chosen = max(int(inferred.sum()), 1)
    for g, name in enumerate(names):
        mine = groups == g
        k = int(inferred[mine].sum())
        lines.append(f"  {str(name):<10} {int(mine.sum()):>8} {k:>18} "
                     f"{k / max(int(mine.sum()), 1):>7.2f} {k / chosen:>7.2f}")
    return lines


def write_inferred(path, rows):
    """inferred_groups.csv: one row per training image."""
    header = list(rows)
    write_csv(path, header, zip(*(rows[h] for h in header)))


def report(lines):
    for line in lines:
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout)
