"""Write a built-in dataset out as the user's own files, for the README's worked example:

    python -m datasets.write_example --out data/fmnist_own [--dataset fashion_mnist]
        [--per_class 600] [--val_per_class 100] [--test_per_class 100] [--seed 0]

writes
    <out>/folder/{train,val,test}/<class>/<n>.png            an image-folder tree (clean)
    <out>/groups/<file>.png + <out>/groups/metadata.csv       images with given groups

The given-groups part is the photon-limited protocol written to files: each training image
is stored at one severity of shot (photon) noise (the ImageNet-C constants, as the quickstart), drawn with the Poisson shares (severe ones
rare), each validation and test image at a severity drawn evenly (so that every group's accuracy
is measured on enough images), and the CSV names its group ("clean", "s1" ... "s5"), as if
the exposure of each capture were known. Validation images are training-split images not
drawn for training.
"""
import argparse
import csv
import os

import numpy as np

SEVERITY_NAMES = ["clean", "s1", "s2", "s3", "s4", "s5"]


def _safe(name):
    """A class name as a folder name ('T-shirt/top' -> 'T-shirt_top')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


def _pick(labels, counts, rng):
    """Per class, disjoint draws of counts[0], counts[1], ... images: one index array each."""
    out = [[] for _ in counts]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for k, n in enumerate(counts):
            out[k].append(members[start:start + n])
            start += n
    return [np.sort(np.concatenate(idx)) for idx in out]


def _save(path, image):
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def write_example(out, source, per_class, val_per_class, test_per_class, seed=0,
                  corruption="shot_noise", table="imagenet_c"):
    """Write both layouts (module docstring); returns (folder root, CSV path)."""
    from .corruptions import corrupt
    from .split import poisson_shares

    rng = np.random.default_rng([seed, 30])
    names = [_safe(n) for n in source.class_names]
    shares = poisson_shares(5)
    shares = shares / shares.sum()
    rows = []
    train_idx, val_idx = _pick(source.train.labels, (per_class, val_per_class), rng)
    (test_idx,) = _pick(source.test.labels, (test_per_class,), rng)
    for k, (split, data, idx) in enumerate((("train", source.train, train_idx),
                                             ("val", source.train, val_idx),
                                             ("test", source.test, test_idx))):
        if not len(idx):
            continue
        # training: severe images rare; val/test: even, so every group is measured on enough images
        p = shares if split == "train" else np.full(len(shares), 1.0 / len(shares))
        severity = rng.choice(len(shares), size=len(idx), p=p)
        for i in idx:
            label = names[data.labels[i]]
            _save(os.path.join(out, "folder", split, label, f"{i:05d}.png"), data.images[i])
        for s in range(1, len(shares)):  # one corruption call per severity
            at = np.flatnonzero(severity == s)
            if len(at):
                noisy = corrupt(data.images[idx[at]], corruption, s, np.random.default_rng([seed, 31, k, s]),
                                table)
                for j, img in zip(at, noisy):
                    _store_group(out, rows, split, names[data.labels[idx[j]]], idx[j], s, img)
        for j in np.flatnonzero(severity == 0):
            _store_group(out, rows, split, names[data.labels[idx[j]]], idx[j], 0, data.images[idx[j]])
    rows.sort()
    metadata = os.path.join(out, "groups", "metadata.csv")
    with open(metadata, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "group", "split"])
        writer.writerows(rows)
    return os.path.join(out, "folder"), metadata


def _store_group(out, rows, split, label, i, severity, image):
    name = f"{split}_{i:05d}.png"
    _save(os.path.join(out, "groups", name), image)
    rows.append((name, label, SEVERITY_NAMES[severity], split))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--dataset", default="fashion_mnist", help="a built-in dataset")
    parser.add_argument("--data_dir", default="data")
    parser.add_argument("--per_class", type=int, default=600, help="training images per class")
    parser.add_argument("--val_per_class", type=int, default=100, help="validation images per class")
    parser.add_argument("--test_per_class", type=int, default=100, help="test images per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from .registry import READERS, register_all

    register_all()

    source = READERS.get(args.dataset)(data_dir=args.data_dir, seed=args.seed)
    folder, metadata = write_example(args.out, source, args.per_class, args.val_per_class,
                                     args.test_per_class, args.seed)
    print(f"wrote {folder} (image folders) and {metadata} (given groups: "
          f"{', '.join(SEVERITY_NAMES)})")


if __name__ == "__main__":
    main()
