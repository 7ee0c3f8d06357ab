"""Test accuracy per severity: python eval.py --run runs/<name> | --config <yaml> --ckpt <file>

Prints a table (accuracy at every severity, mean, worst) and writes it as JSON and
Markdown next to the checkpoint (or to --out).
"""
import argparse
import json
import os
import sys

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from sharpdro.cli import add_checkpoint_args, parse_checkpoint_args
from sharpdro.runtime import set_context


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    add_checkpoint_args(parser)
    parser.add_argument("--out", help="output prefix for .json/.md (default: beside the checkpoint)")
    args, cfg = parse_checkpoint_args(parser, argv)
    set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)

    from mindspore.train import Accuracy, Loss, Model

    from callbacks.evaluation import evaluate_by_severity, format_table
    from datasets import build_data
    from sharpdro.algorithms import EvalCell
    from sharpdro.checkpoint import create_trained_model

    data = build_data(cfg)
    try:
        net = create_trained_model(cfg.model, data.num_classes, data.in_channels, args.ckpt)
    except ValueError as err:  # a checkpoint of another model: name the parameters
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
