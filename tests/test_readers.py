"""Readers on tiny files written by the tests, read back exactly; missing files explained."""
import gzip
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from datasets import readers
from datasets.readers import DatasetNotFoundError


def rng_images(n, h, w, c, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def write_cifar_pickle(path, images, labels, key):
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as f:
        pickle.dump({b"data": data, key: list(map(int, labels))}, f)


def test_cifar10_pickle_and_binary(tmp_path):
    images = rng_images(12, 32, 32, 3)
    labels = np.arange(12) % 10
    py = tmp_path / "py" / "cifar-10-batches-py"
    binary = tmp_path / "bin" / "cifar-10-batches-bin"
    py.mkdir(parents=True)
    binary.mkdir(parents=True)
    for i in range(1, 6):
        write_cifar_pickle(py / f"data_batch_{i}", images[2 * i - 2:2 * i], labels[2 * i - 2:2 * i], b"labels")
        rows = np.concatenate([labels[2 * i - 2:2 * i, None].astype(np.uint8),
                               images[2 * i - 2:2 * i].transpose(0, 3, 1, 2).reshape(2, -1)], 1)
        rows.tofile(binary / f"data_batch_{i}.bin")
    write_cifar_pickle(py / "test_batch", images[10:], labels[10:], b"labels")
    np.concatenate([labels[10:, None].astype(np.uint8),
                    images[10:].transpose(0, 3, 1, 2).reshape(2, -1)], 1).tofile(binary / "test_batch.bin")
    for root in (tmp_path / "py", tmp_path / "bin"):
        data = readers.read_cifar10(str(root))
        np.testing.assert_array_equal(data.train.images, images[:10])
        np.testing.assert_array_equal(data.train.labels, labels[:10])
        np.testing.assert_array_equal(data.test.images, images[10:])
        assert data.num_classes == 10 and data.default_num_per_class == 4000


def test_cifar100_pickle(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    images = rng_images(6, 32, 32, 3)
    labels = np.array([0, 99, 5, 7, 42, 1])
    write_cifar_pickle(folder / "train", images[:4], labels[:4], b"fine_labels")
    write_cifar_pickle(folder / "test", images[4:], labels[4:], b"fine_labels")
    data = readers.read_cifar100(str(tmp_path))
    np.testing.assert_array_equal(data.train.images, images[:4])
    np.testing.assert_array_equal(data.test.labels, labels[4:])


def write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if gz else open
    with opener(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_idx(tmp_path, gz):
    images = rng_images(7, 28, 28, 1)[..., 0]
    labels = np.arange(7) % 10
    for split in ("train", "t10k"):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte", images, gz)
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", labels, gz)
    data = readers.read_fashion_mnist(str(tmp_path))
    np.testing.assert_array_equal(data.train.images[..., 0], images)
    np.testing.assert_array_equal(data.test.labels, labels)
    assert data.train.images.shape == (7, 28, 28, 1)


def test_truncated_idx(tmp_path):
    write_idx(tmp_path / "x", np.zeros((4, 3), np.uint8), gz=False)
    with open(tmp_path / "x", "r+b") as f:
        f.truncate(20)
    with pytest.raises(ValueError, match="truncated"):
        readers.read_idx(str(tmp_path / "x"))


def test_imagenet30_folders_and_file_lists(tmp_path):
    images = {}
    for split, n in (("train", 3), ("test", 1)):
        for c, name in enumerate(["n01", "n02"]):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                img = rng_images(1, 64, 64, 3, seed=10 * c + i)[0]
                Image.fromarray(img).save(folder / f"{i}.png")
                images[(split, name, i)] = img
    data = readers.read_imagenet30(str(tmp_path))
    assert data.train.images.shape == (6, 64, 64, 3) and data.num_classes == 2
    np.testing.assert_array_equal(data.train.images[0], images[("train", "n01", 0)])
    np.testing.assert_array_equal(data.train.labels, [0, 0, 0, 1, 1, 1])
    files, labels = data.train.files, data.train.labels
    readers.write_file_lists(str(tmp_path / "lists"), files, labels, [np.array([0, 3]), np.array([1])],
                             np.array([2, 4, 5]))
    got_files, got_labels = readers.read_file_list(str(tmp_path / "lists" / "train_severity_0.txt"))
    assert got_files == [files[0], files[3]] and list(got_labels) == [0, 1]
    assert readers.read_file_list(str(tmp_path / "lists" / "val.txt"))[0] == [files[i] for i in (2, 4, 5)]


@pytest.mark.parametrize("reader", ["read_cifar10", "read_cifar100", "read_imagenet30"])
def test_missing_dataset_explains(tmp_path, reader):
    with pytest.raises(DatasetNotFoundError, match=r"could not find(.|\n)*searched(.|\n)*to get them"):
        getattr(readers, reader)(str(tmp_path / "nowhere"))


def test_missing_fashion_mnist_names_the_system_path(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "none"))
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte(.|\n)*apt-get install"):
        readers.read_fashion_mnist(str(tmp_path))


def test_unknown_dataset_lists_valid_ones():
    from datasets import READERS

    with pytest.raises(ValueError, match="unknown dataset .cifar1.*cifar10, cifar100, csv, fashion_mnist"):
        READERS.check("cifar1")


def test_imagenet30_split_reused_from_file_lists(tmp_path):
    """prepare_arrays writes the split's file lists; another run that points data.file_lists
    at them trains on exactly the same images at the same severities, whatever its seed."""
    from datasets import prepare_arrays
    from sharpdro.config import load_config

    for split, n in (("train", 12), ("test", 2)):
        for c in range(2):
            folder = tmp_path / "data" / split / f"n0{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng_images(1, 64, 64, 3, seed=100 * c + i)[0]).save(folder / f"{i}.png")
    common = {"data.dataset": "imagenet30", "data.data_dir": str(tmp_path / "data"),
              "data.num_per_class": 10, "data.corruption": "gaussian_noise",
              "data.cache_dir": str(tmp_path / "cache")}
    first = prepare_arrays(load_config(None, dict(common, seed=0)))
    lists = tmp_path / "cache" / "imagenet30_filelists_seed0_n10"
    assert sorted(os.listdir(lists)) == sorted([f"train_severity_{s}.txt" for s in range(6)]
                                               + ["val.txt"])
    reused = prepare_arrays(load_config(None, dict(common, seed=7, **{"data.file_lists": str(lists)})))
    fresh = prepare_arrays(load_config(None, dict(common, seed=7)))
    assert reused.train_counts == first.train_counts
    np.testing.assert_array_equal(reused.train[1], first.train[1])
    np.testing.assert_array_equal(reused.train[2], first.train[2])
    np.testing.assert_array_equal(reused.val[0][0], first.val[0][0])
    np.testing.assert_array_equal(reused.train[0][reused.train[2] == 0],
                                  first.train[0][first.train[2] == 0])
    assert not np.array_equal(fresh.val[0][0], first.val[0][0])  # the lists, not the seed, decided


def test_a_reader_in_a_new_file_is_registered(tmp_path):
    """A new module in datasets/ registers its reader with no other edit. Written into a
    copy of the package (the source tree stays untouched while other tests import it) and
    imported in a subprocess (this process's registry stays as it is)."""
    import shutil
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(readers.__file__)))
    package = tmp_path / "datasets"
    shutil.copytree(os.path.join(repo, "datasets"), package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (package / "myreader.py").write_text(
        "from .registry import READERS\n\n\n"
        "@READERS.register('mine', options=('image_size', 'channels'))\n"
        "def read_mine(data_dir=None, seed=0, image_size=None, channels=None):\n"
        "    raise NotImplementedError\n")
    code = ("import datasets, sys; from datasets import READERS; "
            "assert datasets.__file__.startswith(sys.argv[1]), datasets.__file__; "
            "print(' '.join(READERS.names())); print(READERS.options('mine'))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), repo]))
    out = subprocess.run([sys.executable, "-c", code, str(package)], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    names, options = out.stdout.splitlines()[-2:]
    assert names.split() == sorted(["cifar10", "cifar100", "csv", "fashion_mnist",
                                    "image_folder", "imagenet30", "mine", "synthetic"])
    assert options == "('image_size', 'channels')"
