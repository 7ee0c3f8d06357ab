"""The official corrupted test sets, read in their published layouts.

- CIFAR-10-C / CIFAR-100-C ("npy"): ``<corruption>.npy`` of N = 5 x n uint8 images
  (severities 1..5 in order, n each; N x H x W x C, or N x H x W for grey) and
  ``labels.npy`` (N labels, or n repeated for every severity).
- Tiny-ImageNet-C / ImageNet-C ("folders"): ``<corruption>/<severity>/<class>/*.JPEG``;
  classes in sorted order are labels 0..K-1 (the readers' convention), images are squashed
  to the model's side as the ImageNet-30 reader does (``datasets/images.py``).

``open_benchmark(folder)`` finds the layout and the corruptions; ``Benchmark.sets(...)``
yields one severity at a time (the .npy files are memory-mapped), so a 2.3 GB CIFAR-10-C
never sits in memory at once. ``make_benchmark`` writes the npy layout from any test split
with our corruptions (what tests and the README example use: the real files cannot be
downloaded here).
"""
import os

import numpy as np

from .images import EXTENSIONS, SQUASH, decode_files
from .readers import _list_class_folders

# the 15 corruptions of the benchmark, whose mean is the mCE (Hendrycks & Dietterich 2019)
STANDARD = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
            "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
            "elastic_transform", "pixelate", "jpeg_compression")
SEVERITIES = (1, 2, 3, 4, 5)


class BenchmarkError(ValueError):
    pass


class Benchmark:
    def __init__(self, folder, layout, corruptions):
        self.folder, self.layout, self.corruptions = folder, layout, corruptions

    @property
    def missing(self):
        """Standard corruptions that the folder does not have."""
        return [c for c in STANDARD if c not in self.corruptions]

    def severities(self, corruption):
        if self.layout == "npy":
            return list(SEVERITIES)
        root = os.path.join(self.folder, corruption)
        return sorted(int(d) for d in os.listdir(root) if d.isdigit() and int(d) in SEVERITIES)

    def check(self, image_size, channels, num_classes):
        """Every file's shape, type and labels (npy) or class folders (folders) against the
        model, before anything is evaluated: BenchmarkError naming the first bad file."""
        for corruption in self.corruptions:
            if self.layout == "npy":
                self._npy_arrays(corruption, image_size, channels, num_classes)
            else:
                for severity in self.severities(corruption):
                    self._class_folders(corruption, severity, num_classes)

    def sets(self, corruption, image_size, channels, num_classes):
        """Yields (severity, images uint8 n x H x W x C, labels int64) of ``corruption``,
        checked against the model's input (side, channels) and class count."""
        if self.layout == "npy":
            images, labels = self._npy_arrays(corruption, image_size, channels, num_classes)
            n = len(images) // len(SEVERITIES)
            for i, severity in enumerate(SEVERITIES):
                part = slice(i * n, (i + 1) * n)
                yield severity, images[part], labels[part]
            return
        for severity in self.severities(corruption):
            root, files, labels = self._class_folders(corruption, severity, num_classes)
            # as the ImageNet-30 reader (squashed); a grey model gets Pillow's "L" (ITU-R 601 luma)
            images = decode_files([os.path.join(root, f) for f in files], image_size, channels,
                                  SQUASH)
            yield severity, images, labels

    def _class_folders(self, corruption, severity, num_classes):
        root = os.path.join(self.folder, corruption, str(severity))
        classes, files, labels = _list_class_folders(root)
        if len(classes) != num_classes:
            raise BenchmarkError(f"{root}: {len(classes)} class folders, the model has "
                                 f"{num_classes} classes")
        return root, files, labels

    def _labels(self):
        return _load_npy(os.path.join(self.folder, "labels.npy")).astype(np.int64).reshape(-1)

    def _npy_arrays(self, corruption, image_size, channels, num_classes):
        """(images N x H x W x C memory-mapped, labels N) of ``corruption``, checked."""
        path = os.path.join(self.folder, corruption + ".npy")
        images = _load_npy(path)
        if images.ndim == 3:
            images = images[..., None]
        labels = self._labels()
        n_all = len(images) if images.ndim else 0
        if images.ndim != 4 or images.dtype != np.uint8 or n_all % len(SEVERITIES) or not n_all:
            raise BenchmarkError(f"{path}: expected uint8 images N x H x W x C with N = 5 x n "
                                 f"(severities 1..5 in order), got {images.dtype} {images.shape}")
        n = n_all // len(SEVERITIES)
        if len(labels) == n:
            labels = np.tile(labels, len(SEVERITIES))
        if len(labels) != n_all:
            raise BenchmarkError(f"{os.path.join(self.folder, 'labels.npy')} has {len(labels)} "
                                 f"labels; {path} has {n_all} images (5 x {n})")
        if images.shape[1:] != (image_size, image_size, channels):
            raise BenchmarkError(f"{path}: images are {images.shape[1:]}, the model takes "
                                 f"{(image_size, image_size, channels)} (H x W x C)")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise BenchmarkError(f"labels.npy: labels must be in 0..{num_classes - 1} for this "
                                 f"model, found {labels.min()}..{labels.max()}")
        return images, labels


