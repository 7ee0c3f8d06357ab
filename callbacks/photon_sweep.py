"""eval.py --photon-sweep: accuracy against a ladder of photon budgets ("how dark can it
get?"), for one run or several compared on one plot."""
import csv
import math
import os
import sys

import numpy as np

from sharpdro.atomic import atomic_path

from .entry import (contract_predictor, contract_set, describe_model, input_contract,
                    model_source, owning_run, parse_checkpoint_args, write_json)
from .predict import predict_probabilities

# the counts swept: NumPy's Poisson sampler takes means up to about 1e18; below 1e-3 photons
# at full scale an image is black (and the ladder has at most 3 x 18 levels)
MIN_PHOTONS, MAX_PHOTONS, MAX_LEVELS = 1e-3, 1e15, 100
LADDER_ERROR = (f"--photons takes HIGH,LOW (e.g. 1000,1) or a list of 3 to {MAX_LEVELS} counts, "
                f"each from {MIN_PHOTONS:g} to {MAX_PHOTONS:g}")


def parse_photons(text):
    """--photons: "HIGH,LOW" -> the log-spaced ladder between them (3 levels per decade), or
    a list of 3 or more counts, highest first; ValueError(LADDER_ERROR + what is wrong)
    otherwise (a count not finite or outside MIN_PHOTONS..MAX_PHOTONS; too many levels)."""
    from datasets.photons import photon_ladder

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"{LADDER_ERROR}; got {text!r}") from None
    bad = [v for v in values if not MIN_PHOTONS <= v <= MAX_PHOTONS]  # NaN and infinities too
    if bad:
        raise ValueError(f"{LADDER_ERROR}; got {bad[0]:g}")
    try:
        ladder = photon_ladder(*values) if len(values) == 2 else sorted(values, reverse=True)
    except ValueError:  # HIGH not above LOW
        raise ValueError(f"{LADDER_ERROR}; got HIGH {values[0]:g} not above LOW "
                         f"{values[1]:g}") from None
    if not 3 <= len(ladder) <= MAX_LEVELS:
        raise ValueError(f"{LADDER_ERROR}; got {len(ladder)} levels")
    return ladder


def check_read_noise(value):
    """--read-noise: a finite number >= 0 (electrons) -> it; ValueError otherwise."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"--read-noise takes a number of electrons >= 0, got {float(value):g}")
    return value


CLEAN, AS_GIVEN = "clean", "as given"  # what the images swept are before any capture


def reference_label(cfg, data=None):
    """The sweep's first column: the clean test images of a photon-limited protocol run;
    the images as the data has them (groups given or none, or ``data``: eval.py --data)."""
    return CLEAN if cfg.data.groups == "severity" and not data else AS_GIVEN


def photon_sweep(predict, make_set, images, labels, ladder, capture, read_noise=0.0, seed=0,
                 reference=CLEAN):
    """Accuracy on the images as they are and at each photon count of ``ladder``:
    ``capture(images, photons, read_noise, rng)`` simulates the capture (datasets.photons),
    seeded per level; ``make_set(images, labels)`` makes an evaluation set; ``reference``
    names the images as they are (reference_label). Returns {"clean": acc (on them, under
    this key whatever they are), "reference", "levels": [{"photons", "acc"}],
    "photons_at_90", "photons_at_50"}: the photon count at which accuracy falls to 90 % and
    50 % of it (interpolated on the log axis; None if never)."""
    check_read_noise(read_noise)
    if not all(MIN_PHOTONS <= p <= MAX_PHOTONS for p in ladder):  # NaN too
        raise ValueError(f"{LADDER_ERROR}; got {list(ladder)}")
    labels = np.asarray(labels)

    def accuracy(x, desc):
        return float((predict_probabilities(predict, make_set(x, labels), desc).argmax(1)
                      == labels).mean())

    clean = accuracy(images, reference)
    levels = []
    for i, photons in enumerate(ladder):
        captured = capture(images, photons, read_noise, np.random.default_rng([seed, 40, i]))
        levels.append({"photons": photons, "acc": accuracy(captured, f"{photons:g} photons")})
    return {"clean": clean, "reference": reference, "levels": levels, "read_noise": read_noise,
            "seed": seed, "photons_at_90": threshold(levels, 0.9 * clean),
            "photons_at_50": threshold(levels, 0.5 * clean)}


def threshold(levels, target):
    """The photon count where accuracy first falls to ``target`` going down the ladder
    (log-linear interpolation between the two levels around it), or None."""
    for upper, lower in zip(levels, levels[1:]):
        if upper["acc"] >= target > lower["acc"]:
            t = (upper["acc"] - target) / (upper["acc"] - lower["acc"])
            return float(np.exp(np.log(upper["photons"]) + t * (np.log(lower["photons"])
                                                                  - np.log(upper["photons"]))))
    if levels and levels[0]["acc"] < target:
        return levels[0]["photons"]
    return None


def write_photon_sweep(base, result, source):
    """<base>.json (everything) and <base>.csv (photons, accuracy)."""
    write_json(base + ".json", {"source": source, **result})
    with atomic_path(base + ".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["photons", "accuracy"])
        writer.writerow([result.get("reference", CLEAN), f"{result['clean']:.6f}"])
        for level in result["levels"]:
            writer.writerow([f"{level['photons']:g}", f"{level['acc']:.6f}"])


def format_photon_sweep(result):
    label = result.get("reference", CLEAN)
    what = label if label == CLEAN else f"the accuracy {label}"
    head = f"photons  | {label} " + " ".join(f"{lv['photons']:>6.3g}" for lv in result["levels"])
    row = f"accuracy | {100 * result['clean']:{len(label)}.1f} " + " ".join(
        f"{100 * lv['acc']:6.1f}" for lv in result["levels"])
    at = ", ".join(f"{p} % of {what} at {result[f'photons_at_{p}']:.3g} photons"
                   if result[f"photons_at_{p}"] is not None else f"{p} % of {what}: not reached"
                   for p in (90, 50))
    return f"{head}\n{row}\n{at}"


def sweep_images(cfg, info, data=None):
    """(uint8 images, labels) to sweep: ``data`` (eval.py --data) read with the run's
    preprocessing, else the run's clean test images."""
    from datasets.build import clean_test

    from .accuracy import read_other_data

    if data:
        split, _ = read_other_data(data, info, cfg)
        return split.images, split.labels
    return clean_test(cfg)


