"""What eval.py does for deployment: predictions for a folder of new images, and accuracy
against a ladder of photon budgets ("how dark can it get?")."""
import csv
import json

import numpy as np

from sharpdro.atomic import atomic_path

TOP = 5


def softmax(logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def predict_probabilities(predict, data, desc="predicting"):
    """Class probabilities (N x K) of an evaluation set (``data.batches()`` of normalised
    images), with a progress bar on long sets."""
    from tqdm import tqdm

    batches = data.num_batches()
    out = [softmax(predict(x)) for x, _ in tqdm(data.batches(), total=batches, desc=desc,
                                                 disable=None if batches > 5 else True, leave=False)]
    return np.concatenate(out)


def write_predictions(path, files, probabilities, class_names):
    """CSV: path, predicted, probability, then top1, p1 ... top5, p5 (best first)."""
    k = min(TOP, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "predicted", "probability"]
                        + [c for i in range(1, k + 1) for c in (f"top{i}", f"p{i}")])
        for name, p, best in zip(files, probabilities, order):
            writer.writerow([name, class_names[best[0]], f"{p[best[0]]:.6f}"]
                            + [v for j in best for v in (class_names[j], f"{p[j]:.6f}")])


def photon_sweep(predict, make_set, images, labels, ladder, capture, read_noise=0.0, seed=0):
    """Accuracy on the clean images and at each photon count of ``ladder``: ``capture(images,
    photons, read_noise, rng)`` simulates the capture (datasets.photons), seeded per level;
    ``make_set(images, labels)`` makes an evaluation set. Returns {"clean": acc, "levels":
    [{"photons", "acc"}], "photons_at_90", "photons_at_50"}: the photon count at which
    accuracy falls to 90 % and 50 % of clean (interpolated on the log axis; None if never)."""
    labels = np.asarray(labels)

    def accuracy(x, desc):
        return float((predict_probabilities(predict, make_set(x, labels), desc).argmax(1)
                      == labels).mean())

    clean = accuracy(images, "clean")
    levels = []
    for i, photons in enumerate(ladder):
        captured = capture(images, photons, read_noise, np.random.default_rng([seed, 40, i]))
        levels.append({"photons": photons, "acc": accuracy(captured, f"{photons:g} photons")})
    return {"clean": clean, "levels": levels, "read_noise": read_noise, "seed": seed,
            "photons_at_90": threshold(levels, 0.9 * clean),
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
    with atomic_path(base + ".json") as tmp, open(tmp, "w") as f:
        json.dump({"source": source, **result}, f, indent=2)
    with atomic_path(base + ".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["photons", "accuracy"])
        writer.writerow(["clean", f"{result['clean']:.6f}"])
        for level in result["levels"]:
            writer.writerow([f"{level['photons']:g}", f"{level['acc']:.6f}"])


def format_photon_sweep(result):
    head = "photons  | clean " + " ".join(f"{lv['photons']:>6.3g}" for lv in result["levels"])
    row = f"accuracy | {100 * result['clean']:5.1f} " + " ".join(
        f"{100 * lv['acc']:6.1f}" for lv in result["levels"])
    at = ", ".join(f"{p} % of clean at {result[f'photons_at_{p}']:.3g} photons"
                   if result[f"photons_at_{p}"] is not None else f"{p} % of clean: not reached"
                   for p in (90, 50))
    return f"{head}\n{row}\n{at}"
