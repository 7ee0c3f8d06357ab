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
from callbacks.entry import (add_checkpoint_args, describe_checkpoint, entry_point, input_contract,
                           owning_run, parse_checkpoint_args)
from callbacks.run_folder import RunFolder
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
    parser.add_argument("--predict", metavar="PATH", help="predict the classes of the images in a "
                        "folder (searched recursively) or a CSV's path column -> "
                        "evals/predictions_<name>_<model>.csv")
    parser.add_argument("--photon-sweep", dest="photon_sweep", action="store_true",
                        help="accuracy on the run's clean test images (or --data) captured at a "
                        "log-spaced ladder of photon counts -> evals/photon_sweep.json/.csv, "
                        "plots/photon_sweep.png")
    parser.add_argument("--photons", default="1000,1", help="with --photon-sweep: HIGH,LOW of the "
                        "ladder (3 levels per decade), or a list of 3+ counts")
    parser.add_argument("--read-noise", dest="read_noise", type=float, default=0.0,
                        help="with --photon-sweep: Gaussian read noise in electrons (std)")
    args, cfg = parse_checkpoint_args(parser, argv)
    source = args.mindir or args.ckpt
    # where the results go: --out, else the run folder(s) of the model(s)
    outputs = ([args.out] if args.out else [RunFolder(r) for r in args.runs[1:]]
               + [args.folder or source])
    with entry_point("eval.py", *outputs):
        return evaluate(parser, args, cfg)


def evaluate(parser, args, cfg):
    try:
        set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)
    except ValueError as err:
        sys.exit(f"error: {err}")

    from callbacks.evaluation import evaluate_by_severity, format_table, markdown_table
    from datasets import build_data
    from datasets.readers import DatasetNotFoundError
    from sharpdro.atomic import atomic_path

    source = args.mindir or args.ckpt
    if args.predict:
        return predict_files(args, cfg, source)
    if args.photon_sweep:
        return photon_sweeps(parser, args, cfg)
    print(f"evaluating {source if args.mindir else describe_checkpoint(source)}", flush=True)
    if args.benchmark:
        return benchmark(args, cfg, source)
    if args.baseline:
        parser.error("--baseline goes with --benchmark")
    try:
        if args.data:
            info = input_contract(args, cfg)
            sets, kind, split = other_data(args, cfg, info)
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


def other_data(args, cfg, info):
    """eval.py --data: ({group name: EvalSet}, kind, output split name) with the run's
    preprocessing (``info``, the input contract); one set "all" where the data has no groups."""
    from datasets.folders import read_eval_data

    split, names = read_eval_data(args.data, info["class_names"], info["image_size"],
                                  info["channels"], cfg.data.cache_dir, cfg.data.columns,
                                  cfg.data.skip_unreadable)
    groups = [("all", slice(None))] if names is None else [
        (name, split.groups == g) for g, name in enumerate(names)]
    make_set = contract_set(info, cfg.train.eval_batch_size)
    sets = {name: make_set(split.images[idx], split.labels[idx]) for name, idx in groups}
    print(f"{args.data}: {len(split)} images, {len(sets)} group(s)", flush=True)
    name = os.path.splitext(os.path.basename(os.path.normpath(args.data)))[0]
    return sets, "group", f"data_{name}"


def contract_set(info, batch_size):
    """make_set(images, labels) -> an evaluation set with the model's normalisation."""
    from datasets.pipeline import EvalSet

    return lambda images, labels: EvalSet(images, labels, info["mean"], info["std"], batch_size)


