"""Test accuracy per severity: python eval.py --run runs/<name> | --config <yaml> --ckpt <file>

Prints a table (accuracy at every severity, mean, worst) and writes it as JSON and
Markdown next to the checkpoint (or to --out).
"""
import argparse
import json
import os
import sys

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from sharpdro import config as C
from sharpdro.runtime import set_context


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", help="run folder (uses its config.yaml and checkpoints/last.ckpt)")
    parser.add_argument("--config", help="YAML config (with --ckpt)")
    parser.add_argument("--ckpt", help="checkpoint file")
    parser.add_argument("--out", help="output prefix for .json/.md (default: beside the checkpoint)")
    args, rest = parser.parse_known_args(argv)
    if args.run:
        args.config = args.config or os.path.join(args.run, "config.yaml")
        args.ckpt = args.ckpt or os.path.join(args.run, "checkpoints", "last.ckpt")
    if not args.config or not args.ckpt:
        parser.error("give --run, or --config and --ckpt")
    if not os.path.isfile(args.ckpt):
        sys.exit(f"checkpoint {args.ckpt} does not exist")
    cfg = C.load_config(args.config, rest)
    set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)

    from mindspore.train import Accuracy, Loss, Model

    from callbacks.evaluation import evaluate_by_severity, format_table
    from datasets import build_data
    from sharpdro.algorithms import EvalCell
    from sharpdro.checkpoint import load_network_weights
    from sharpdro.models import create_model_from_config

    data = build_data(cfg)
    net = create_model_from_config(cfg.model, data.num_classes, data.in_channels)
    try:
        load_network_weights(net, args.ckpt)
    except ValueError as err:
        sys.exit(str(err))
    model = Model(net, eval_network=EvalCell(net), metrics={"acc": Accuracy(), "loss": Loss()},
                  eval_indexes=[0, 1, 2])
    result = evaluate_by_severity(model, data.test)
    table = format_table(result)
    print(table)
    out = args.out or os.path.splitext(args.ckpt)[0] + "_test"
    with open(out + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(out + ".md", "w") as f:
        f.write("| " + " | ".join(["severity"] + [str(s) for s in result["acc"]] + ["mean", "worst"])
                + " |\n|" + "---|" * (len(result["acc"]) + 3) + "\n| accuracy (%) | "
                + " | ".join(f"{100 * a:.2f}" for a in list(result["acc"].values())
                             + [result["mean_acc"], result["worst_acc"]]) + " |\n")
    print(f"written: {out}.json, {out}.md")
    return result


if __name__ == "__main__":
    main()
