"""docs/extending.md as a test: a throwaway algorithm, model and reader, each with an option of
its own, added in a copy of the project where the page says (an algorithm: its cell file and
one HPARAMS entry; a model: its file; a reader: its file) and trained end to end by train.py,
with no other file changed."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COPIED = ("sharpdro", "datasets", "callbacks", "configs", "train.py")

ALGORITHM = '''"""ERM on the loss scaled by a factor (a throwaway algorithm)."""
from .erm import ERM
from .registry import ALGORITHMS


@ALGORITHMS.register("scaled_erm")
class ScaledERM(ERM):
    def __init__(self, network, optimizer, num_groups, world_size, *, loss_scale_factor):
        super().__init__(network, optimizer, num_groups, world_size)
        self.factor = loss_scale_factor

    def clean_loss(self, image, label, group):
        loss, *rest = super().clean_loss(image, label, group)
        return (self.factor * loss, *rest)
'''
HPARAMS_ENTRY = '''
HPARAMS["scaled_erm"] = {"loss_scale_factor": Field(1.0, float, "scaled_erm: loss factor",
                                                    low=0.0, low_open=True)}
'''
MODEL = '''"""A one-hidden-layer MLP (a throwaway model)."""
from mindspore import nn, ops

from ..field import Field
from .registry import MODELS


class MLP(nn.Cell):
    def __init__(self, num_classes, in_channels, hidden):
        super().__init__()
        self.hidden = nn.Dense(in_channels, hidden)
        self.fc = nn.Dense(hidden, num_classes)

    def construct(self, x):
        return self.fc(ops.relu(self.hidden(ops.mean(x, axis=(2, 3)))))


@MODELS.register("mlp", head="fc", options={"hidden": Field(16, int, "mlp: hidden units", low=1)})
def mlp(num_classes, in_channels=3, hidden=16):
    return MLP(num_classes, in_channels, hidden)
'''
READER = '''"""Two classes: bright or dark images (a throwaway reader)."""
import numpy as np

from sharpdro.field import Field

from .registry import READERS
from .source import Source, Split, numbered


@READERS.register("bright_dark", options={
    "brightness_gap": Field(60, int, "bright_dark: grey levels between the classes", low=1)})
def read_bright_dark(data_dir=None, seed=0, brightness_gap=60):
    rng = np.random.default_rng(seed)

    def split(n):
        labels = np.arange(n) % 2
        images = rng.normal(128, 20, (n, 8, 8, 1)) + (labels[:, None, None, None] - 0.5) * brightness_gap
        return Split(np.clip(images, 0, 255).astype(np.uint8), labels)

    return Source(split(600), split(200), numbered(2), default_num_per_class=200,
                  mean=(0.5,), std=(0.1,))
'''
ADDED = {"sharpdro/algorithms/scaled_erm.py": ALGORITHM, "sharpdro/models/mlp.py": MODEL,
         "datasets/bright_dark.py": READER}


def snapshot(root):
    """{relative path: bytes} of the copied project's files (no caches)."""
    out = {}
    for top in COPIED:
        path = os.path.join(root, top)
        files = [path] if os.path.isfile(path) else [
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs if "__pycache__" not in d]
        for f in files:
            with open(f, "rb") as fh:
                out[os.path.relpath(f, root)] = fh.read()
    return out


def test_an_algorithm_a_model_and_a_reader_each_from_their_own_files(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for top in COPIED:
        src = os.path.join(ROOT, top)
        if os.path.isdir(src):
            shutil.copytree(src, project / top, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, project / top)
    before = snapshot(project)
    for rel, text in ADDED.items():
        (project / rel).write_text(text)
    with open(project / "sharpdro" / "hparams.py", "a") as f:
        f.write(HPARAMS_ENTRY)
    run = tmp_path / "run"
    argv = [sys.executable, "train.py", "--config", "configs/quickstart.yaml", "--run_dir",
            str(run), "--cache_dir", str(tmp_path / "cache"),
            "--algorithm.name", "scaled_erm", "--algorithm.loss_scale_factor", "0.5",
            "--model.name", "mlp", "--model.hidden", "8",
            "--data.dataset", "bright_dark", "--data.brightness_gap", "80",
            "--num_per_class", "100", "--epochs", "2", "--batch_size", "20",
            "--train.export_mindir", "false"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(argv, cwd=project, env=env, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (run / "done").is_file()
    config = (run / "config.yaml").read_text()
    for line in ("loss_scale_factor: 0.5", "hidden: 8", "brightness_gap: 80"):
        assert line in config
    assert "warning" not in done.stdout  # each new option is read by its entry
    # the extension touched the three new files and hparams.py, nothing else
    after = snapshot(project)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert changed == sorted(list(ADDED) + ["sharpdro/hparams.py"])
