"""eval.py --predict: class probabilities of new images, as a CSV of the top classes."""
import csv
import os
import sys

import numpy as np
from scipy.special import softmax

from sharpdro.atomic import atomic_path

from .entry import (contract_predictor, contract_set, describe_model, input_contract,
                    make_parent, model_source, output_prefix)

TOP = 5


def predict_probabilities(predict, data, desc="predicting"):
    """Class probabilities (N x K) of an evaluation set (``data.batches()`` of normalised
    images), with a progress bar on long sets."""
    from tqdm import tqdm

    batches = data.num_batches()
    out = [softmax(np.asarray(predict(x), np.float64), axis=1)
           for x, _ in tqdm(data.batches(), total=batches, desc=desc,
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


def predictions_path(args):
    """--out PREFIX.csv, else evals/predictions_<images>_<model>.csv beside eval.py's results."""
    if args.out:
        return args.out + ".csv"
    source = model_source(args)
    name = os.path.splitext(os.path.basename(os.path.normpath(args.predict)))[0]
    model = os.path.splitext(os.path.basename(source))[0]
    return os.path.join(os.path.dirname(output_prefix(args, source)),
                        f"predictions_{name}_{model}.csv")


def images_to_predict(path, columns=None):
    """eval.py --predict PATH -> (full paths, names as shown): one image file, or the images
    of a folder or a CSV (datasets.folders.list_images); ValueError for any other file."""
    import csv

    from datasets.folders import list_images
    from datasets.images import EXTENSIONS, is_image

    if os.path.isfile(path) and is_image(path):
        return [os.path.abspath(path)], [os.path.basename(path)]
    neither = ValueError(f"{path}: not an image ({', '.join(EXTENSIONS)}), a folder of images "
                         "or a CSV with a path column")
    if os.path.isfile(path) and not looks_like_text(path):
        raise neither  # a binary file: the CSV reader's complaint would mislead
    try:
        return list_images(path, columns)
    except (UnicodeDecodeError, csv.Error):  # not a CSV
        raise neither from None


def looks_like_text(path, size=4096):
    """Whether the file's first bytes are UTF-8 text without NUL bytes."""
    with open(path, "rb") as f:
        head = f.read(size)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:  # a character cut at the end of the chunk is text
        if err.start < len(head) - 3:
            return False
    return b"\0" not in head


def predict_files(args, cfg):
    """eval.py --predict: class probabilities of new images -> evals/predictions_*.csv."""
    from datasets.folders import decode_all

    print(f"predicting with {describe_model(args)}", flush=True)
    try:
        info = input_contract(args, cfg)
        paths, names = images_to_predict(args.predict, cfg.data.columns)
        predict = contract_predictor(args, cfg, info)
        images, kept, _ = decode_all(paths, info["image_size"], info["channels"],
                                     cfg.data.cache_dir, skip_unreadable=True, desc="decoding")
    except ValueError as err:
        sys.exit(f"error: {err}")
    if not kept.any():
        sys.exit(f"error: none of the {len(paths)} image(s) in {args.predict} could be read")
    data = contract_set(info, cfg.train.eval_batch_size)(images, np.zeros(len(images), np.int32))
    probabilities = predict_probabilities(predict, data)
    out = make_parent(predictions_path(args))
    write_predictions(out, [n for n, k in zip(names, kept) if k], probabilities, info["class_names"])
    print(f"{int(kept.sum())} image(s) predicted, {int((~kept).sum())} unreadable; written: {out}")
    return out
