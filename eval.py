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

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
from callbacks.accuracy import evaluate_accuracy
from callbacks.benchmark_report import run_benchmark
from callbacks.entry import (add_checkpoint_args, describe_model, entry_point, eval_outputs,
                           parse_checkpoint_args, set_device, stopped_cleanly)
from callbacks.photon_sweep import sweep_runs
from callbacks.predict import predict_files


def build_parser():
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
    parser.add_argument("--predict", metavar="PATH", help="predict the classes of an image, the "
                        "images in a folder (searched recursively) or a CSV's path column -> "
                        "evals/predictions_<name>_<model>.csv")
    parser.add_argument("--photon-sweep", dest="photon_sweep", action="store_true",
                        help="accuracy on the run's clean test images (or --data) captured at a "
                        "log-spaced ladder of photon counts -> evals/photon_sweep.json/.csv, "
                        "plots/photon_sweep.png")
    parser.add_argument("--photons", default="1000,1", help="with --photon-sweep: HIGH,LOW of the "
                        "ladder (3 levels per decade), or a list of 3+ counts")
    parser.add_argument("--read-noise", dest="read_noise", type=float, default=0.0,
                        help="with --photon-sweep: Gaussian read noise in electrons (std)")
    return parser


def main(argv=None):
    parser = build_parser()
    args, cfg = parse_checkpoint_args(parser, argv)
    with entry_point("eval.py", *eval_outputs(args)):
        return evaluate(parser, args, cfg)


def evaluate(parser, args, cfg):
    set_device(cfg, cfg.mode, seed=cfg.seed)
    if args.predict:
        return predict_files(args, cfg)
    if args.photon_sweep:
        return sweep_runs(parser, args, cfg)
    print(f"evaluating {describe_model(args)}", flush=True)
    if args.benchmark:
        return run_benchmark(args, cfg)
    if args.baseline:
        parser.error("--baseline goes with --benchmark")
    return evaluate_accuracy(args, cfg)


if __name__ == "__main__":
    with stopped_cleanly("eval.py"):  # Ctrl-C while the config is read, too
        main()
