"""The quickstart config end to end on the real Fashion-MNIST files, for a few steps.

CI installs Debian's dataset-fashion-mnist (setup.sh) and sets SHARPDRO_REQUIRE_DATA=1,
so there a missing dataset fails this test instead of skipping it.
"""
import json
import os

import pytest

import train as train_entry
from datasets.readers import FASHION_MNIST_SYSTEM_DIR

HAVE_DATA = os.path.isfile(os.path.join(FASHION_MNIST_SYSTEM_DIR, "train-images-idx3-ubyte.gz"))


@pytest.mark.skipif(not HAVE_DATA and os.environ.get("SHARPDRO_REQUIRE_DATA") != "1",
                    reason=f"Fashion-MNIST not installed in {FASHION_MNIST_SYSTEM_DIR}")
def test_quickstart_runs_on_fashion_mnist(tmp_path, capsys):
    run = tmp_path / "quickstart"
    train_entry.main(["--config", "configs/quickstart.yaml", "--run_dir", str(run),
                      "--cache_dir", str(tmp_path / "cache"), "--max_steps", "4", "--log_every", "2"])
    out = capsys.readouterr().out
    assert "49940 training images, 390 steps/epoch" in out  # the protocol's split of 5000/class
    assert "step 4/4" in out
    for name in ("done", "model.mindir", "checkpoints/best.ckpt", "plots/group_weights.png"):
        assert (run / name).is_file(), name
    test = [json.loads(line) for line in open(run / "eval.jsonl") if '"test"' in line][-1]
    assert test["count"] == {str(s): 10000 for s in range(6)}
    assert test["step"] == 4