def sweep_run(args, cfg, ladder, data, read_noise):
    """One run's sweep, printed and written to evals/photon_sweep.json/.csv (a model outside
    a run folder: beside it; or --out PREFIX) -> (its RunFolder or None, the model file, the
    result)."""
    from datasets.photons import capture

    source = model_source(args)
    print(f"photon sweep of {describe_model(args)}", flush=True)
    try:
        info = input_contract(args, cfg)
        images, labels = sweep_images(cfg, info, data)
        predict = contract_predictor(args, cfg, info)
    except ValueError as err:
        sys.exit(f"error: {err}")
    result = photon_sweep(predict, contract_set(info, cfg.train.eval_batch_size),
                          images, labels, ladder, capture, read_noise, cfg.seed,
                          reference_label(cfg, data))
    print(format_photon_sweep(result))
    folder = args.folder or owning_run(source)
    base = (os.path.abspath(args.out) if args.out else
            os.path.join(folder.path, folder.EVALS, "photon_sweep") if folder is not None
            else os.path.splitext(source)[0] + "_photon_sweep")
    os.makedirs(os.path.dirname(base), exist_ok=True)
    write_photon_sweep(base, result, source)
    print(f"written: {base}.json, {base}.csv")
    return folder, source, result


def sweep_runs(parser, args, cfg):
    """eval.py --photon-sweep, for one run or several (compared on one plot, written to
    each run folder) -> {run folder or model file: result}."""
    from .plots import plot_photon_sweep

    try:
        ladder = parse_photons(args.photons)
        check_read_noise(args.read_noise)
    except ValueError as err:
        parser.error(str(err))
    if args.out and len(args.runs) > 1:  # eval.py holds only --out's folder then
        parser.error("--out goes with one --run (several runs are written to their folders)")
    curves, folders = {}, []
    for i, run in enumerate(args.runs or [None]):
        run_args, run_cfg = args, cfg
        if i > 0:  # another run: its own config and checkpoint
            run_args, run_cfg = parse_checkpoint_args(parser, ["--run", run, "--photon-sweep"])
        folder, source, result = sweep_run(run_args, run_cfg, ladder, args.data, args.read_noise)
        curves[str(folder or source)] = result
        folders.append(folder)
    if args.out:  # the run folder is not written (nor held)
        print(f"plot: {plot_photon_sweep(curves, os.path.abspath(args.out) + '.png')}")
        return curves
    for folder in {str(f): f for f in folders if f is not None}.values():  # each run: all curves
        print(f"plot: {plot_photon_sweep(curves, folder.plot('photon_sweep'))}")
    return curves
