"""eval.py --benchmark: the official corrupted test sets in both layouts (tiny files made
here), the table against a recount, the corruption errors, and clear errors."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from callbacks.benchmark_report import corruption_errors, evaluate_benchmark, format_benchmark, write_benchmark
from datasets.benchmark import STANDARD, BenchmarkError, make_benchmark, open_benchmark

MEAN, STD = (0.5,), (0.25,)


def brightness_classifier(x):
    """Class 0, 1 or 2 by the image's mean normalised value: a fixed, recountable model."""
    m = x.reshape(len(x), -1).mean(1)
    cls = np.digitize(m, [-0.3, 0.3])
    return np.eye(3, dtype=np.float32)[cls]


def recount(images, labels):
    x = (images.astype(np.float32) / 255 - MEAN[0]) / STD[0]
    return float((brightness_classifier(x.transpose(0, 3, 1, 2)).argmax(1) == labels).mean())


def tiny_images(n=9, size=8, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8), rng.integers(0, 3, n)


def test_npy_layout_against_a_recount(tmp_path):
    images, labels = tiny_images()
    names = ["gaussian_noise", "contrast", "pixelate"]
    make_benchmark(str(tmp_path), images, labels, names)
    bench = open_benchmark(str(tmp_path))
    assert bench.layout == "npy" and sorted(bench.corruptions) == sorted(names)
    acc = evaluate_benchmark(brightness_classifier, bench, 8, 1, 3, MEAN, STD, batch_size=4,
                             log=lambda *_: None)
    for name in names:
        stored = np.load(tmp_path / f"{name}.npy")
        assert stored.shape == (45, 8, 8, 1)
        for s in range(1, 6):
            part = slice((s - 1) * 9, s * 9)
            assert acc[name][s] == pytest.approx(recount(stored[part], labels))
    summary = corruption_errors(acc)
    assert summary["missing"] == [c for c in STANDARD if c not in names]
    want_mean = np.mean([np.mean(list(acc[c].values())) for c in names])
    assert summary["mean_acc"] == pytest.approx(want_mean)
    assert summary["unnormalised_mce"] == pytest.approx(1 - want_mean)
    text = format_benchmark(summary)
    assert "not found (left out of the means): gaussian_noise" not in text
    assert "not found (left out of the means): shot_noise, impulse_noise" in text


def test_folder_layout_against_a_recount(tmp_path):
    """<corruption>/<severity>/<class>/*.png, classes in sorted order; images resized to the
    model's side and converted to grey for a grey model."""
    rng = np.random.default_rng(1)
    truth = {}
    for name in ("snow", "fog"):
        for s in (1, 2, 5):
            for label, wnid in enumerate(["n01", "n02", "n03"]):
                folder = tmp_path / name / str(s) / wnid
                folder.mkdir(parents=True)
                for i in range(2):
                    value = int(rng.integers(0, 256))  # flat images: resizing keeps the value
                    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(folder / f"{i}.png")
                    truth.setdefault((name, s), []).append((value, label))
    bench = open_benchmark(str(tmp_path))
    assert bench.layout == "folders" and bench.corruptions == ["fog", "snow"]
    acc = evaluate_benchmark(brightness_classifier, bench, 8, 1, 3, MEAN, STD, 4, log=lambda *_: None)
    assert sorted(acc) == ["fog", "snow"] and list(acc["fog"]) == [1, 2, 5]
    for (name, s), items in truth.items():
        images = np.stack([np.full((8, 8, 1), v, np.uint8) for v, _ in items])
        assert acc[name][s] == pytest.approx(recount(images, np.array([lab for _, lab in items])))
    with pytest.raises(BenchmarkError, match="3 class folders, the model has 10 classes"):
        list(bench.sets("fog", 8, 1, 10))


def test_normalised_ce_against_a_baseline(tmp_path):
    """CE_c = sum_s E_s,c / sum_s E^baseline_s,c; mCE the mean over the shared standard ones."""
    ours = {"gaussian_noise": {s: 0.5 for s in range(1, 6)}, "fog": {1: 0.9, 2: 0.8},
            "speckle_noise": {1: 0.1}}
    base = {"acc": {"gaussian_noise": {str(s): 0.0 for s in range(1, 6)}, "fog": {"1": 0.8, "2": 0.6}}}
    summary = corruption_errors(ours, base)
    assert summary["ce"]["gaussian_noise"] == pytest.approx(0.5)
    assert summary["ce"]["fog"] == pytest.approx(0.3 / 0.6)
    assert summary["mce"] == pytest.approx(0.5)
    assert "speckle_noise" not in summary["ce"] and summary["standard_found"] == ["gaussian_noise", "fog"]
    prefix = str(tmp_path / "res")
    write_benchmark(prefix, summary, "model.ckpt", "somewhere")
    stored = json.load(open(prefix + ".json"))
    assert stored["mce"] == pytest.approx(0.5)
    rows = open(prefix + ".csv").read().splitlines()
    assert rows[0] == "corruption,severity,accuracy,error" and len(rows) == 1 + 5 + 2 + 1
    md = open(prefix + ".md").read()
    assert "| speckle_noise * |" in md and "mCE relative to the baseline (2 corruptions): 50.0 %" in md


def test_bad_files_are_clear_errors(tmp_path):
    images, labels = tiny_images()
    make_benchmark(str(tmp_path), images, labels, ["contrast"])
    bench = open_benchmark(str(tmp_path))
    with pytest.raises(BenchmarkError, match=r"images are \(8, 8, 1\), the model takes \(32, 32, 3\)"):
        list(bench.sets("contrast", 32, 3, 3))
    np.save(tmp_path / "labels.npy", np.zeros(7, np.int64))
    with pytest.raises(BenchmarkError, match="has 7 labels.*has 45 images"):
        list(bench.sets("contrast", 8, 1, 3))
    np.save(tmp_path / "labels.npy", labels)  # n labels: repeated for every severity
    assert len(list(bench.sets("contrast", 8, 1, 3))) == 5
    np.save(tmp_path / "odd.npy", np.zeros((7, 8, 8), np.uint8))
    with pytest.raises(BenchmarkError, match="N = 5 x n"):
        list(open_benchmark(str(tmp_path)).sets("odd", 8, 1, 3))
    os.remove(tmp_path / "labels.npy")
    with pytest.raises(BenchmarkError, match="no labels.npy"):
        open_benchmark(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match="no corrupted test set found"):
        open_benchmark(str(tmp_path / "empty"))
    with pytest.raises(BenchmarkError, match="does not exist"):
        open_benchmark(str(tmp_path / "nowhere"))