def predict_files(args, cfg, source):
    """eval.py --predict: class probabilities of new images -> evals/predictions_*.csv."""
    import numpy as np

    from callbacks.deploy_eval import predict_probabilities, write_predictions
    from datasets.folders import decode_all, list_images

    print(f"predicting with {source if args.mindir else describe_checkpoint(source)}", flush=True)
    try:
        info = input_contract(args, cfg)
        size, channels = info["image_size"], info["channels"]
        paths, names = list_images(args.predict, cfg.data.columns)
        predict = predictor(args, cfg, len(info["class_names"]), (channels, size, size))
        images, kept, _ = decode_all(paths, size, channels, cfg.data.cache_dir,
                                     skip_unreadable=True, desc="decoding")
    except ValueError as err:
        sys.exit(f"error: {err}")
    if not kept.any():
        sys.exit(f"error: none of the {len(paths)} image(s) in {args.predict} could be read")
    data = contract_set(info, cfg.train.eval_batch_size)(images, np.zeros(len(images), np.int32))
    probabilities = predict_probabilities(predict, data)
    name = os.path.splitext(os.path.basename(os.path.normpath(args.predict)))[0]
    model = os.path.splitext(os.path.basename(source))[0]
    out = (args.out + ".csv" if args.out else
           os.path.join(os.path.dirname(output_prefix(args, source)), f"predictions_{name}_{model}.csv"))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_predictions(out, [n for n, k in zip(names, kept) if k], probabilities, info["class_names"])
    print(f"{int(kept.sum())} image(s) predicted, {int((~kept).sum())} unreadable; written: {out}")
    return out


def photon_sweeps(parser, args, cfg):
    """eval.py --photon-sweep, for one run or several (compared on one plot)."""
    from callbacks.entry import parse_checkpoint_args
    from callbacks.deploy_eval import format_photon_sweep, photon_sweep, write_photon_sweep
    from callbacks.plots import plot_photon_sweep
    from datasets.build import clean_test
    from datasets.folders import read_eval_data
    from datasets.photons import capture, photon_ladder

    try:
        values = [float(v) for v in args.photons.split(",")]
        ladder = photon_ladder(*values) if len(values) == 2 else sorted(values, reverse=True)
        if len(ladder) < 3 or min(ladder) <= 0:
            raise ValueError
    except (TypeError, ValueError):
        parser.error("--photons takes HIGH,LOW (e.g. 1000,1) or a list of 3 or more positive counts")
    curves, folders = {}, []
    for i, run in enumerate(args.runs or [None]):
        run_args, run_cfg = args, cfg
        if i > 0:  # another run: its own config and checkpoint
            run_args, run_cfg = parse_checkpoint_args(parser, ["--run", run, "--photon-sweep"])
        source = run_args.mindir or run_args.ckpt
        print(f"photon sweep of {source if run_args.mindir else describe_checkpoint(source)}", flush=True)
        try:
            info = input_contract(run_args, run_cfg)
            size, channels = info["image_size"], info["channels"]
            if args.data:
                split, _ = read_eval_data(args.data, info["class_names"], size, channels,
                                          run_cfg.data.cache_dir, run_cfg.data.columns,
                                          run_cfg.data.skip_unreadable)
                images, labels = split.images, split.labels
            else:
                images, labels = clean_test(run_cfg)
            predict = predictor(run_args, run_cfg, len(info["class_names"]), (channels, size, size))
        except ValueError as err:
            sys.exit(f"error: {err}")
        result = photon_sweep(predict, contract_set(info, run_cfg.train.eval_batch_size),
                              images, labels, ladder, capture, args.read_noise, run_cfg.seed)
        print(format_photon_sweep(result))
        folder = run_args.folder or owning_run(source)
        base = (os.path.join(folder.path, folder.EVALS, "photon_sweep") if folder is not None
                else os.path.splitext(source)[0] + "_photon_sweep")
        os.makedirs(os.path.dirname(base), exist_ok=True)
        write_photon_sweep(base, result, source)
        print(f"written: {base}.json, {base}.csv")
        curves[str(folder or source)] = result
        folders.append(folder)
    for folder in {str(f): f for f in folders if f is not None}.values():  # each run: all curves
        print(f"plot: {plot_photon_sweep(curves, folder.plot('photon_sweep'))}")
    return curves


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
    from callbacks.benchmark_report import (corruption_errors, evaluate_benchmark, format_benchmark,
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
