"""Post-hoc methods (dfr; sharpdro/algorithms/protocol.py) as train.py runs them:
``--algorithm.name dfr --algorithm.reference RUN`` refits the head of RUN's selected
checkpoint on its network's features and writes a run folder like any run's: config.yaml,
data.json, checkpoints/best.ckpt and last.ckpt (the reference's weights with the new head),
eval.jsonl (validation and test per group), <method>.json (what the refit chose), and
model.mindir. The data must have groups in its validation set."""
import os
import sys
import time

import numpy as np

from sharpdro import hparams as H
from sharpdro.atomic import file_sha256

from .checks import UserError, same_data_model_seed


def check_options(cfg):
    """The reference run (a RunFolder); ValueError in one line."""
    name = cfg.algorithm.name
    if not cfg.algorithm.reference:
        raise ValueError(f"{name} refits the head of a finished run: give it with "
                         "--algorithm.reference RUN_DIR")
    if cfg.data.groups == "none":
        raise ValueError(f"{name} needs groups in the validation set (data.groups severity "
                         "or given), and data.groups is none")
    return same_data_model_seed(cfg, cfg.algorithm.reference)[0]


def check_data(data):
    """ValueError unless every group is in the training, validation and test sets with at
    least 2 validation images (one per half)."""
    names = [str(n) for n in data.val]
    train_names = [str(n) for n in data.group_names]
    if names != [str(n) for n in data.test] or set(names) != set(train_names):
        raise ValueError(f"the validation groups {names} are not the training groups "
                         f"{train_names}")
    thin = [f"{n} ({len(s)})" for n, s in data.val.items() if len(s) < 2]
    if thin:
        raise ValueError(f"DFR needs at least 2 validation images in every group (one per "
                         f"half); {', '.join(thin)} have fewer")
    return names, train_names


def features(network, sets):
    """(features, labels, group index) over the sets {group: EvalSet}, in order."""
    from .stages import network_outputs

    parts = [network_outputs(network, data) for data in sets.values()]
    return (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]),
            np.concatenate([np.full(len(y), g) for g, (_, y) in enumerate(parts)]))


def fit_head(run, data, algorithm, ckpt):
    """(HeadFit, the reference head's worst group on the selection half)."""
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.dfr import group_accuracies, split_halves
    from sharpdro.finetune import split_head
    from sharpdro.models import model_head

    from .stages import training_logits

    cfg = run.cfg
    names, train_names = check_data(data)
    head = model_head(cfg.model.name)
    if head is None:
        raise ValueError(f"model {cfg.model.name} registers no head to refit")
    net = create_trained_model(cfg.model, data.num_classes, data.in_channels, ckpt)
    own = split_head(net, head)
    print(f"{cfg.algorithm.name}: embedding the training and validation images with {ckpt}",
          flush=True)
    train_x = training_logits(net, data, cfg.train.eval_batch_size)  # the head's input here
    _, train_y, train_g = data.arrays.train
    order = {n: i for i, n in enumerate(names)}  # training groups in the validation order
    train_g = np.array([order[train_names[g]] for g in train_g])
    val_x, val_y, val_g = features(net, data.val)
    fit_idx, sel_idx = split_halves(val_g, cfg.seed)
    pool = (np.concatenate([train_x, val_x[fit_idx]]), np.concatenate([train_y, val_y[fit_idx]]),
            np.concatenate([train_g, val_g[fit_idx]]))
    select = (val_x[sel_idx], val_y[sel_idx], val_g[sel_idx])
    options = H.of_section(cfg.algorithm)
    result = algorithm.refit(pool, select, data.num_classes, cfg.seed, options)
    logits = select[0] @ own.weight.asnumpy().astype(np.float64).T + own.bias.asnumpy()
    before = min(group_accuracies(logits, select[1], select[2]).values())
    result.record["pool"] = {"training_images": len(train_y), "validation_fit_half":
                             len(fit_idx), "validation_selection_half": len(sel_idx)}
    return result, before


def write_run(run, data, ckpt, result, before):
    """The run folder of the refit: checkpoints, evaluation, record, export, done."""
    import mindspore as ms

    from sharpdro.checkpoint import create_trained_model, read_run_state, save_train_state
    from sharpdro.models import model_head

    from .evaluation import evaluate_by_severity, format_table, network_predictor
    from .fit import exporter

    cfg, folder = run.cfg, run.folder
    model = create_trained_model(cfg.model, data.num_classes, data.in_channels, ckpt)
    head = model_head(cfg.model.name)
    values = {p.name: p for p in model.get_parameters()}
    values[f"{head}.weight"].set_data(ms.Tensor(result.weight.astype(np.float32)))
    values[f"{head}.bias"].set_data(ms.Tensor(result.bias.astype(np.float32)))
    saved = read_run_state(ckpt)
    run.claim()
    folder.unmark_done()
    folder.restart_logs()  # a rerun of an unfinished refit starts its logs again
    folder.write_json(folder.DATA, data.info())
    with open(folder.file(folder.CONFIG)) as f:
        state = {"epoch": saved["epoch"], "step": saved["step"], "seed": cfg.seed,
                 "config": f.read(), "post_hoc": cfg.algorithm.name}
    for name in ("best", "last"):
        save_train_state(model, folder.checkpoint(name), state)
    for split, sets in (("val", data.val), ("test", data.test)):
        evaluated, _ = evaluate_by_severity(network_predictor(model), sets,
                                            kind=data.arrays.group_kind)
        folder.append_jsonl(folder.EVAL_LOG, {"epoch": saved["epoch"], "step": saved["step"],
                                              "split": split, **evaluated})
        print(f"[{split}, {cfg.algorithm.name} head]\n{format_table(evaluated)}")
    folder.write_json(f"{cfg.algorithm.name}.json", {
        "source_run": os.path.abspath(cfg.algorithm.reference),
        "source_checkpoint": os.path.abspath(ckpt), "source_sha256": file_sha256(ckpt),
        "seed": cfg.seed,
        "selection_worst_acc_own_head": before, **result.record})
    export = exporter(cfg, folder, data)
    if export is not None:
        export(folder.checkpoint("best"))


def train_post_hoc(run, data, algorithm, reference):
    """Refit ``reference``'s head by ``algorithm`` into the run folder; returns its path.
    Ctrl-C or SIGTERM stops it with a message (exit 130); the folder is then unfinished."""
    from .fit import INTERRUPTED, python_command
    from .interrupt import Interrupt

    try:
        with Interrupt():
            return refit_into(run, data, algorithm, reference)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the {run.cfg.algorithm.name} refit in {run.folder} is not "
              f"finished. Start it again with:\n  {python_command()} train.py "
              f"{' '.join(run.argv())} --overwrite", file=sys.stderr)
        sys.exit(INTERRUPTED)


def refit_into(run, data, algorithm, reference):
    ckpt = reference.model_checkpoint()
    try:
        result, before = fit_head(run, data, algorithm, ckpt)
    except ValueError as err:
        raise UserError(str(err)) from None
    for line in result.lines:
        print(line, flush=True)
    print(f"{run.cfg.algorithm.name}: worst-group accuracy on the selection half "
          f"{100 * before:.2f} % (the reference's head) -> {100 * result.score:.2f} %", flush=True)
    if run.main_rank:
        write_run(run, data, ckpt, result, before)
        run.folder.mark_done(f"{run.cfg.algorithm.name} on {reference} in "
                             f"{time.time() - run.t0:.1f}s\n")
    print(f"done in {time.time() - run.t0:.1f}s; results in {run.folder}")
    return str(run.folder)
