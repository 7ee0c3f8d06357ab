"""train.py, eval.py and export.py end to end on tiny synthetic data: the run folder,
resume, evaluation of checkpoints and MindIR, export, and every kind of bad input."""
import csv
import json
import os
import shutil

import numpy as np
import pytest

import eval as eval_entry
import export as export_entry
import train as train_entry
from helpers import crash_at_epoch_2, read_jsonl, tiny
RUN_FILES = ["config.yaml", "data.json", "plots/groups.png", "train_log.csv", "group_weights.csv", "eval.jsonl", "predictions.npz",
             "checkpoints/last.ckpt", "checkpoints/best.ckpt", "plots/group_weights.png",
             "plots/accuracy_by_severity.png", "model.mindir", "done"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, cache):
    path = str(tmp_path_factory.mktemp("run"))
    train_entry.main(tiny(cache, path))
    return path


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_run_folder_has_every_file_with_the_documented_columns(run_dir):
    for name in RUN_FILES:
        assert os.path.isfile(os.path.join(run_dir, name)), name
    header, rows = read_csv(os.path.join(run_dir, "train_log.csv"))
    assert header == (["epoch", "step", "loss", "lr", "seconds", "train_seconds"]
                      + [f"group_loss_{s}" for s in range(6)])
    seconds = np.array([[float(r[4]), float(r[5])] for r in rows])
    assert np.all(seconds[:, 1] <= seconds[:, 0] + 0.05)  # the evaluations are not training
    assert np.all(np.diff(seconds[:, 1]) >= 0) and seconds[-1, 1] > 0
    assert [int(r[1]) for r in rows] == [5, 10, 15, 20, 25, 30, 35, 40, 44]  # every 5, and the last
    header, rows = read_csv(os.path.join(run_dir, "group_weights.csv"))
    assert header == ["epoch", "step"] + [f"w_{s}" for s in range(6)]
    weights = np.array([[float(v) for v in r[2:]] for r in rows])
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-4)
    records = read_jsonl(os.path.join(run_dir, "eval.jsonl"))
    assert [(r["epoch"], r["split"]) for r in records] == [(1, "val"), (1, "test"), (2, "val"), (2, "test")]
    for r in records:
        assert set(r) == {"epoch", "step", "split", "acc", "loss", "count", "mean_acc", "worst_acc",
                          "overall_acc", "group_kind"}
        assert r["group_kind"] == "severity"
        assert set(r["acc"]) == set(r["loss"]) == {str(s) for s in range(6)}
        assert r["worst_acc"] == min(r["acc"].values())
    assert sorted(os.listdir(os.path.join(run_dir, "checkpoints"))) == ["best.ckpt", "last.ckpt"]
    for png in ("group_weights.png", "accuracy_by_severity.png"):
        with open(os.path.join(run_dir, "plots", png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_eval_jsonl_equals_a_recount_of_the_saved_predictions(run_dir):
    saved = np.load(os.path.join(run_dir, "predictions.npz"))
    for r in read_jsonl(os.path.join(run_dir, "eval.jsonl"))[-2:]:
        for s, acc in r["acc"].items():
            pred, label = saved[f"{r['split']}_{s}_pred"], saved[f"{r['split']}_{s}_label"]
            assert len(label) == r["count"][s]
            assert acc == pytest.approx(float((pred == label).mean()), abs=1e-12)
    # the labels are the data's: the test split holds every test image at every severity
    assert len(saved["test_0_label"]) == len(saved["test_5_label"]) > 0


def test_checkpoints_hold_the_run_state(run_dir):
    from sharpdro.checkpoint import STATE_KEY, read_checkpoint

    last = read_checkpoint(os.path.join(run_dir, "checkpoints", "last.ckpt"))
    state = json.loads(last[STATE_KEY])
    assert state["epoch"] == 2 and state["step"] == 44 and state["seed"] == 0
    assert state["best_metric"] == "val_worst_acc" and "data:" in state["config"]
    val = [r for r in read_jsonl(os.path.join(run_dir, "eval.jsonl")) if r["split"] == "val"]
    best = max(val, key=lambda r: r["worst_acc"])
    assert state["best_value"] == best["worst_acc"] and state["best_epoch"] == best["epoch"]
    assert "group_weights" in last and "global_step" in last
    assert any(name.startswith("moments.") for name in last)
    assert not any(name.startswith("scratch.") for name in last)


def test_resumed_run_equals_the_uninterrupted_one(run_dir, cache, tmp_path, monkeypatch):
    """Crash after epoch 1 (epoch 2's data cannot be built), resume: same weights, same
    group weights and optimizer state, same evaluations, same logs."""
    from sharpdro.checkpoint import read_checkpoint

    resumed = tmp_path / "resumed"
    undo = crash_at_epoch_2(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(tiny(cache, resumed))
    undo()
    assert not (resumed / "done").exists() and (resumed / "checkpoints" / "last.ckpt").exists()
    with pytest.raises(SystemExit, match="unfinished run; continue it with --resume"):
        train_entry.main(tiny(cache, resumed))
    train_entry.main(["--resume", str(resumed)])

    want = read_checkpoint(os.path.join(run_dir, "checkpoints", "last.ckpt"))
    got = read_checkpoint(str(resumed / "checkpoints" / "last.ckpt"))
    assert set(want) == set(got)
    for name in want:
        if name != "run_state":
            np.testing.assert_array_equal(got[name].asnumpy(), want[name].asnumpy(), err_msg=name)
    strip = [{k: v for k, v in r.items()} for r in read_jsonl(os.path.join(run_dir, "eval.jsonl"))]
    assert read_jsonl(str(resumed / "eval.jsonl")) == strip
    for name in ("train_log.csv", "group_weights.csv"):
        header, want_rows = read_csv(os.path.join(run_dir, name))
        _, got_rows = read_csv(str(resumed / name))
        drop = {header.index(c) for c in ("seconds", "train_seconds") if c in header}
        clean = (lambda rows: [[v for i, v in enumerate(r) if i not in drop] for r in rows])
        assert clean(got_rows) == clean(want_rows), name


def test_eval_of_checkpoint_and_of_mindir_give_the_same_table(run_dir, tmp_path):
    from_ckpt = eval_entry.main(["--run", run_dir, "--out", str(tmp_path / "ckpt")])
    from_mindir = eval_entry.main(["--run", run_dir, "--mindir", os.path.join(run_dir, "model.mindir"),
                                   "--out", str(tmp_path / "mindir")])
    assert from_ckpt["acc"] == from_mindir["acc"]
    assert from_ckpt["loss"] == pytest.approx(from_mindir["loss"], rel=1e-6)
    test = [r for r in read_jsonl(os.path.join(run_dir, "eval.jsonl")) if r["split"] == "test"][-1]
    assert [from_ckpt["acc"][s] for s in range(6)] == [test["acc"][str(s)] for s in range(6)]
    table = (tmp_path / "mindir.md").read_text()
    assert "| severity | 0 | 1 | 2 | 3 | 4 | 5 | mean | worst |" in table
    assert json.loads((tmp_path / "ckpt.json").read_text())["worst_acc"] == from_ckpt["worst_acc"]


def test_export_mindir_with_a_fixed_batch_and_reload(run_dir, tmp_path, capsys):
    path = export_entry.main(["--run", run_dir, "--batch_size", "3", "--file", str(tmp_path / "m")])
    assert path.endswith("m.mindir") and os.path.isfile(path)
    assert "largest logit difference after reload" in capsys.readouterr().out
    from sharpdro.deploy import mindir_input_shape, mindir_predictor

    assert mindir_input_shape(path) == (3, 1, 12, 12)
    x = np.random.default_rng(0).normal(size=(7, 1, 12, 12)).astype(np.float32)
    batched = mindir_predictor(path, (1, 12, 12))(x)  # 7 images through a batch-3 file
    dynamic = mindir_predictor(os.path.join(run_dir, "model.mindir"), (1, 12, 12))(x)
    assert batched.shape == (7, 3)
    np.testing.assert_allclose(batched, dynamic, atol=1e-5)


# -- bad input ------------------------------------------------------------------------
def test_export_and_eval_refuse_a_checkpoint_of_another_model(run_dir):
    for entry in (eval_entry, export_entry):
        with pytest.raises(SystemExit, match=r"^error: checkpoint \S+\.ckpt does not fit this "
                                             r"model \(\d+ of \d+ parameters; .*\): "
                                             r".*stem.weight: not in the file.*$"):
            entry.main(["--run", run_dir, "--model.name", "wrn", "--depth", "10"])
        with pytest.raises(SystemExit, match=r"does not fit this model \(2 of \d+ parameters.*"
                                             r"\(3, \d+\) in the file, \(5, \d+\) in the model"):
            entry.main(["--run", run_dir, "--num_classes", "5"])


def test_eval_refuses_missing_truncated_and_misshapen_files(run_dir, cache, tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        eval_entry.main(["--config", os.path.join(run_dir, "config.yaml"), "--ckpt", str(tmp_path / "no.ckpt")])
    truncated = tmp_path / "half.ckpt"
    data = open(os.path.join(run_dir, "checkpoints", "last.ckpt"), "rb").read()
    truncated.write_bytes(data[:len(data) // 3])
    with pytest.raises(SystemExit, match="cannot be read"):
        eval_entry.main(["--config", os.path.join(run_dir, "config.yaml"), "--ckpt", str(truncated)])
    with pytest.raises(SystemExit, match="does not exist"):
        eval_entry.main(["--run", run_dir, "--mindir", str(tmp_path / "none.mindir")])
    with pytest.raises(SystemExit, match=r"takes input \(-1, 1, 12, 12\).*N x 1 x 16 x 16"):
        eval_entry.main(["--run", run_dir, "--mindir", os.path.join(run_dir, "model.mindir"),
                         "--image_size", "16"])
    not_mindir = tmp_path / "x.mindir"
    not_mindir.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(SystemExit, match="not a readable MindIR"):
        eval_entry.main(["--run", run_dir, "--mindir", str(not_mindir)])


def _bad_config(tmp_path, text):
    path = tmp_path / f"bad{len(list(tmp_path.glob('bad*.yaml')))}.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case,message", [
    ("not_yaml", "is not valid YAML"),
    ("unknown_key", "unknown config key 'optim.lrr'; did you mean 'optim.lr'"),
    ("wrong_type", "train.epochs: expected int, got str 'many'"),
    ("missing_key", r"missing required key\(s\) \['model.name'\]"),
    ("no_data", "(?s)fashion_mnist: could not find train-images.*searched.*apt-get install"),
    ("empty_data", "(?s)fashion_mnist: could not find train-images.*searched.*apt-get install"),
    ("batch_too_large", "fewer than one batch .*; raise data.num_per_class or lower"),
    ("resume_without_checkpoint", "no checkpoint at"),
    ("resume_and_config", "not both"),
    ("unknown_algorithm", "unknown algorithm 'sharp'"),
])
def test_bad_input_exits_cleanly_and_writes_nothing(tmp_path, cache, case, message):
    out = tmp_path / "run"
    base = ["--run_dir", str(out), "--cache_dir", cache]
    good = "data: {dataset: synthetic}\nmodel: {name: small_cnn}\nalgorithm: {name: sharpdro}\n"
    argv = {
        "not_yaml": ["--config", _bad_config(tmp_path, "data:\n  dataset: synthetic\n model: [oops\n")] + base,
        "unknown_key": ["--config", _bad_config(tmp_path, good + "optim: {lrr: 0.1}\n")] + base,
        "wrong_type": ["--config", _bad_config(tmp_path, good + "train: {epochs: many}\n")] + base,
        "missing_key": ["--config", _bad_config(tmp_path, "data: {dataset: synthetic}\n"
                                                "algorithm: {name: erm}\n")] + base,
        "no_data": ["--config", "configs/quickstart.yaml", "--data_dir", str(tmp_path / "nowhere"),
                    "--data.dataset", "fashion_mnist"] + base,
        "empty_data": ["--config", "configs/quickstart.yaml", "--data_dir", str(tmp_path),
                       "--data.dataset", "fashion_mnist"] + base,
        "batch_too_large": tiny(cache, out, "--batch_size", "100000"),
        "resume_without_checkpoint": ["--resume", str(out)],
        "resume_and_config": ["--resume", str(out), "--config", "configs/quickstart.yaml"],
        "unknown_algorithm": tiny(cache, out, "--algorithm.name", "sharp"),
    }[case]
    if case == "resume_without_checkpoint":
        out.mkdir()
        (out / "config.yaml").write_text(good)
        before = sorted(os.listdir(out))
    if case in ("no_data", "empty_data"):  # the system copy must not be found either
        import datasets.readers as readers

        mp = pytest.MonkeyPatch()
        mp.setattr(readers, "FASHION_MNIST_SYSTEM_DIR", str(tmp_path / "no_system_copy"))
    try:
        with pytest.raises(SystemExit, match=message) as info:
            train_entry.main(argv)
    finally:
        if case in ("no_data", "empty_data"):
            mp.undo()
    assert info.value.code not in (0, None)
    if case == "resume_without_checkpoint":
        assert sorted(os.listdir(out)) == before
    else:
        assert not out.exists()


def test_a_finished_run_is_not_overwritten_without_overwrite(run_dir, cache, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    stamp = os.path.getmtime(copy / "checkpoints" / "last.ckpt")
    with pytest.raises(SystemExit, match="already holds a finished run; use --overwrite"):
        train_entry.main(tiny(cache, copy))
    with pytest.raises(SystemExit, match="finished run; nothing to resume"):
        train_entry.main(["--resume", str(copy)])
    assert os.path.getmtime(copy / "checkpoints" / "last.ckpt") == stamp
    (copy / "stray.txt").write_text("a user's own file")
    train_entry.main(tiny(cache, copy, "--overwrite", "--epochs", "1", "--export_mindir", "false"))
    assert (copy / "stray.txt").exists() and not (copy / "model.mindir").exists()
    assert read_jsonl(str(copy / "eval.jsonl"))[-1]["epoch"] == 1


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(cache, tmp_path):
    out = tmp_path / "nan"
    with pytest.raises(SystemExit, match=r"training loss is (nan|inf|-inf) at step \d+ of epoch 2"):
        # epoch 1 trains at a sane rate; at the milestone the rate jumps to 1e33
        train_entry.main(tiny(cache, out, "--algorithm.name", "erm", "--lr", "0.01", "--schedule",
                              "step", "--milestones", "[0.5]", "--gamma", "1e35"))
    assert not (out / "done").exists()
    from sharpdro.checkpoint import read_checkpoint

    last = read_checkpoint(str(out / "checkpoints" / "last.ckpt"))
    assert json.loads(last["run_state"])["epoch"] == 1
    assert all(np.isfinite(v.asnumpy()).all() for k, v in last.items() if k != "run_state")


def test_disk_failure_while_checkpointing_leaves_the_previous_checkpoint(run_dir, tmp_path, monkeypatch):
    import mindspore as ms
    from mindspore import nn

    from sharpdro.checkpoint import read_checkpoint, save_train_state

    net = nn.Dense(3, 2)
    path = str(tmp_path / "last.ckpt")
    save_train_state(net, path, {"epoch": 1})
    before = open(path, "rb").read()

    def full_disk(cell, name, **kwargs):
        # MindSpore writes <name>.tmp, then renames it to name: both names partly written
        for path in (os.path.splitext(name)[0] + ".tmp", name):
            with open(path, "wb") as f:
                f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ms, "save_checkpoint", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_train_state(net, path, {"epoch": 2})
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["last.ckpt"]
    monkeypatch.undo()
    assert json.loads(read_checkpoint(path)["run_state"]) == {"epoch": 1}


# -- what a new user hit ----------------------------------------------------------------
def test_done_reports_percent_and_the_run_prints_the_selected_epoch(run_dir):
    text = open(os.path.join(run_dir, "done")).read()
    val = [r for r in read_jsonl(os.path.join(run_dir, "eval.jsonl")) if r["split"] == "val"]
    best = max(val, key=lambda r: r["worst_acc"])
    assert f"best val_worst_acc {100 * best['worst_acc']:.2f} % at epoch {best['epoch']}" in text


def test_final_summary_names_the_selected_epochs_test_accuracy(run_dir):
    from callbacks import RunFolder, RunState, format_table
    from callbacks.fit import final_summary

    state = RunState(22, 2)
    records = RunFolder(run_dir).eval_records()
    val = [r for r in records if r["split"] == "val"]
    best = max(val, key=lambda r: (r["worst_acc"], -r["epoch"]))
    state.offer(best["worst_acc"], best["epoch"])
    text = final_summary(RunFolder(run_dir), state, "val_worst_acc", format_table)
    test = [r for r in records if r["split"] == "test" and r["epoch"] == best["epoch"]][0]
    assert text.startswith(f"selected epoch {best['epoch']} (best val_worst_acc")
    assert f"{100 * test['worst_acc']:6.2f}" in text


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_interrupt_leaves_a_resumable_run_and_prints_the_resume_command(cache, tmp_path, signum):
    """Ctrl-C (SIGINT) or kill (SIGTERM) in epoch 2: exit 130, the --resume command on
    stderr, and `train.py --resume` finishes the run with every log continuous."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    argv = [sys.executable, "train.py", *tiny(cache, out, "--epochs", "4")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (out / "checkpoints" / "last.ckpt").exists() and proc.poll() is None:
        assert time.time() < deadline, "no checkpoint after 240 s"
        time.sleep(0.02)
    proc.send_signal(getattr(signal, signum))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (stdout[-2000:], stderr[-2000:])
    assert f"train.py --resume {out}" in stderr
    assert not (out / "done").exists()
    subprocess.run([sys.executable, "train.py", "--resume", str(out)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    assert (out / "done").exists()
    steps = [int(r[1]) for r in read_csv(str(out / "train_log.csv"))[1]]
    assert steps == sorted(set(steps)) and steps[-1] == 88
    assert [(r["epoch"], r["split"]) for r in read_jsonl(str(out / "eval.jsonl"))] == [
        (e, s) for e in range(1, 5) for s in ("val", "test")]


def test_eval_writes_to_the_run_folder_and_names_the_checkpoint(run_dir, capsys):
    eval_entry.main(["--run", run_dir])
    out = capsys.readouterr().out
    ckpt = os.path.join(run_dir, "checkpoints", "best.ckpt")
    assert f"evaluating {ckpt} (epoch " in out and "best val_worst_acc" in out
    for ext in (".json", ".md"):
        assert os.path.isfile(os.path.join(run_dir, "evals", "test_best" + ext))
    assert not any(f.endswith((".json", ".md")) for f in os.listdir(os.path.join(run_dir, "checkpoints")))


def test_export_does_not_clobber_the_runs_model(run_dir):
    model = os.path.join(run_dir, "model.mindir")
    before = open(model, "rb").read()
    path = export_entry.main(["--run", run_dir, "--batch_size", "2"])
    assert path == os.path.join(run_dir, "exports", "model_best_batch2.mindir")
    assert open(model, "rb").read() == before
    with pytest.raises(SystemExit, match="exists; pass --overwrite"):
        export_entry.main(["--run", run_dir, "--batch_size", "2"])
    stamp = os.path.getmtime(path)
    export_entry.main(["--run", run_dir, "--batch_size", "2", "--overwrite"])
    assert os.path.getmtime(path) >= stamp and open(model, "rb").read() == before


def test_onnx_export_round_trip(run_dir, tmp_path, capsys):
    """ONNX: a fixed batch (1 by default), reloaded with onnxruntime, equal to the MindIR."""
    from sharpdro.deploy import mindir_predictor, onnx_predictor

    path = export_entry.main(["--run", run_dir, "--format", "ONNX", "--file", str(tmp_path / "m")])
    assert "using --batch_size 1" in capsys.readouterr().out
    x = np.random.default_rng(1).normal(size=(1, 1, 12, 12)).astype(np.float32)
    got = onnx_predictor(path)(x)
    want = mindir_predictor(os.path.join(run_dir, "model.mindir"), (1, 12, 12))(x)
    assert got.shape == (1, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_failed_verification_leaves_no_file(run_dir, tmp_path, monkeypatch):
    import sharpdro.deploy as deploy

    monkeypatch.setattr(deploy, "mindir_predictor", lambda path, shape: (lambda x: np.full((len(x), 3), np.nan)))
    with pytest.raises(SystemExit, match="differs from the network by nan"):
        export_entry.main(["--run", run_dir, "--file", str(tmp_path / "bad")])
    assert os.listdir(tmp_path) == []


def test_eval_max_batches_caps_evaluation(cache, tmp_path):
    out = tmp_path / "capped"
    train_entry.main(tiny(cache, out, "--epochs", "1", "--eval_max_batches", "1",
                          "--export_mindir", "false"))
    for r in read_jsonl(str(out / "eval.jsonl")):
        assert set(r["count"].values()) == {64}  # one batch of eval_batch_size per severity


def test_settings_that_do_nothing_are_named(capsys):
    from sharpdro.config import load_config
    from callbacks.checks import ignored_settings

    cfg = load_config("configs/quickstart.yaml", ["--milestones", "[0.5, 0.75]", "--fraction", "0.3",
                                                  "--image_size", "16", "--depth", "16"])
    messages = ignored_settings(cfg)
    assert any(m.startswith("optim.milestones = [0.5, 0.75] is ignored: only the step schedule")
               for m in messages)
    assert any(m.startswith("algorithm.fraction = 0.3 is ignored: sharpdro does not use it "
                            "(used by cvar, sharpdro_agnostic)") for m in messages)
    assert any(m.startswith("data.image_size = 16 is ignored: the fashion_mnist reader") for m in messages)
    assert any(m.startswith("model.depth = 16 is ignored: model small_cnn") for m in messages)
    assert len(messages) == 4
    assert ignored_settings(load_config("configs/quickstart.yaml")) == []
    # a real dataset's shape is not written as the synthetic defaults
    cfg = load_config("configs/quickstart.yaml")
    assert cfg.data.image_size is None and cfg.data.channels is None


def test_help_lists_the_registries(capsys):
    with pytest.raises(SystemExit) as info:
        train_entry.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    from datasets import READERS
    from sharpdro.algorithms import ALGORITHMS
    from sharpdro.models import MODELS

    for kind, registry in (("algorithm.name", ALGORITHMS), ("model.name", MODELS),
                           ("data.dataset", READERS)):
        assert f"{kind}: {', '.join(registry.names())}\n" in out
    assert {"sharpdro", "dfr", "jtt"} <= set(ALGORITHMS.names()) and "csv" in READERS.names()
    assert "shot_noise" in out and "--algorithm.fraction (default 0.2)" in out


def test_accuracy_plot_is_one_panel_for_one_evaluation(tmp_path):
    from PIL import Image

    from callbacks.plots import plot_accuracy_by_group

    record = {"acc": {"0": 0.9, "1": 0.8}, "worst_acc": 0.8}
    widths = {}
    for evals in (1, 3):
        path = tmp_path / f"eval{evals}.jsonl"
        path.write_text("".join(json.dumps({**record, "epoch": e, "split": s}) + "\n"
                                for e in range(1, evals + 1) for s in ("val", "test")))
        png = plot_accuracy_by_group(str(path), str(tmp_path / f"plot{evals}.png"))
        widths[evals] = Image.open(png).size[0]
    assert widths[1] < 0.7 * widths[3]


def _finished_folder(tmp_path, weights, selection=None, kind="group", absent="zero"):
    """A run folder's logs as a run leaves them (weights: rows of group weights; selection:
    rows of share_*, rate_*), for finish_run's plots."""
    from callbacks.run_folder import RunFolder

    folder = RunFolder(tmp_path / "run")
    os.makedirs(folder.path)
    names = ["clean", "s1", "s2"][:len(weights[0])]
    (tmp_path / "run" / "config.yaml").write_text(f"algorithm:\n  absent_groups: {absent}\n")
    folder.write_json(folder.DATA, {"group_kind": kind, "group_names": names})
    rows = [",".join(["epoch", "step"] + [f"w_{n}" for n in names])]
    rows += [",".join(map(str, [1, 5 * (i + 1), *w])) for i, w in enumerate(weights)]
    (tmp_path / "run" / folder.WEIGHTS_LOG).write_text("\n".join(rows) + "\n")
    if selection is not None:
        count = len(selection[0]) // 2
        rows = [",".join(["epoch", "step"] + [f"share_{s}" for s in range(count)]
                         + [f"rate_{s}" for s in range(count)])]
        rows += [",".join(map(str, [1, 5 * (i + 1), *r])) for i, r in enumerate(selection)]
        (tmp_path / "run" / folder.SELECTION).write_text("\n".join(rows) + "\n")
    record = {"epoch": 1, "split": "test", "acc": {n: 0.5 for n in names}, "worst_acc": 0.5,
              "group_kind": kind}
    (tmp_path / "run" / folder.EVAL_LOG).write_text(json.dumps(record) + "\n")
    return folder


def test_flat_group_weights_give_no_plot_and_the_agnostic_selection_its_own(tmp_path, monkeypatch):
    import callbacks.plots as P
    from callbacks import finish_run

    drawn, real = {}, P._save

    def save(fig, path):  # keeps each figure's notes
        drawn[os.path.basename(path)] = [t.get_text() for t in fig.texts]
        real(fig, path)

    monkeypatch.setattr(P, "_save", save)
    # groups none (one group at 1.0 throughout): nothing to show, no selection by group
    folder = _finished_folder(tmp_path / "none", [[1.0]] * 3, selection=[[1.0, 0.2]] * 3)
    finish_run(folder)
    assert sorted(os.listdir(os.path.join(folder.path, "plots"))) == ["accuracy_by_group.png"]
    # sharpdro_agnostic with groups: uniform weights, its selection per group instead
    folder = _finished_folder(tmp_path / "agnostic", [[1 / 3] * 3] * 3,
                              selection=[[0.1, 0.3, 0.6, 0.05, 0.2, 0.9]] * 3)
    finish_run(folder)
    assert sorted(os.listdir(os.path.join(folder.path, "plots"))) == [
        "accuracy_by_group.png", "selection.png"]
    # weights that move: plotted, with why a group absent from most batches falls
    folder = _finished_folder(tmp_path / "dro", [[0.3, 0.3, 0.4], [0.4, 0.4, 0.2]], kind="severity")
    finish_run(folder)
    assert sorted(os.listdir(os.path.join(folder.path, "plots"))) == [
        "accuracy_by_severity.png", "group_weights.png"]
    (note,) = drawn["group_weights.png"]
    assert "absent_groups zero" in note and "absent from most batches" in note and "falls" in note


def test_a_run_stopped_after_its_last_checkpoint_is_completed_on_resume(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    os.remove(copy / "done")
    os.remove(copy / "model.mindir")
    train_entry.main(["--resume", str(copy)])
    assert (copy / "done").exists() and (copy / "model.mindir").exists()


def test_eval_on_a_corrupted_benchmark_writes_the_table_and_the_ce(run_dir, tmp_path, capsys):
    """eval.py --benchmark on a CIFAR-10-C-layout folder: the table, .json/.md/.csv in the run
    folder, and against its own results as the baseline every CE is 100 %."""
    from datasets.benchmark import make_benchmark

    rng = np.random.default_rng(0)
    folder = tmp_path / "tiny-c"
    make_benchmark(str(folder), rng.integers(0, 256, (10, 12, 12, 1), dtype=np.uint8),
                   rng.integers(0, 3, 10), ["gaussian_noise", "fog"])
    summary = eval_entry.main(["--run", run_dir, "--benchmark", str(folder)])
    out = capsys.readouterr().out
    prefix = os.path.join(run_dir, "evals", "benchmark_tiny-c_best")
    for ext in (".json", ".md", ".csv"):
        assert os.path.isfile(prefix + ext)
    assert "not found (left out of the means): shot_noise" in out
    assert sorted(summary["acc"]) == ["fog", "gaussian_noise"]
    again = eval_entry.main(["--run", run_dir, "--benchmark", str(folder), "--baseline",
                             prefix + ".json", "--out", str(tmp_path / "again")])
    errors = [1 - a for c in again["acc"].values() for a in c.values()]
    if all(e > 0 for e in errors):
        assert again["mce"] == pytest.approx(1.0)
    with pytest.raises(SystemExit, match=r"images are \(12, 12, 1\), the model takes"):
        eval_entry.main(["--run", run_dir, "--benchmark", str(folder), "--image_size", "16",
                         "--out", str(tmp_path / "bad")])


def test_predict_from_checkpoint_and_mindir_agree(run_dir, tmp_path, capsys):
    """eval.py --predict on a made folder (nested, with a broken file and a text file): the
    checkpoint and the MindIR give the same classes and probabilities; class names come
    from the run; the broken file is listed, not fatal; an empty folder is an error."""
    from PIL import Image

    from datasets.synthetic import read_synthetic

    raw = read_synthetic(image_size=12, channels=1, num_classes=3, seed=5)
    folder = tmp_path / "new"
    (folder / "deeper").mkdir(parents=True)
    for i in range(7):
        Image.fromarray(raw.test.images[i * 40, ..., 0]).save(folder / ("deeper" if i % 2 else ".") / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    (folder / "notes.txt").write_text("x")
    ckpt = eval_entry.main(["--run", run_dir, "--predict", str(folder)])
    out = capsys.readouterr().out
    assert "skipped 1 unreadable image(s): " in out and "broken.jpg" in out
    mindir = eval_entry.main(["--run", run_dir, "--mindir", os.path.join(run_dir, "model.mindir"),
                              "--predict", str(folder)])
    assert os.path.basename(ckpt) == "predictions_new_best.csv"
    assert os.path.basename(mindir) == "predictions_new_model.csv"
    a, b = read_csv(ckpt), read_csv(mindir)
    assert a[0] == b[0] == ["path", "predicted", "probability", "top1", "p1", "top2", "p2", "top3", "p3"]
    assert len(a[1]) == 7 and sorted(r[0] for r in a[1])[0] == "0.png"
    assert any(r[0] == os.path.join("deeper", "1.png") for r in a[1])
    for ra, rb in zip(a[1], b[1]):
        assert ra[0] == rb[0] and ra[1] == rb[1] and ra[1] in ("0", "1", "2")
        np.testing.assert_allclose([float(v) for v in ra[2::2]], [float(v) for v in rb[2::2]], atol=1e-5)
        assert abs(sum(float(v) for v in ra[4::2]) - 1.0) < 1e-4  # top-3 of 3 classes: all of it
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="no image files"):
        eval_entry.main(["--run", run_dir, "--predict", str(empty)])


def test_photon_sweep_falls_with_the_light_and_is_seeded(run_dir, tmp_path):
    from datasets.photons import capture

    argv = ["--run", run_dir, "--photon-sweep", "--photons", "1e7,300,30,3,1"]
    first = eval_entry.main(argv)
    (result,) = first.values()
    again = eval_entry.main(argv)
    assert list(again.values())[0] == result  # the same seed, the same numbers
    accs = [lv["acc"] for lv in result["levels"]]
    n = sum(1 for _ in open(os.path.join(run_dir, "evals", "photon_sweep.csv"))) - 2
    assert n == 5
    assert abs(accs[0] - result["clean"]) <= 2 / 300  # 1e7 photons: the clean images, up to rounding
    assert accs[-1] < result["clean"] - 0.1  # one photon: much worse
    assert all(lower <= upper + 0.05 for upper, lower in zip(accs, accs[1:]))  # falls, within noise
    assert os.path.isfile(os.path.join(run_dir, "plots", "photon_sweep.png"))
    # the protocol's test images before any capture are clean ones
    assert result["reference"] == "clean"
    with open(os.path.join(run_dir, "evals", "photon_sweep.csv")) as f:
        assert f.read().splitlines()[1].startswith("clean,")
    # the simulation itself: unchanged at a huge count, Poisson-noisy at a small one
    img = np.full((1, 8, 8, 1), 128, np.uint8)
    np.testing.assert_array_equal(capture(img, 1e9, rng=0), img)
    grey = np.full((2000, 4, 4, 1), 136, np.uint8)  # a quarter of full scale in linear light
    level = (136 / 255.0) ** 2.2 * 20
    counts = np.round((capture(grey, 20.0, rng=0) / 255.0) ** 2.2 * 20).ravel()  # electrons
    assert abs(counts.mean() - level) < 0.1 and abs(counts.var() - level) < 0.3  # Poisson
