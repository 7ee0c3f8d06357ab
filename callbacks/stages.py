"""The two-stage methods (jtt and eiil, SPEC section 5; sharpdro/algorithms/protocol.py) as
train.py runs them.

Stage 1 is an ordinary ERM run in ``<run>/stage1/`` (its own config, checkpoints and
eval.jsonl) for ``algorithm.first_epochs`` epochs, or an existing finished ERM run given by
``algorithm.reference``. Between the stages its last checkpoint is run over the training
images (inference mode, in order) and the method's ``between_stages`` infers from the
outputs (JTT's error set, EIIL's two environments), written to ``<run>/inferred_groups.csv``. Stage 2
trains a fresh model (the same initial weights: the same seed) in the run folder itself,
on the upweighted data (JTT) or over the inferred groups (EIIL). Everything here is a
function of the stage-1 checkpoint and the config, so a resumed stage 2 recomputes exactly
what the interrupted one used.
"""
import dataclasses
import sys
import time

import numpy as np

from sharpdro import config as C
from sharpdro import hparams as H

from .run_folder import write_csv


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
    values["train"].update(epochs=first_epochs(cfg), max_steps=0, until_epoch=0,
                           export_mindir=False)
    values["run_dir"] = str(folder)
    values["name"] = f"{cfg.name or cfg.algorithm.name}-stage1"
    return C.from_dict(values)


def check_options(cfg):
    """Stage 1's source: the reference run (a RunFolder: a finished ERM run of the same data,
    model and seed) or None (trained here; its epochs checked). ValueError in one line."""
    from .checks import same_data_model_seed

    if cfg.data.sampler in C.GROUP_SAMPLERS:
        raise ValueError(f"{cfg.algorithm.name} is label-free and data.sampler "
                         f"{cfg.data.sampler} reads group labels; use permutation or "
                         "replacement")
    if not cfg.algorithm.reference:
        first_epochs(cfg)
        return None
    ref, used = same_data_model_seed(cfg, cfg.algorithm.reference)
    if used.algorithm.name != "erm":
        raise ValueError(f"algorithm.reference {cfg.algorithm.reference} is a "
                         f"{used.algorithm.name} run; stage 1 of {cfg.algorithm.name} must be "
                         "an ERM run")
    return ref


def training_logits(network, data, batch_size):
    """The network's outputs (float64) on every training image, in order, unaugmented: the
    logits, or the features of a network whose head was split off (DFR)."""
    network.set_train(False)
    return network_outputs(network, data.training_set(batch_size))[0]


def network_outputs(network, images):
    """(outputs as float64, labels) of ``network`` over an evaluation set, in order."""
    import mindspore as ms

    out, labels = [], []
    for x, y in images.batches():
        out.append(network(ms.Tensor(x)).asnumpy())
        labels.append(y)
    return np.concatenate(out).astype(np.float64), np.concatenate(labels)


def between_stages(cfg, data, logits, seed):
    """(stage 2's data, the per-image table for inferred_groups.csv, the summary lines):
    the method's inference from the stage-1 model's ``logits``, applied to ``data``."""
    from sharpdro.algorithms import ALGORITHMS

    _, labels, groups = data.arrays.train
    options = H.of_section(cfg.algorithm)
    inferred = ALGORITHMS.get(cfg.algorithm.name).between_stages(logits, labels, seed, options)
    new = data
    if inferred.repeats is not None:
        new = dataclasses.replace(new, repeats=inferred.repeats)
    if inferred.groups is not None:
        new = new.with_training_groups(inferred.groups, inferred.group_names)
    rows = {"index": np.arange(len(labels))}
    if data.arrays.train_files is not None:
        rows["path"] = list(data.arrays.train_files)
    rows["label"] = labels
    lines = list(inferred.lines)
    if len(data.arrays.group_names) > 1:
        rows[data.arrays.group_kind] = [data.arrays.group_names[g] for g in groups]
        lines += recovery_table(inferred.marked, groups, data.arrays.group_names,
                                data.arrays.group_kind, inferred.marked_as)
    rows.update(inferred.columns)
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


def second_stage_data(run, cfg, data, reference):
    """Stage 1 (an ERM run in <run>/stage1, trained or resumed here, or the reference run),
    then stage 2's data from its last checkpoint."""
    from sharpdro.checkpoint import copy_trained_model, create_trained_model

    from .fit import fit

    source, trained = reference, None
    if source is None:
        source = run.folder.stage1()
        cfg1 = stage1_config(cfg, source)
        if not source.is_finished():
            # --overwrite clears it; otherwise resolve_run allowed only a resumable one
            resume = source.checkpoint("last") if (source.has_checkpoint()
                                                   and not run.args.overwrite) else None
            print(f"stage 1: ERM for {cfg1.train.epochs} epoch(s) in {source}")
            fit(run, cfg1, source, data, resume, stage1=True)
            trained = run.network
        else:
            print(f"stage 1: done in {source}")
    print(f"stage 1 model: {source.checkpoint('last')}")
    if trained is not None:  # the weights of last.ckpt, on every rank without reading it
        net = copy_trained_model(cfg.model, data.num_classes, data.in_channels, trained)
    else:
        net = create_trained_model(cfg.model, data.num_classes, data.in_channels,
                                   source.checkpoint("last"))
    start = time.time()
    logits = training_logits(net, data, cfg.train.eval_batch_size)
    new, rows, lines = between_stages(cfg, data, logits, cfg.seed)
    report(lines)
    print(f"between the stages: {time.time() - start:.1f}s (the stage-1 model on "
          f"{len(logits)} training images, and the inference)")
    if run.main_rank:
        run.claim()
        write_inferred(run.folder.file(run.folder.INFERRED), rows)
    print(f"stage 2: {cfg.algorithm.name}, {new.steps_per_epoch} steps/epoch")
    return new


def train_two_stage(run, data, reference, resume_from):
    """Both stages of ``run``'s method; returns the run folder."""
    from .fit import fit

    data = second_stage_data(run, run.cfg, data, reference)
    return fit(run, run.cfg, run.folder, data, resume_from)
