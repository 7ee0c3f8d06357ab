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


def tiny_run(algorithm, columns, mode_lr=0.1, batches=4, batch=16, num_groups=3, **options):
    """A two-layer net on ``columns`` ({"image": ..., "label": ..., ["group": ...]}) and
    its train step, with the model that trains it."""
    from mindspore import nn
    from mindspore.dataset import NumpySlicesDataset

    import sharpdro

    net = nn.SequentialCell(nn.Flatten(), nn.Dense(16, 2))
    step = sharpdro.create_train_step(algorithm, net, sharpdro.create_optimizer(
        net.trainable_params(), mode_lr), num_groups, **options)
    data = NumpySlicesDataset(columns, shuffle=False).batch(batch)
    return step, data, ms.Model(step, eval_network=sharpdro.GroupEvalCell(net),
                                metrics={"groups": sharpdro.GroupAccuracy(step.num_groups)})


def tiny_columns(n=64, groups=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1, 4, 4)).astype(np.float32)
    return {"image": x, "label": (x[:, 0, 0, 0] > 0).astype(np.int32),
            "group": rng.integers(0, groups, n).astype(np.int32)}


def test_guard_stops_a_diverging_groupdro_with_one_error(graph_mode):
    """Issue 31 item 2: groupdro with a large eta and learning rate turns its group weights
    NaN within a few steps; the guard stops there, naming the step and what to lower."""
    import sharpdro

    step, data, model = tiny_run("groupdro", tiny_columns(256), mode_lr=1000.0, eta=10.0)
    with pytest.raises(FloatingPointError) as error:
        model.train(3, data, callbacks=[sharpdro.TrainingGuard(step)])
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("step ") and "group weights are [nan" in message
    assert message.endswith("lower the learning rate or eta (the group-weight step)")
    stopped = int(message.split()[1].rstrip(":"))
    assert stopped < 3 * 16 and int(step.optimizer.global_step.asnumpy()) == stopped


def test_guard_stops_on_a_nan_loss_naming_rho(mode):
    import sharpdro

    columns = tiny_columns()
    columns["image"][20] = np.nan  # in the second batch
    step, data, model = tiny_run("sam", columns)
    with pytest.raises(FloatingPointError, match=r"^step 2: the training diverged \(the loss is "
                       r"nan, not finite\): lower the learning rate or rho \(the perturbation radius\)$"):
        model.train(1, data, callbacks=[sharpdro.TrainingGuard(step)])


def test_guard_refuses_a_group_id_outside_the_range_before_the_step(mode):
    """Issue 31 item 3: group id = num_groups in the second batch: the train step would
    count its loss in no group (one-hot of an id out of range is all zeros)."""
    import sharpdro

    columns = tiny_columns()
    columns["group"][17] = 3
    step, data, model = tiny_run("groupdro", columns)
    with pytest.raises(ValueError) as error:
        model.train(1, data, callbacks=[sharpdro.TrainingGuard(step)])
    assert str(error.value) == ("step 2: group index 3 is outside the valid range 0..2 "
                                "(num_groups = 3), in the batch's group column")
    assert int(step.optimizer.global_step.asnumpy()) == 1  # the bad batch never trained


@pytest.mark.parametrize("algorithm", ["erm", "sharpdro_agnostic"])
def test_label_free_algorithms_train_on_image_label_data(mode, algorithm):
    """Issue 31 item 4: no num_groups, no group column; GroupEvalCell and GroupAccuracy(1)
    evaluate the same data."""
    import sharpdro

    columns = tiny_columns()
    del columns["group"]
    step, data, model = tiny_run(algorithm, columns, num_groups=None)
    lines = []
    model.train(1, data, callbacks=[sharpdro.TrainingGuard(step), sharpdro.GroupWeightMonitor(
        step, every=2, print_fn=lambda *a, **k: lines.append(a[0]))])
    assert int(step.optimizer.global_step.asnumpy()) == 4 and step.num_groups == 1
    result = model.eval(data, dataset_sink_mode=False)["groups"]
    assert result["count"] == {"0": 64} and result["overall"] == result["worst"]
    assert len(lines) == 2 and lines[0].startswith("step 2: loss ")
    if algorithm == "sharpdro_agnostic":  # fraction 0.2 of 16: 3 selected
        assert lines[-1].endswith(", selected 3 of 16")


