"""Dataset readers, one registry: each returns a :class:`datasets.source.Source` (uint8
N x H x W x C images, int64 labels, class names, the dataset's mean/std). The readers of
the user's own files (image folders, a metadata CSV) are in ``datasets/folders.py``.

No reader downloads anything. A reader that cannot find its files raises
``DatasetNotFoundError`` naming the files it expected, every path it searched and how to
get them.
"""
import gzip
import os
import pickle

import numpy as np

from sharpdro.atomic import atomic_path

from .images import SQUASH, decode_files, is_image
from .registry import READERS
from .source import Source, Split, numbered

FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Computed once over the 60000 Fashion-MNIST training images (pixels / 255).
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]


class DatasetNotFoundError(FileNotFoundError):
    pass


def _not_found(name, expected, searched, how):
    return DatasetNotFoundError(
        f"{name}: could not find {', '.join(expected)}\n  searched: "
        + "\n            ".join(os.path.abspath(p) for p in searched) + f"\n  to get them: {how}")


# -- Fashion-MNIST (idx files, gzipped or not) ---------------------------------------------
FASHION_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                 "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path):
    """An idx file (``.gz`` or plain) as a NumPy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise ValueError(f"{path} is not an unsigned-byte idx file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(shape))} values, "
                         f"found {body.size}")
    return body.reshape(shape)


def _find(base, folders):
    for folder in folders:
        for candidate in (base, base + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    return None


@READERS.register("fashion_mnist")
def read_fashion_mnist(data_dir="data", seed=0):
    folders = [data_dir, os.path.join(data_dir, "fashion-mnist"), FASHION_MNIST_SYSTEM_DIR]
    out = {}
    for split, (images_name, labels_name) in FASHION_FILES.items():
        paths = [_find(name, folders) for name in (images_name, labels_name)]
        if None in paths:
            raise _not_found("fashion_mnist", [f"{n}[.gz]" for n in (images_name, labels_name)],
                             folders, "apt-get install dataset-fashion-mnist (Debian), or copy "
                             "the four idx files from github.com/zalandoresearch/fashion-mnist "
                             "into data_dir")
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        out[split] = Split(images[..., None], labels)
    return Source(out["train"], out["test"], FASHION_MNIST_CLASSES, default_num_per_class=5000,
                  mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD)


# -- CIFAR-10/100 (python pickles or CIFAR-10 binary) ---------------------------------------
def _unpickle(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _cifar_pickles(paths, label_key):
    images, labels = [], []
    for path in paths:
        batch = _unpickle(path)
        images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[label_key], np.int64))
    return Split(np.concatenate(images), np.concatenate(labels))


def _cifar10_binary(paths):
    images, labels = [], []
    for path in paths:
        raw = np.fromfile(path, np.uint8)
        if raw.size % 3073:
            raise ValueError(f"{path} is truncated: {raw.size} bytes is not a multiple of 3073")
        raw = raw.reshape(-1, 3073)
        labels.append(raw[:, 0].astype(np.int64))
        images.append(raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return Split(np.concatenate(images), np.concatenate(labels))


@READERS.register("cifar10")
def read_cifar10(data_dir="data", seed=0):
    py = [os.path.join(data_dir, "cifar-10-batches-py"), data_dir]
    for folder in py:
        train = [os.path.join(folder, f"data_batch_{i}") for i in range(1, 6)]
        test = [os.path.join(folder, "test_batch")]
        if all(os.path.isfile(p) for p in train + test):
            out = {"train": _cifar_pickles(train, b"labels"), "test": _cifar_pickles(test, b"labels")}
            break
    else:
        binary = os.path.join(data_dir, "cifar-10-batches-bin")
        train = [os.path.join(binary, f"data_batch_{i}.bin") for i in range(1, 6)]
        test = [os.path.join(binary, "test_batch.bin")]
        if not all(os.path.isfile(p) for p in train + test):
            raise _not_found("cifar10", ["cifar-10-batches-py/data_batch_1..5, test_batch",
                                         "or cifar-10-batches-bin/data_batch_1..5.bin, test_batch.bin"],
                             py + [binary], "download cifar-10-python.tar.gz or "
                             "cifar-10-binary.tar.gz from www.cs.toronto.edu/~kriz/cifar.html "
                             "and unpack it into data_dir")
        out = {"train": _cifar10_binary(train), "test": _cifar10_binary(test)}
    return Source(out["train"], out["test"], CIFAR10_CLASSES, default_num_per_class=4000,
                  mean=CIFAR10_MEAN, std=CIFAR10_STD)


@READERS.register("cifar100")
def read_cifar100(data_dir="data", seed=0):
    folders = [os.path.join(data_dir, "cifar-100-python"), data_dir]
    for folder in folders:
        train, test = os.path.join(folder, "train"), os.path.join(folder, "test")
        if os.path.isfile(train) and os.path.isfile(test):
            meta = os.path.join(folder, "meta")
            names = ([n.decode() for n in _unpickle(meta)[b"fine_label_names"]]
                     if os.path.isfile(meta) else numbered(100))
            return Source(_cifar_pickles([train], b"fine_labels"),
                          _cifar_pickles([test], b"fine_labels"), names,
                          default_num_per_class=400, mean=CIFAR100_MEAN, std=CIFAR100_STD)
    raise _not_found("cifar100", ["cifar-100-python/train", "cifar-100-python/test"], folders,
                     "download cifar-100-python.tar.gz from www.cs.toronto.edu/~kriz/cifar.html "
                     "and unpack it into data_dir")


# -- ImageNet-30 (class folders, resized to 64 px) ------------------------------------------
def _list_class_folders(root):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    files, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, name))):
            if is_image(f):
                files.append(os.path.join(name, f))
                labels.append(label)
    return classes, files, np.asarray(labels, np.int64)


@READERS.register("imagenet30", file_names=True)
def read_imagenet30(data_dir="data", seed=0, image_size=64):
    roots = {split: os.path.join(data_dir, split) for split in ("train", "test")}
    if not all(os.path.isdir(r) for r in roots.values()):
        raise _not_found("imagenet30", ["train/<class>/*.jpg", "test/<class>/*.jpg"],
                         list(roots.values()), "get ImageNet-30 (30 ImageNet classes, 1300 "
                         "training and 100 test images per class, github.com/hendrycks/ss-ood) "
                         "and place its train/ and test/ folders under data_dir")
    out = {}
    for split, root in roots.items():
        classes, files, labels = _list_class_folders(root)
        # squashed to a square, as the authors' Resize((64, 64)) (datasets/images.py)
        paths = [os.path.join(root, f) for f in files]
        out[split] = Split(decode_files(paths, image_size, 3, SQUASH), labels, files=files)
    return Source(out["train"], out["test"], classes, default_num_per_class=1000,
                  mean=IMAGENET_MEAN, std=IMAGENET_STD)


def write_file_lists(folder, files, labels, per_severity_idx, val_idx):
    """The authors' style: one list per severity for training, one for validation.

    Each line is ``<relative path> <label>``.
    """
    os.makedirs(folder, exist_ok=True)
    for s, idx in enumerate(per_severity_idx):
        _write_list(os.path.join(folder, f"train_severity_{s}.txt"), files, labels, idx)
    _write_list(os.path.join(folder, "val.txt"), files, labels, val_idx)


def _write_list(path, files, labels, idx):
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for i in idx:
            f.write(f"{files[i]} {labels[i]}\n")


def read_file_list(path):
    files, labels = [], []
    with open(path) as f:
        for line in f:
            if line.strip():
                name, label = line.rsplit(maxsplit=1)
                files.append(name)
                labels.append(int(label))
    return files, np.asarray(labels, np.int64)
