"""Train SharpDRO or a baseline: python train.py --config configs/quickstart.yaml [--key value ...]

Overrides: --section.key value (or --key value when the key name is unique), see
sharpdro/config.py. Writes a run folder: config.yaml, train_log.csv, group_weights.csv,
eval.jsonl, checkpoints/last.ckpt, done.
"""
import argparse
import logging
import os
import sys
import time

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from sharpdro import config as C
from sharpdro.runtime import set_context


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter,
                                     epilog="config keys:\n" + C.describe())
    parser.add_argument("--config", help="YAML config file (default: built-in defaults)")
    args, rest = parser.parse_known_args(argv)
    return args, rest


def main(argv=None):
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = C.load_config(args.config, rest)
    except C.ConfigError as err:
        sys.exit(f"config error: {err}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import numpy as np
    import mindspore as ms
    import mindspore.dataset as msds
    from mindspore.train import Accuracy, Loss, Model

    from callbacks import EpochCheckpoint, NanGuard, ProgressLogger, SeverityEval
    from datasets import build_data
    from sharpdro.algorithms import ALGORITHMS, EvalCell, create_train_step_from_config
    from sharpdro.models import MODELS, create_model_from_config
    from sharpdro.optim import create_optimizer_from_config, lr_schedule_from_config

    # names are checked before any data is built
    try:
        ALGORITHMS.check(cfg.algorithm.name)
        MODELS.check(cfg.model.name)
    except ValueError as err:
        sys.exit(f"config error: {err}")
    set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)
    np.random.seed(cfg.seed)
    msds.config.set_seed(cfg.seed)

    run_dir = cfg.run_dir or os.path.join(cfg.output_root, C.run_name(cfg))
    os.makedirs(run_dir, exist_ok=True)
    C.save_config(cfg, os.path.join(run_dir, "config.yaml"))
    print(f"run folder: {run_dir}")

    t0 = time.time()
    data = build_data(cfg)
    print(f"data: {cfg.data.dataset}, {cfg.data.corruption}, {sum(data.train_counts)} training "
          f"images, {data.steps_per_epoch} steps/epoch ({time.time() - t0:.1f}s)")
    net = create_model_from_config(cfg.model, data.num_classes, data.in_channels)
    # one schedule: the optimizer steps through it, the progress log prints from it
    lrs = lr_schedule_from_config(cfg.optim, data.steps_per_epoch * cfg.train.epochs)
    optimizer = create_optimizer_from_config(cfg.optim, net.trainable_params(), lrs)
    cell = create_train_step_from_config(cfg.algorithm, net, optimizer, C.num_groups(cfg))
    model = Model(cell, eval_network=EvalCell(net), metrics={"acc": Accuracy(), "loss": Loss()},
                  eval_indexes=[0, 1, 2])
    callbacks = [
        NanGuard(),
        ProgressLogger(cell, lrs, data.steps_per_epoch, cfg.train.epochs, cfg.train.log_every,
                       os.path.join(run_dir, "train_log.csv"),
                       os.path.join(run_dir, "group_weights.csv")),
        EpochCheckpoint(cell, os.path.join(run_dir, "checkpoints"), cfg.seed),
        SeverityEval(model, {"val": data.val, "test": data.test}, every=cfg.train.epochs,
                     path=os.path.join(run_dir, "eval.jsonl")),
    ]
    model.train(cfg.train.epochs, data.train, callbacks=callbacks,
                dataset_sink_mode=cfg.train.sink_mode)
    with open(os.path.join(run_dir, "done"), "w") as f:
        f.write(f"finished in {time.time() - t0:.1f}s\n")
    print(f"done in {time.time() - t0:.1f}s; results in {run_dir}")
    return run_dir


if __name__ == "__main__":
    main()