def test_algorithms_that_read_groups_refuse_data_without_them(graph_mode):
    import sharpdro

    with pytest.raises(ValueError, match="groupdro reads the data's group column: give num_groups"):
        tiny_run("groupdro", {}, num_groups=None)
    columns = tiny_columns()
    del columns["group"]
    step, data, model = tiny_run("sharpdro", columns)
    with pytest.raises(ValueError, match=r"^SharpDRO reads the group column: .* only cvar, erm, "
                       r"sam, sharpdro_agnostic train on \(image, label\) alone; the dataset's "
                       r"columns are image, label$"):
        model.train(1, data, callbacks=[sharpdro.TrainingGuard(step)])
    with pytest.raises(ValueError, match="SharpDRO reads the group column"):  # no guard
        model.train(1, data)


def test_monitor_shows_the_agnostic_selection_per_group(graph_mode):
    """Issue 31 item 4: the weights of sharpdro_agnostic never move; the monitor shows what
    it selected of each group instead."""
    import sharpdro

    step, data, model = tiny_run("sharpdro_agnostic", tiny_columns(), fraction=0.5)
    lines = []
    model.train(1, data, callbacks=[sharpdro.GroupWeightMonitor(
        step, every=4, group_names=["a", "b", "c"], print_fn=lambda *a, **k: lines.append(a[0]))])
    (line,) = lines
    selected, counts = step.last_group_selected.asnumpy(), step.last_group_count.asnumpy()
    assert selected.sum() == 8 and counts.sum() == 16
    assert "weights" not in line and "worst group -" not in line
    shown = " ".join(f"{a:.0f}/{n:.0f}" for a, n in zip(selected, counts))
    assert f", selected per group [{shown}], highest loss " in line
    losses = step.last_group_loss.asnumpy()
    assert line.endswith("abc"[int(np.argmax(losses))])


SNIPPET_MARK = "<!-- snippet: tested -->"


def doc_snippets(path):
    """The fenced python blocks that follow the marker line, in order."""
    lines = open(path).read().splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() == SNIPPET_MARK:
            assert lines[i + 1].strip() == "```python", f"{path}:{i + 2}: a python block after the mark"
            end = lines.index("```", i + 2)
            blocks.append("\n".join(lines[i + 2:end]))
    return blocks


def test_library_page_snippets_run_as_written(tmp_path):
    """Issue 31 items 1 and 5: docs/library.md's script (graph mode) runs as written, with
    only the repository's sharpdro on the path, and prints result dicts whose keys are the
    page's table."""
    import ast

    page = os.path.join(ROOT, "docs", "library.md")
    blocks = doc_snippets(page)
    assert len(blocks) == 2 and "ms.set_context(mode=ms.GRAPH_MODE)" in blocks[0]
    script = tmp_path / "snippet.py"
    script.write_text("\n\n".join(blocks) + "\n")  # the second continues the first
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.path.join(ROOT, "sharpdro", "..")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    results = [ast.literal_eval(l) for l in done.stdout.splitlines() if l.startswith("{'acc'")]
    text = open(page).read()
    table = text[text.index("| key | value |"):].split("\n\n")[0].splitlines()[2:]
    documented = [row.split("`")[1] for row in table]
    assert len(results) == 2 and all(list(r) == documented for r in results)
    assert set(results[0]["acc"]) == {"bright", "dim", "dark"} and set(results[1]["acc"]) == {"0"}
    assert sum(results[0]["count"].values()) == results[1]["count"]["0"] == 600
    assert "selected 13 of 64" in done.stdout  # sharpdro_agnostic on two columns
