"""train.py -> eval.py -> export.py end to end on tiny synthetic data."""
import json
import os

import numpy as np
import pytest

import eval as eval_entry
import export as export_entry
import train as train_entry

TINY = ["--data.dataset", "synthetic", "--image_size", "12", "--channels", "1",
        "--num_classes", "3", "--num_per_class", "120", "--epochs", "2", "--batch_size", "16",
        "--eval_batch_size", "64", "--log_every", "5", "--mode", "graph"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("run"))
    TINY.extend(["--cache_dir", str(tmp_path_factory.mktemp("cache"))])
    train_entry.main(["--config", "configs/quickstart.yaml", "--run_dir", path] + TINY)
    return path


def test_train_writes_the_run_folder(run_dir):
    for name in ("config.yaml", "train_log.csv", "group_weights.csv", "eval.jsonl",
                 "checkpoints/last.ckpt", "done"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "eval.jsonl"))]
    assert {r["split"] for r in rows} == {"val", "test"}
    assert set(rows[0]["acc"]) == {str(s) for s in range(6)}
    weights = np.loadtxt(os.path.join(run_dir, "group_weights.csv"), delimiter=",", skiprows=1)
    np.testing.assert_allclose(weights[:, 2:].sum(1), 1.0, atol=1e-4)
    assert not any(f.endswith(".tmp.ckpt") for f in os.listdir(os.path.join(run_dir, "checkpoints")))


def test_eval_and_export(run_dir):
    result = eval_entry.main(["--run", run_dir])  # the run's config holds the cache_dir
    assert set(result["acc"]) == set(range(6)) and 0 <= result["worst_acc"] <= result["mean_acc"]
    path = export_entry.main(["--run", run_dir])
    assert os.path.isfile(path) and path.endswith(".mindir")


def test_eval_rejects_mismatched_checkpoint(run_dir):
    with pytest.raises(SystemExit, match="does not fit the model"):
        eval_entry.main(["--run", run_dir, "--model.name", "wrn", "--depth", "10"])


def test_bad_config_exits_before_work(tmp_path):
    with pytest.raises(SystemExit, match="unknown algorithm 'sharp'"):
        train_entry.main(["--run_dir", str(tmp_path / "x"), "--algorithm.name", "sharp"])
    with pytest.raises(SystemExit, match="did you mean 'algorithm.rho'"):
        train_entry.main(["--algorithm.rh", "0.1"])
    assert not os.path.exists(tmp_path / "x")
