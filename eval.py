"""Test accuracy per severity.

    python eval.py --run runs/<name>                 (its best, else last, checkpoint)
    python eval.py --config <yaml> --ckpt <file>
    python eval.py --config <yaml> --mindir <file>   (an exported model)

Prints which model it evaluates and a table (accuracy at every severity, mean, worst), and
writes the table as JSON and Markdown to the run folder's evals/test_<model>.json/.md (a
model outside a run folder: beside the file; or --out PREFIX).
"""
import argparse
import json
import os
import sys

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from callbacks.cli import add_checkpoint_args, describe_checkpoint, owning_run, parse_checkpoint_args
from sharpdro.runtime import set_context


def output_prefix(args, source):
    if args.out:
        return args.out
    stem = os.path.splitext(os.path.basename(source))[0]
    folder = args.folder or owning_run(source)
    if folder is None:
        return os.path.splitext(source)[0] + "_test"
    return folder.eval_base(stem)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_checkpoint_args(parser, mindir=True)
    parser.add_argument("--out", help="output prefix for .json/.md (default: the run folder's "
                                      "evals/test_<model>)")
    args, cfg = parse_checkpoint_args(parser, argv)
    set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)

    from callbacks.evaluation import evaluate_by_severity, format_table, markdown_table, network_predictor
    from datasets import build_data
    from datasets.readers import DatasetNotFoundError
    from sharpdro.atomic import atomic_path
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.deploy import mindir_predictor

    source = args.mindir or args.ckpt
    print(f"evaluating {source if args.mindir else describe_checkpoint(source)}", flush=True)
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
    out = output_prefix(args, source)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with atomic_path(out + ".json") as tmp, open(tmp, "w") as f:
        json.dump({"source": source, **result}, f, indent=2)
    with atomic_path(out + ".md") as tmp, open(tmp, "w") as f:
        f.write(f"Test accuracy by severity ({source})\n\n" + markdown_table(result))
    print(f"written: {out}.json, {out}.md")
    return result


if __name__ == "__main__":
    main()
