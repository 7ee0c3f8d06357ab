"""Test accuracy per severity.

    python eval.py --run runs/<name>                 (its best, else last, checkpoint)
    python eval.py --config <yaml> --ckpt <file>
    python eval.py --config <yaml> --mindir <file>   (an exported model)

Prints which model it evaluates and a table (accuracy at every severity, mean, worst), and
writes the table as JSON and Markdown to the run folder's evals/test_<model>.json/.md (a
model outside a run folder: beside the file; or --out PREFIX).

    python eval.py --run runs/<name> --benchmark <folder> [--baseline <results.json>]

evaluates instead on an official corrupted test set: CIFAR-10-C / CIFAR-100-C
(<corruption>.npy + labels.npy) or Tiny-ImageNet-C / ImageNet-C
(<corruption>/<severity>/<class>/*.JPEG). Prints accuracy for every corruption x severity,
the mean per corruption and overall, the unnormalised mCE, and with --baseline (another
model's results .json from this mode) the normalised CE and mCE; writes
evals/benchmark_<folder name>_<model>.json/.md/.csv. Missing corruptions are reported.
"""
import argparse
import json
import os
import sys

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from callbacks.cli import add_checkpoint_args, describe_checkpoint, owning_run, parse_checkpoint_args
from sharpdro.runtime import set_context


def output_prefix(args, source, split="test"):
    if args.out:
        return args.out
    stem = os.path.splitext(os.path.basename(source))[0]
    folder = args.folder or owning_run(source)
    if folder is None:
        return f"{os.path.splitext(source)[0]}_{split}"
    return folder.eval_base(stem, split)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_checkpoint_args(parser, mindir=True)
    parser.add_argument("--out", help="output prefix for .json/.md (default: the run folder's "
                                      "evals/test_<model>)")
    parser.add_argument("--benchmark", help="folder of an official corrupted test set "
                                            "(CIFAR-10-C or ImageNet-C layout)")
    parser.add_argument("--baseline", help="with --benchmark: a results .json of another model "
                                           "for the normalised corruption error")
    args, cfg = parse_checkpoint_args(parser, argv)
    set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)

    from callbacks.evaluation import evaluate_by_severity, format_table, markdown_table
    from datasets import build_data
    from datasets.readers import DatasetNotFoundError
    from sharpdro.atomic import atomic_path

    source = args.mindir or args.ckpt
    print(f"evaluating {source if args.mindir else describe_checkpoint(source)}", flush=True)
    if args.benchmark:
        return benchmark(args, cfg, source)
    if args.baseline:
        parser.error("--baseline goes with --benchmark")
    try:
        data = build_data(cfg)
        image_shape = (data.in_channels, data.image_size, data.image_size)
        predict = predictor(args, cfg, data.num_classes, image_shape)
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


def predictor(args, cfg, num_classes, image_shape):
    from callbacks.evaluation import network_predictor
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.deploy import mindir_predictor

    if args.mindir:
        return mindir_predictor(args.mindir, image_shape)
    # a checkpoint of another model: the error names the parameters
    return network_predictor(create_trained_model(cfg.model, num_classes, image_shape[0], args.ckpt))


def benchmark(args, cfg, source):
    """eval.py --benchmark: accuracy on an official corrupted test set (module docstring)."""
    from callbacks.corrupted import (corruption_errors, evaluate_benchmark, format_benchmark,
                                     load_results, write_benchmark)
    from datasets import dataset_info
    from datasets.benchmark import open_benchmark
    from datasets.readers import DatasetNotFoundError

    name = os.path.basename(os.path.normpath(args.benchmark))
    try:
        baseline = load_results(args.baseline) if args.baseline else None
        bench = open_benchmark(args.benchmark)
        num_classes, channels, size, mean, std = dataset_info(cfg)
        predict = predictor(args, cfg, num_classes, (channels, size, size))
        print(f"{name}: {bench.layout} layout, {len(bench.corruptions)} corruption(s); "
              f"accuracy (%) at severities 1-5:", flush=True)
        acc = evaluate_benchmark(predict, bench, size, channels, num_classes, mean, std,
                                 cfg.train.eval_batch_size)
    except (ValueError, DatasetNotFoundError) as err:
        sys.exit(f"error: {err}")
    summary = corruption_errors(acc, baseline)
    print(format_benchmark(summary))
    out = output_prefix(args, source, f"benchmark_{name}")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_benchmark(out, summary, source, args.benchmark)
    print(f"written: {out}.json, {out}.md, {out}.csv")
    return summary


if __name__ == "__main__":
    main()
