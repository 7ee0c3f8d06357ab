"""Test accuracy per severity or group.

    python eval.py --run runs/<name>                 (its best, else last, checkpoint)
    python eval.py --config <yaml> --ckpt <file>
    python eval.py --config <yaml> --mindir <file>   (an exported model)

Prints which model it evaluates and a table (accuracy at every severity or group, mean,
worst), and writes the table as JSON and Markdown to the run folder's
evals/test_<model>.json/.md (a model outside a run folder: beside the file; or --out PREFIX).

    python eval.py --run runs/<name> --data <folder or CSV>

evaluates on other images with the run's preprocessing (size, channels, mean/std): a folder
(its test/ split if it has one, else the folder itself: <class>/* or <group>/<class>/*) or a
metadata CSV (its test rows if it has a split column, else every row); per group where the
data has groups. Classes are matched by name. Writes evals/data_<name>_<model>.json/.md.

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

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
from callbacks.cli import (add_checkpoint_args, describe_checkpoint, input_contract, owning_run,
                           parse_checkpoint_args)
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
    parser.add_argument("--data", help="a folder or metadata CSV of other images to evaluate on "
                                       "(with the run's preprocessing; per group where it has groups)")
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
        if args.data:
            sets, kind, split = other_data(args, cfg)
            info = input_contract(args, cfg)
            image_shape = (info["channels"], info["image_size"], info["image_size"])
            predict = predictor(args, cfg, len(info["class_names"]), image_shape)
        else:
            data = build_data(cfg)
            sets, kind, split = data.test, data.arrays.group_kind, "test"
            image_shape = (data.in_channels, data.image_size, data.image_size)
            predict = predictor(args, cfg, data.num_classes, image_shape)
    except (ValueError, DatasetNotFoundError) as err:
        sys.exit(f"error: {err}")
    result, _ = evaluate_by_severity(predict, sets, kind=kind)
    print(format_table(result))
    out = output_prefix(args, source, split)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    what = f"Accuracy on {args.data}" if args.data else "Test accuracy"
    with atomic_path(out + ".json") as tmp, open(tmp, "w") as f:
        json.dump({"source": source, "data": args.data or "test", **result}, f, indent=2)
    with atomic_path(out + ".md") as tmp, open(tmp, "w") as f:
        f.write(f"{what} by {kind} ({source})\n\n" + markdown_table(result))
    print(f"written: {out}.json, {out}.md")
    return result


def other_data(args, cfg):
    """eval.py --data: ({group name: EvalSet}, kind, output split name) with the run's
    preprocessing; one set "all" where the data has no groups."""
    from datasets.folders import read_eval_data
    from datasets.pipeline import EvalSet

    info = input_contract(args, cfg)
    split, names = read_eval_data(args.data, info["class_names"], info["image_size"],
                                  info["channels"], cfg.data.cache_dir, cfg.data.columns,
                                  cfg.data.skip_unreadable)
    groups = [("all", slice(None))] if names is None else [
        (name, split.groups == g) for g, name in enumerate(names)]
    sets = {name: EvalSet(split.images[idx], split.labels[idx], info["mean"], info["std"],
                          cfg.train.eval_batch_size) for name, idx in groups}
    print(f"{args.data}: {len(split)} images, {len(sets)} group(s)", flush=True)
    name = os.path.splitext(os.path.basename(os.path.normpath(args.data)))[0]
    return sets, "group", f"data_{name}"


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
    from datasets.benchmark import open_benchmark
    from datasets.readers import DatasetNotFoundError

    name = os.path.basename(os.path.normpath(args.benchmark))
    try:
        baseline = load_results(args.baseline) if args.baseline else None
        bench = open_benchmark(args.benchmark)
        info = input_contract(args, cfg)
        num_classes, channels, size = len(info["class_names"]), info["channels"], info["image_size"]
        mean, std = info["mean"], info["std"]
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
