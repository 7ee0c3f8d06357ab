"""sharpdro as an installable library: the wheel holds one package, the example runs from
outside the repository with only the wheel and MindSpore, import has no side effects, and
the per-group metric and the group-weight monitor work in a user's own Model."""
import csv
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import mindspore as ms

from helpers import group_accuracy_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("src")
    # build from a copy: the build writes build/ and *.egg-info beside the sources
    shutil.copytree(ROOT, build / "src", ignore=shutil.ignore_patterns(
        ".venv", "runs", "data", "cache", ".git", "__pycache__", "build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(build / "src")], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    (path,) = out.glob("sharpdro-*.whl")
    return path


def test_wheel_holds_the_sharpdro_package_only(wheel):
    import sharpdro

    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"sharpdro", f"sharpdro-{sharpdro.__version__}.dist-info"}
    for module in ("algorithms/sharpdro.py", "metrics.py", "monitor.py", "models/wrn.py"):
        assert f"sharpdro/{module}" in names
    assert not any(n.startswith(("datasets/", "callbacks/", "tests/", "configs/")) for n in names)


def test_example_runs_from_outside_the_repository_with_the_installed_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT)
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = work / "own_training.py"
    shutil.copy(os.path.join(ROOT, "examples", "own_training.py"), script)
    # only the wheel's target and the environment's packages (MindSpore): not the repository
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    probe = ("import sys, runpy; sys.argv = ['own_training.py', '--steps', '30']; "
             "runpy.run_path('own_training.py', run_name='__main__'); "
             f"bad = [m for m in ('datasets', 'callbacks', 'train') if m in sys.modules "
             f"and (getattr(sys.modules[m], '__file__', '') or '').startswith({ROOT!r})]; "
             "print('REPO MODULES', bad); import sharpdro; print('FROM', sharpdro.__file__)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=work, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    out = done.stdout
    assert "REPO MODULES []" in out
    assert f"FROM {target}" in out
    line = next(l for l in out.splitlines() if l.startswith("mean "))
    worst = float(line.split("worst group")[1].split()[1])
    assert np.isfinite(worst) and 0 <= worst <= 100
    assert "accuracy per group: bright" in out and (work / "own_model.mindir").is_file()


def test_import_changes_no_environment_variable():
    code = ("import os, sys; before = dict(os.environ); import sharpdro; "
            "print(dict(os.environ) == before, 'mindspore' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "GLOG_v")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                         stdout=subprocess.PIPE, check=True).stdout.split()
    assert out == ["True", "False"]
    code = ("import os, sharpdro; sharpdro.configure_process(); "
            "print(os.environ['ONEDNN_MAX_CPU_ISA'], os.environ['GLOG_v'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True,
                         stdout=subprocess.PIPE, check=True).stdout.split()
    assert out == ["AVX2", "2"]


def test_public_api():
    import sharpdro

    for name in ("create_train_step", "create_optimizer", "create_model", "GroupEvalCell",
                 "GroupAccuracy", "GroupWeightMonitor", "configure_process"):
        obj = getattr(sharpdro, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        assert name in dir(sharpdro)
    with pytest.raises(AttributeError):
        sharpdro.nothing_here


def test_group_accuracy_against_a_hand_count_with_an_absent_group():
    from sharpdro import GroupAccuracy

    logits, labels, groups, correct, total = group_accuracy_batch()
    metric = GroupAccuracy(5, ["a", "b", "c", "d", "e"])
    metric.update(ms.Tensor(logits[:5]), ms.Tensor(labels[:5]), ms.Tensor(groups[:5]))
    metric.update(np.float32(0.3), logits[5:], labels[5:], groups[5:])  # with the loss first
    result = metric.eval()
    want = {n: (c / t if t else None) for n, c, t in zip("abcde", correct, total)}
    assert result["acc"] == pytest.approx(want) and result["acc"]["d"] is None
    present = [v for v in want.values() if v is not None]
    assert result["mean"] == pytest.approx(np.mean(present))
    assert result["worst"] == pytest.approx(min(present))
    assert result["overall"] == pytest.approx(sum(correct) / sum(total))
    assert result["count"]["d"] == 0
    metric.clear()
    with pytest.raises(RuntimeError, match="no samples"):
        metric.eval()
    with pytest.raises(ValueError, match="outside 0..4"):
        metric.update(logits, labels, groups + 1)


def test_metric_and_monitor_in_a_users_model(tmp_path, graph_mode):
    from mindspore import nn
    from mindspore.dataset import NumpySlicesDataset

    import sharpdro

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    g = rng.integers(0, 3, 64).astype(np.int32)
    g[g == 2] = 1  # group 2 never occurs
    data = NumpySlicesDataset({"image": x, "label": y, "group": g}, shuffle=False).batch(16)
    net = nn.Dense(6, 2)
    step = sharpdro.create_train_step("groupdro", net, sharpdro.create_optimizer(
        net.trainable_params(), 0.1), 3)
    lines = []
    monitor = sharpdro.GroupWeightMonitor(step, every=2, csv_path=str(tmp_path / "w.csv"),
                                          group_names=["x", "y", "z"], print_fn=lambda *a, **k: lines.append(a[0]))
    model = ms.Model(step, eval_network=sharpdro.GroupEvalCell(net),
                     metrics={"groups": sharpdro.GroupAccuracy(3, ["x", "y", "z"])})
    model.train(2, data, callbacks=[monitor], dataset_sink_mode=False)
    with open(tmp_path / "w.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "step", "w_x", "w_y", "w_z"]  # a run's group_weights.csv
    assert [int(r[1]) for r in rows[1:]] == [2, 4, 6, 8]
    weights = np.array([[float(v) for v in r[2:5]] for r in rows[1:]])
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-5)
    assert len(lines) == 4 and "worst group" in lines[-1]
    result = model.eval(data, dataset_sink_mode=False)["groups"]
    assert result["acc"]["z"] is None and result["count"]["x"] + result["count"]["y"] == 64
    logits = net(ms.Tensor(x)).asnumpy()
    hit = logits.argmax(1) == y
    assert result["acc"]["x"] == pytest.approx(hit[g == 0].mean())