def _load_npy(path):
    """A memory-mapped .npy array; BenchmarkError naming the file if it is not one."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BenchmarkError(f"{path} is not a readable NumPy .npy file ({first})") from None


def open_benchmark(folder):
    """The layout and corruptions of ``folder``; an error says what was expected."""
    if not os.path.isdir(folder):
        raise BenchmarkError(f"benchmark folder {folder} does not exist")
    entries = sorted(os.listdir(folder))
    npy = [e[:-4] for e in entries if e.endswith(".npy") and e != "labels.npy"]
    if npy:
        if "labels.npy" not in entries:
            raise BenchmarkError(f"{folder} has <corruption>.npy files but no labels.npy")
        return Benchmark(folder, "npy", npy)

    def has_severity_folders(name):
        path = os.path.join(folder, name)
        return os.path.isdir(path) and any(d.isdigit() for d in os.listdir(path))

    found = [e for e in entries if has_severity_folders(e)]
    if found:
        return Benchmark(folder, "folders", found)
    raise BenchmarkError(
        f"{folder}: no corrupted test set found; expected <corruption>.npy + labels.npy "
        "(CIFAR-10-C layout) or <corruption>/<severity>/<class>/<image> "
        f"({', '.join(EXTENSIONS[:3])}; ImageNet-C layout)")


def make_benchmark(folder, images, labels, corruptions=STANDARD, seed=0, table="default",
                   rounding="round"):
    """Write ``images`` (uint8 n x H x W x C) corrupted at severities 1..5 in the CIFAR-10-C
    layout: ``<corruption>.npy`` (5 n images) and ``labels.npy`` (5 n labels)."""
    from sharpdro.atomic import atomic_path

    from .corruptions import corrupt

    os.makedirs(folder, exist_ok=True)
    for k, name in enumerate(corruptions):
        out = np.concatenate([corrupt(images, name, s, np.random.default_rng([seed, k, s]),
                                      table, rounding) for s in SEVERITIES])
        with atomic_path(os.path.join(folder, name + ".npy")) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, out)
    with atomic_path(os.path.join(folder, "labels.npy")) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.tile(np.asarray(labels, np.int64), len(SEVERITIES)))


def main(argv=None):
    """python -m datasets.benchmark --config <yaml> --out <folder> [--num N] [--corruptions a,b]

    Writes the config dataset's test split (its first N images) corrupted at severities
    1..5 in the CIFAR-10-C layout, with the config's corruption table and rounding: a
    stand-in for the official files where they cannot be downloaded."""
    import argparse
    import sys

    from sharpdro.runtime import configure_process
    configure_process()  # before MindSpore loads
    from sharpdro import config as C

    from .build import check_data_config, read_dataset
    from .registry import CORRUPTIONS

    parser = argparse.ArgumentParser(description=main.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--num", type=int, default=0, help="first N test images (0 = all)")
    parser.add_argument("--corruptions", default=",".join(STANDARD))
    args, rest = parser.parse_known_args(argv)
    if args.num < 0:
        parser.error(f"--num must be 0 (all) or a positive count, got {args.num}")
    try:
        cfg = C.load_config(args.config, rest)
        check_data_config(cfg)
        names = args.corruptions.split(",")
        for name in names:
            CORRUPTIONS.check(name)
        d = cfg.data
        raw = read_dataset(cfg)
    except (C.ConfigError, ValueError) as err:
        sys.exit(f"error: {err}")
    images, labels = raw.test.images, raw.test.labels
    if args.num:
        images, labels = images[:args.num], labels[:args.num]
    make_benchmark(args.out, images, labels, names, cfg.seed, d.corruption_table, d.uint8_rounding)
    print(f"wrote {len(names)} corruption(s) x 5 severities x {len(labels)} {d.dataset} test "
          f"images to {args.out}")


if __name__ == "__main__":
    main()
