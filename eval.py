"""Test accuracy per severity.

    python eval.py --run runs/<name>                 (its best, else last, checkpoint)
    python eval.py --config <yaml> --ckpt <file>
    python eval.py --config <yaml> --mindir <file>   (an exported model)

Prints a table (accuracy at every severity, mean, worst) and writes it as JSON and
Markdown next to the checkpoint or MindIR (or to --out).
"""
import argparse
import json
import os
import sys

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from sharpdro.cli import add_checkpoint_args, parse_checkpoint_args
from sharpdro.runtime import set_context


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_checkpoint_args(parser, mindir=True)
    parser.add_argument("--out", help="output prefix for .json/.md (default: beside the model file)")
    args, cfg = parse_checkpoint_args(parser, argv)
    set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)

    from callbacks.evaluation import evaluate_by_severity, format_table, markdown_table, network_predictor
    from datasets import build_data
    from datasets.readers import DatasetNotFoundError
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.deploy import mindir_predictor

    try:
        data = build_data(cfg)
        image_shape = (data.in_channels, data.image_size, data.image_size)
        if args.mindir:
            predict = mindir_predictor(args.mindir, image_shape)
        else:  # a checkpoint of another model: the error names the parameters
            predict = network_predictor(create_trained_model(cfg.model, data.num_classes,
                                                             data.in_channels, args.ckpt))
    except (ValueError, DatasetNotFoundError) as err:
        sys.exit(f"error: {err}")
    result, _ = evaluate_by_severity(predict, data.test)
    print(format_table(result))
    source = args.mindir or args.ckpt
    out = args.out or os.path.splitext(source)[0] + "_test"
    with open(out + ".json", "w") as f:
        json.dump({"source": source, **result}, f, indent=2)
    with open(out + ".md", "w") as f:
        f.write(f"Test accuracy by severity ({source})\n\n" + markdown_table(result))
    print(f"written: {out}.json, {out}.md")
    return result


if __name__ == "__main__":
    main()
