"""One decoder and one extension list for every reader of image files: a non-square image
is squashed by imagenet30 and the ImageNet-C folders (the authors' Resize((64, 64))) and
centre-cropped by the user's folders; upper-case extensions are found everywhere."""
import os

import numpy as np
import pytest
from PIL import Image

from datasets import readers
from datasets.benchmark import open_benchmark
from datasets.folders import read_image_folder
from datasets.images import CROP, SQUASH, decode, is_image

SIDE = 10


def ramp(width=40, height=20):
    """Grey level = column index: where a column lands tells the resize rule."""
    return np.tile(np.arange(width, dtype=np.uint8)[None, :, None], (height, 1, 3))


def photo(seed=0, width=200, height=120):
    """A smooth colour image, as a JPEG would hold it."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    img = np.stack([(x * 255 // width), (y * 255 // height), (x + y) % 256], -1)
    return np.clip(img + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)


def squashed(path, size=SIDE):
    """The authors' transform: the full decode, resized to size x size (bilinear)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))


def test_the_rules_on_a_non_square_image(tmp_path):
    path = str(tmp_path / "wide.png")
    Image.fromarray(ramp()).save(path)
    crop, smaller = decode(path, SIDE, 3, CROP)
    # 40 x 20: the shorter side 20 -> 10, the centre 10 of 20 columns: columns 10..29
    assert not smaller and abs(int(crop[0, 0, 0]) - 11) <= 1 and abs(int(crop[0, -1, 0]) - 28) <= 1
    squash, _ = decode(path, SIDE, 3, SQUASH)
    # the whole width: columns 0..39
    assert int(squash[0, 0, 0]) <= 2 and int(squash[0, -1, 0]) >= 37
    np.testing.assert_array_equal(squash, squashed(path))
    with pytest.raises(ValueError, match="unknown resize rule 'stretch'"):
        decode(path, SIDE, 3, "stretch")


def test_squash_keeps_the_full_jpeg_decode(tmp_path):
    """No JPEG draft (DCT scaling) for squash: exactly the authors' pixels."""
    path = str(tmp_path / "photo.jpg")
    Image.fromarray(photo()).save(path, quality=90)
    np.testing.assert_array_equal(decode(path, SIDE, 3, SQUASH)[0], squashed(path))


def _class_tree(root, names):
    for c, cls in enumerate(["a", "b"]):
        folder = root / cls
        folder.mkdir(parents=True)
        for i, name in enumerate(names):
            if not is_image(name):
                (folder / name).write_text("not an image")
                continue
            img = photo(seed=10 * c + i, width=60, height=30)
            Image.fromarray(img).save(folder / name, format="JPEG" if "j" in name.lower() else None)


UPPER = ["0.JPEG", "1.Png", "2.TIF", "3.jpg"]


def test_imagenet30_squashes_and_finds_upper_case_extensions(tmp_path):
    for split in ("train", "test"):
        _class_tree(tmp_path / split, UPPER + ["notes.TXT"])
    data = readers.read_imagenet30(str(tmp_path), image_size=SIDE)
    assert data.train.images.shape == (8, SIDE, SIDE, 3)
    assert data.train.files[:4] == [os.path.join("a", n) for n in UPPER]
    for i, f in enumerate(data.train.files):
        np.testing.assert_array_equal(data.train.images[i], squashed(tmp_path / "train" / f))


def test_folders_crop_and_find_upper_case_extensions(tmp_path):
    for split in ("train", "test"):
        _class_tree(tmp_path / split, UPPER)
    source = read_image_folder(str(tmp_path), image_size=SIDE, channels=3,
                               cache_dir=str(tmp_path / "cache"))
    assert len(source.train) == 8 and source.train.files[0] == os.path.join("train", "a", "0.JPEG")
    for i, f in enumerate(source.train.files):
        np.testing.assert_array_equal(source.train.images[i],
                                      decode(str(tmp_path / f), SIDE, 3, CROP)[0])


def test_benchmark_folders_squash_as_imagenet30(tmp_path):
    _class_tree(tmp_path / "fog" / "1", UPPER)
    bench = open_benchmark(str(tmp_path))
    [(severity, images, labels)] = list(bench.sets("fog", SIDE, 3, 2))
    assert severity == 1 and list(labels) == [0] * 4 + [1] * 4
    files = [tmp_path / "fog" / "1" / c / n for c in "ab" for n in UPPER]
    np.testing.assert_array_equal(images, np.stack([squashed(f) for f in files]))
    grey = next(bench.sets("fog", SIDE, 1, 2))[1]
    assert grey.shape == (8, SIDE, SIDE, 1)
    np.testing.assert_array_equal(grey[0], decode(str(files[0]), SIDE, 1, SQUASH)[0])


def test_one_case_insensitive_extension_list():
    assert all(map(is_image, ["a.png", "b.JPEG", "c.Jpg", "d.TIFF", "e.bmp"]))
    assert not any(map(is_image, ["a.txt", "b.jpeg.bak", "README"]))
