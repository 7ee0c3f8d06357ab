"""Train SharpDRO or a baseline.

    python train.py --config configs/quickstart.yaml [--section.key value ...]
    python train.py --resume runs/<name>            continue from its last checkpoint
    python train.py --config ... --overwrite        replace a finished run in the same folder

Overrides: --section.key value (or --key value when the key name is unique), see
sharpdro/config.py. The run folder (runs/<name>/ or --run_dir) holds config.yaml,
train_log.csv, group_weights.csv, eval.jsonl, predictions.npz, checkpoints/{last,best}.ckpt,
plots/, model.mindir (sharpdro_agnostic: selection.csv) and, written last, done.
"""
import argparse
import logging
import os
import shutil
import sys
import time

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from sharpdro import config as C
from sharpdro.runtime import set_context

CONFIG, DONE, CHECKPOINTS = "config.yaml", "done", "checkpoints"
# what a run writes; --overwrite removes exactly these
RUN_FILES = (CONFIG, "train_log.csv", "group_weights.csv", "eval.jsonl", "predictions.npz",
             "selection.csv", CHECKPOINTS, "plots", "model.mindir", DONE)


class UserError(Exception):
    """Bad input: reported in one line, exit status 1, nothing written."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter,
                                     epilog="config keys:\n" + C.describe())
    parser.add_argument("--config", help="YAML config file (default: built-in defaults)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in the run folder")
    return parser.parse_known_args(argv)


def resolve_run(args, rest):
    """-> (config, run folder, checkpoint to resume from or None); checks the folder."""
    try:
        if args.resume:
            if args.config:
                raise UserError("give --resume RUN_DIR or --config, not both (a resumed run "
                                "uses its own config.yaml)")
            config_path = os.path.join(args.resume, CONFIG)
            if not os.path.isfile(config_path):
                raise UserError(f"cannot resume {args.resume}: it has no {CONFIG}")
            cfg = C.load_config(config_path, rest)
            cfg["run_dir"] = args.resume
        else:
            cfg = C.load_config(args.config, rest)
    except C.ConfigError as err:
        raise UserError(f"config error: {err}") from None
    run_dir = cfg.run_dir or os.path.join(cfg.output_root, C.run_name(cfg))
    last = os.path.join(run_dir, CHECKPOINTS, "last.ckpt")
    if args.resume:
        if os.path.exists(os.path.join(run_dir, DONE)):
            raise UserError(f"{run_dir} holds a finished run; nothing to resume")
        if not os.path.isfile(last):
            raise UserError(f"cannot resume {run_dir}: no checkpoint at {last} (a run writes "
                            "one after its first epoch)")
        return cfg, run_dir, last
    if not args.overwrite:
        if os.path.exists(os.path.join(run_dir, DONE)):
            raise UserError(f"{run_dir} already holds a finished run; use --overwrite to "
                            "replace it, or another --name/--run_dir")
        if os.path.isfile(last):
            raise UserError(f"{run_dir} holds an unfinished run; continue it with --resume "
                            f"{run_dir}, or replace it with --overwrite")
    return cfg, run_dir, None


def clear_run(run_dir):
    for name in RUN_FILES:
        path = os.path.join(run_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def main(argv=None):
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return train(args, rest)
    except (UserError, FloatingPointError) as err:  # FloatingPointError: the NaN guard
        sys.exit(f"error: {err}")


def train(args, rest):
    cfg, run_dir, resume_from = resolve_run(args, rest)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import numpy as np
    import yaml
    from mindspore.train import Model

    from callbacks import (Checkpointer, ExportBest, NanGuard, ProgressLogger, RunState,
                           SelectionLogger, SeverityEval, StopAtStep)
    from datasets import build_data
    from datasets.readers import DatasetNotFoundError
    from sharpdro.algorithms import ALGORITHMS, create_train_step_from_config
    from sharpdro.checkpoint import create_trained_model, load_train_state
    from sharpdro.deploy import export_and_verify
    from sharpdro.models import MODELS, create_model_from_config
    from sharpdro.optim import create_optimizer_from_config, lr_schedule_from_config

    try:  # everything that can be wrong with the input, before the run folder is touched
        ALGORITHMS.check(cfg.algorithm.name)
        MODELS.check(cfg.model.name)
        set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)
        np.random.seed(cfg.seed)
        t0 = time.time()
        data = build_data(cfg)
    except (ValueError, DatasetNotFoundError) as err:
        raise UserError(str(err)) from None
    print(f"data: {cfg.data.dataset}, {cfg.data.corruption}, {sum(data.train_counts)} training "
          f"images, {data.steps_per_epoch} steps/epoch ({time.time() - t0:.1f}s)")
    net = create_model_from_config(cfg.model, data.num_classes, data.in_channels)
    # one schedule: the optimizer steps through it, the progress log prints from it
    lrs = lr_schedule_from_config(cfg.optim, data.steps_per_epoch * cfg.train.epochs)
    optimizer = create_optimizer_from_config(cfg.optim, net.trainable_params(), lrs)
    cell = create_train_step_from_config(cfg.algorithm, net, optimizer, C.num_groups(cfg))
    resumed = {}
    if resume_from:
        try:
            resumed = load_train_state(cell, resume_from)
        except ValueError as err:
            raise UserError(str(err)) from None
        if resumed["seed"] != cfg.seed:
            raise UserError(f"checkpoint seed {resumed['seed']} differs from the config's {cfg.seed}")
        if resumed["epoch"] >= cfg.train.epochs:
            raise UserError(f"{resume_from} is already at epoch {resumed['epoch']} of "
                            f"{cfg.train.epochs}; raise --train.epochs to train on")
        print(f"resuming {run_dir} after epoch {resumed['epoch']} (step {resumed['step']})")

    if args.overwrite:
        clear_run(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    C.save_config(cfg, os.path.join(run_dir, CONFIG))
    print(f"run folder: {run_dir}")

    state = RunState(data.steps_per_epoch, cfg.train.epochs, cfg.train.max_steps,
                     resumed.get("best_value"), resumed.get("best_epoch"))
    image_shape = (data.in_channels, data.image_size, data.image_size)

    def export_best(ckpt):
        model_net = create_trained_model(cfg.model, data.num_classes, data.in_channels, ckpt)
        path, diff = export_and_verify(model_net, image_shape, os.path.join(run_dir, "model"))
        print(f"exported {path} from {os.path.basename(ckpt)} (dynamic batch; largest logit "
              f"difference after reload {diff:.1e})")

    checkpoints = os.path.join(run_dir, CHECKPOINTS)
    resume_epoch = resumed.get("epoch")
    callbacks = [
        NanGuard(),
        StopAtStep(state),
        ProgressLogger(cell, lrs, state, cfg.train.log_every, run_dir,
                       resume_step=resumed.get("step")),
        SelectionLogger(state, C.num_groups(cfg), cfg.train.log_every, run_dir,
                        resume_step=resumed.get("step")),
        SeverityEval(net, {"val": data.val, "test": data.test}, state, cfg.train.eval_every,
                     run_dir, cfg.train.best_metric, resume_epoch=resume_epoch),
        Checkpointer(cell, checkpoints, state, cfg.seed,
                     yaml.safe_dump(cfg.to_dict(), sort_keys=False), cfg.train.best_metric),
    ]
    if cfg.train.export_mindir:
        callbacks.append(ExportBest(checkpoints, state, export_best))
    model = Model(cell)
    # one Model.train call per epoch: each epoch's data is rebuilt from (seed, epoch), so a
    # resumed run gets the same batches as an uninterrupted one
    for epoch in range(resume_epoch or 0, cfg.train.epochs):
        model.train(epoch + 1, data.train_epoch(epoch), callbacks=callbacks,
                    dataset_sink_mode=cfg.train.sink_mode, initial_epoch=epoch)
        if state.stopped:
            break
    with open(os.path.join(run_dir, DONE), "w") as f:
        f.write(f"finished in {time.time() - t0:.1f}s; best {cfg.train.best_metric} "
                f"{state.best_value} at epoch {state.best_epoch}\n")
    print(f"done in {time.time() - t0:.1f}s; results in {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
