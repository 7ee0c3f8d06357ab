"""A run folder that nothing corrupts or lies about: one writer at a time, what a resume may
change (and that the change is what trains), no temporary files left behind, the user's
file modes and folder permissions, torn log lines, non-finite numbers, and one-line errors
where things cannot be written."""
import json
import os
import shutil
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import eval as eval_entry
import export as export_entry
import train as train_entry
from callbacks.run_folder import RunFolder
from helpers import crash_at_epoch_2, read_jsonl, tiny

# a constant learning rate: a run extended on resume equals one trained that long
CONSTANT = ["--schedule", "constant", "--export_mindir", "false"]
UNWRITABLE = "/sys/sharpdro-test"  # cannot be created, not even by root


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def two_epochs(cache, tmp_path_factory):
    """An uninterrupted two-epoch run."""
    path = tmp_path_factory.mktemp("two") / "run"
    train_entry.main(tiny(cache, path, *CONSTANT))
    return path


@pytest.fixture(scope="module")
def one_epoch(cache, tmp_path_factory):
    """The same run, finished after its first epoch (copy it before resuming)."""
    path = tmp_path_factory.mktemp("one") / "run"
    train_entry.main(tiny(cache, path, *CONSTANT, "--epochs", "1"))
    return path


def copy_run(source, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(source, target)
    return target


def weights(path):
    from sharpdro.checkpoint import read_checkpoint

    return {k: v.asnumpy() for k, v in read_checkpoint(str(path)).items() if k != "run_state"}


def log_rows(path):
    """train_log.csv rows without the timing columns."""
    lines = open(path).read().splitlines()
    header = lines[0].split(",")
    drop = {header.index("seconds"), header.index("train_seconds")}
    return [[v for i, v in enumerate(line.split(",")) if i not in drop] for line in lines]


def dead_pid():
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def listing(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, files in os.walk(folder) for f in files)


# -- one writer ------------------------------------------------------------------------
def test_a_second_train_is_refused_while_the_first_runs_and_the_first_is_intact(cache, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "train.py", *tiny(cache, out, *CONSTANT, "--epochs", "3")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while RunFolder(out).holder() is None:  # it holds the folder before writing to it
            assert first.poll() is None, first.communicate()
            assert time.time() < deadline
            time.sleep(0.1)
        with pytest.raises(SystemExit, match=rf"{out} is in use by train.py \(pid {first.pid} on "
                                             r"\S+, since \d{4}-\d\d-\d\dT"):
            train_entry.main(tiny(cache, out, *CONSTANT, "--lr", "0.001"))
        stdout, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    records = read_jsonl(str(out / "eval.jsonl"))
    assert [(r["epoch"], r["split"]) for r in records] == [
        (e, s) for e in (1, 2, 3) for s in ("val", "test")]
    steps = [int(row[1]) for row in log_rows(out / "train_log.csv")[1:]]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    assert "lr: 0.03" in (out / "config.yaml").read_text()
    assert RunFolder(out).holder() is None  # released at the end


def test_eval_and_export_are_refused_while_the_folder_is_held(two_epochs):
    before = listing(two_epochs)
    with RunFolder(two_epochs).lock("a test"):
        for entry in (eval_entry, export_entry):
            with pytest.raises(SystemExit, match=r"is in use by a test \(pid"):
                entry.main(["--run", str(two_epochs)])
    assert listing(two_epochs) == before


def test_the_lock_of_a_killed_process_is_free(tmp_path):
    folder = tmp_path / "run"
    code = ("import sys, time\nfrom callbacks.run_folder import RunFolder\n"
            "with RunFolder(sys.argv[1]).lock('holder'):\n"
            "    print('held', flush=True)\n    time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert RunFolder(folder).holder().startswith(f"holder (pid {holder.pid} on ")
    finally:
        holder.kill()  # SIGKILL: no chance to release anything
        holder.wait()
    assert RunFolder(folder).holder() is None
    with RunFolder(folder).lock("next"):
        assert RunFolder(folder).holder().startswith("next")


# -- what a resume may change ----------------------------------------------------------
def test_more_epochs_on_resume_equal_an_uninterrupted_run(one_epoch, two_epochs, tmp_path, capsys):
    out = copy_run(one_epoch, tmp_path)
    train_entry.main(["--resume", str(out), "--train.epochs", "2"])
    assert capsys.readouterr().out.count("resume: train.epochs 1 -> 2") == 1  # not again under the lock
    want, got = weights(two_epochs / "checkpoints" / "last.ckpt"), weights(out / "checkpoints" / "last.ckpt")
    assert set(want) == set(got)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert read_jsonl(str(out / "eval.jsonl")) == read_jsonl(str(two_epochs / "eval.jsonl"))
    # the same rows, plus the one the one-epoch run wrote at its last step (22)
    rows = log_rows(out / "train_log.csv")
    assert [r for r in rows if r[1] != "22"] == log_rows(two_epochs / "train_log.csv")
    assert (out / "done").exists() and "epochs: 2" in (out / "config.yaml").read_text()


def test_a_run_stopped_by_until_epoch_resumes_to_the_uninterrupted_run(cache, tmp_path, capsys):
    """tune.py --halving's premise: until_epoch stops a run without shortening its (cosine)
    schedule, and the run resumed past it is the uninterrupted one, weights and records."""
    cosine = ["--schedule", "cosine", "--export_mindir", "false"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    train_entry.main(tiny(cache, whole, *cosine))
    train_entry.main(tiny(cache, cut, *cosine, "--until_epoch", "1"))
    assert (cut / "done").exists() and {r["epoch"] for r in read_jsonl(str(cut / "eval.jsonl"))} == {1}
    with pytest.raises(SystemExit, match="finished run; nothing to resume"):
        train_entry.main(["--resume", str(cut), "--until_epoch", "1"])
    train_entry.main(["--resume", str(cut), "--until_epoch", "0"])
    want, got = weights(whole / "checkpoints" / "last.ckpt"), weights(cut / "checkpoints" / "last.ckpt")
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert read_jsonl(str(cut / "eval.jsonl")) == read_jsonl(str(whole / "eval.jsonl"))
    assert [r for r in log_rows(cut / "train_log.csv") if r[1] != "22"] == \
        log_rows(whole / "train_log.csv")


def test_a_new_learning_rate_on_resume_is_the_one_used_and_recorded(one_epoch, two_epochs, tmp_path):
    out = copy_run(one_epoch, tmp_path)
    train_entry.main(["--resume", str(out), "--epochs", "2", "--optim.lr", "0.003"])
    from sharpdro.checkpoint import read_run_state

    # the optimizer's per-step rates are the new schedule, and the config says so everywhere
    np.testing.assert_allclose(weights(out / "checkpoints" / "last.ckpt")["learning_rate"], 0.003)
    assert "lr: 0.003" in (out / "config.yaml").read_text()
    assert "lr: 0.003" in read_run_state(str(out / "checkpoints" / "last.ckpt"))["config"]
    rows = log_rows(out / "train_log.csv")
    lr = rows[0].index("lr")
    assert {r[lr] for r in rows[1:] if r[0] == "1"} == {"0.03"}
    assert {r[lr] for r in rows[1:] if r[0] == "2"} == {"0.003"}
    # and it trained at that rate: epoch 2 differs from the run that went on at 0.03
    ours, theirs = read_jsonl(str(out / "eval.jsonl")), read_jsonl(str(two_epochs / "eval.jsonl"))
    assert ours[:2] == theirs[:2] and ours[2:] != theirs[2:]


@pytest.mark.parametrize("change,message", [
    (["--algorithm.rho", "0.1"], r"algorithm.rho cannot change on resume \(the checkpoint was "
                                 r"trained with 0.05, now 0.1\)"),
    (["--data.num_per_class", "100"], "data.num_per_class cannot change on resume"),
    ("seed: 0\n", "seed cannot change on resume"),  # config.yaml edited by hand
    ([], r"holds a finished run; nothing to resume \(raise --train.epochs"),
])
def test_other_changes_on_resume_are_refused_with_nothing_written(one_epoch, tmp_path, change, message):
    out = copy_run(one_epoch, tmp_path)
    argv = ["--resume", str(out)]
    if isinstance(change, str):
        config = out / "config.yaml"
        config.write_text(config.read_text().replace("seed: 0\n", "seed: 7\n"))
    else:
        argv += change + (["--epochs", "2"] if change else [])
    before = {f: os.path.getmtime(out / f) for f in listing(out)}
    with pytest.raises(SystemExit, match=message) as info:
        train_entry.main(argv)
    assert info.value.code not in (0, None)
    assert {f: os.path.getmtime(out / f) for f in listing(out)} == before


# -- temporary files and modes ---------------------------------------------------------
def test_what_a_killed_writer_left_is_removed_when_the_run_resumes(cache, tmp_path, monkeypatch, two_epochs):
    out = tmp_path / "run"
    undo = crash_at_epoch_2(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(tiny(cache, out, *CONSTANT))
    undo()
    # killed between MindSpore's own temporary write and the renames: our private folder
    # with MindSpore's <name>.tmp in it, and the names of earlier versions beside it
    dead = dead_pid()
    private = out / "checkpoints" / f".last.ckpt.tmp{dead}-k1ll3d00"
    private.mkdir()
    (private / "last.tmp").write_bytes(b"\0" * 4096)
    (out / "checkpoints" / f"last.tmp{dead}.tmp").write_bytes(b"\0" * 4096)
    (out / f".eval.jsonl.tmp{dead}-k1ll3d00").mkdir()
    live = out / "checkpoints" / f".best.ckpt.tmp{os.getppid()}-l1ve0000"  # a live writer's
    live.mkdir()
    train_entry.main(["--resume", str(out)])
    assert sorted(os.listdir(out / "checkpoints")) == sorted(["best.ckpt", "last.ckpt", live.name])
    assert not [n for n in os.listdir(out) if ".tmp" in n]
    assert read_jsonl(str(out / "eval.jsonl")) == read_jsonl(str(two_epochs / "eval.jsonl"))


def test_checkpoints_and_logs_have_the_users_file_mode(two_epochs):
    mask = os.umask(0)
    os.umask(mask)
    for name in ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "eval.jsonl", "config.yaml"):
        assert stat.S_IMODE(os.stat(two_epochs / name).st_mode) == 0o666 & ~mask, name


@pytest.mark.parametrize("file_format,relative", [("ONNX", False), ("ONNX", True), ("MINDIR", False)])
def test_export_leaves_a_shared_folder_shared_and_the_file_readable(two_epochs, tmp_path, monkeypatch,
                                                                     file_format, relative):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    monkeypatch.chdir(shared) if relative else None
    target = "model" if relative else str(shared / "model")
    mask = os.umask(0o002)
    try:
        path = export_entry.main(["--run", str(two_epochs), "--format", file_format, "--file", target])
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o664
    assert os.listdir(shared) == [os.path.basename(path)]


# -- damaged logs ----------------------------------------------------------------------
def test_a_torn_last_log_line_is_dropped_on_resume(cache, tmp_path, monkeypatch, capsys, two_epochs):
    out = tmp_path / "run"
    undo = crash_at_epoch_2(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(tiny(cache, out, *CONSTANT))
    undo()
    with open(out / "eval.jsonl", "a") as f:
        f.write('{"epoch": 2, "step": 40, "spl')  # a crash while appending
    with open(out / "train_log.csv", "a") as f:
        f.write("2,25,0.51")
    train_entry.main(["--resume", str(out)])
    assert "dropped the incomplete last line of" in capsys.readouterr().err
    assert read_jsonl(str(out / "eval.jsonl")) == read_jsonl(str(two_epochs / "eval.jsonl"))
    assert log_rows(out / "train_log.csv") == log_rows(two_epochs / "train_log.csv")


def test_a_damaged_line_inside_a_log_is_an_error_naming_it(cache, tmp_path, monkeypatch):
    out = tmp_path / "run"
    undo = crash_at_epoch_2(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(tiny(cache, out, *CONSTANT))
    undo()
    lines = (out / "eval.jsonl").read_text().splitlines(keepends=True)
    (out / "eval.jsonl").write_text(lines[0] + "#garbage\n" + "".join(lines[1:]))
    with pytest.raises(SystemExit, match=r"eval.jsonl, line 2: not a JSON record"):
        train_entry.main(["--resume", str(out)])


# -- non-finite numbers ----------------------------------------------------------------
def test_a_non_finite_evaluation_is_never_best_and_stops_the_run(cache, tmp_path, monkeypatch):
    import callbacks.evaluation as evaluation

    real, calls = evaluation.predict_set, []

    def nan_from_epoch_2(predict, data, max_batches=0):
        preds, labels, nll = real(predict, data, max_batches)
        calls.append(1)
        return preds, labels, (nll if len(calls) <= 12 else float("nan"))  # 2 splits x 6 severities

    monkeypatch.setattr(evaluation, "predict_set", nan_from_epoch_2)
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"evaluation after epoch 2: the val loss at severity 0 is "
                                         r"nan .*last good checkpoint is kept: epoch 1 \(step 22\)"):
        train_entry.main(tiny(cache, out, *CONSTANT))
    from sharpdro.checkpoint import read_run_state

    assert [r["epoch"] for r in read_jsonl(str(out / "eval.jsonl"))] == [1, 1]
    assert "NaN" not in (out / "eval.jsonl").read_text()
    assert read_run_state(str(out / "checkpoints" / "best.ckpt"))["epoch"] == 1
    assert read_run_state(str(out / "checkpoints" / "last.ckpt"))["epoch"] == 1
    assert not (out / "done").exists()


def test_a_nan_loss_before_any_checkpoint_says_there_is_none(cache, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"training loss is (nan|inf|-inf) at step \d+ of epoch 1; "
                                         r"stopped. No checkpoint was written"):
        train_entry.main(tiny(cache, out, "--algorithm.name", "erm", "--lr", "1e30"))


# -- one line where things cannot be written -------------------------------------------
@pytest.mark.parametrize("case,message", [
    ("nan_lr", "optim.lr: nan is not a finite number"),
    ("inf_rho", "algorithm.rho: inf is not a finite number"),
    ("run_dir_is_a_file", "is a file, not a folder"),
    ("config_is_a_folder", "is a folder; give a YAML file"),
    ("cache_unwritable", f"cannot write {UNWRITABLE}"),
    ("run_folder_unwritable", f"cannot write the run folder {UNWRITABLE}"),
])
def test_what_cannot_be_used_is_one_line_and_nothing_is_written(cache, tmp_path, case, message):
    out = tmp_path / "run"
    argv = {
        "nan_lr": tiny(cache, out, "--optim.lr", "nan"),
        "inf_rho": tiny(cache, out, "--algorithm.rho", ".inf"),
        "run_dir_is_a_file": tiny(cache, out),
        "config_is_a_folder": ["--config", str(tmp_path), "--run_dir", str(out)],
        "cache_unwritable": tiny(UNWRITABLE, out),
        "run_folder_unwritable": tiny(cache, UNWRITABLE),
    }[case]
    if case == "run_dir_is_a_file":
        out.write_text("not a folder")
    with pytest.raises(SystemExit, match=message) as info:
        train_entry.main(argv)
    assert info.value.code not in (0, None) and "\n" not in str(info.value.code)
    assert (out.read_text() == "not a folder") if case == "run_dir_is_a_file" else not out.exists()


def test_a_full_disk_during_training_is_one_line_naming_what_is_kept(cache, tmp_path, monkeypatch):
    import callbacks.progress as progress

    real, calls = progress.append_row, []

    def fills_up(path, header, row):
        calls.append(row)
        if row[0] == 2:  # epoch 2: the disk is full
            raise OSError(28, "No space left on device", path)
        real(path, header, row)

    monkeypatch.setattr(progress, "append_row", fills_up)
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"cannot write .*train_log.csv: No space left on device. "
                                         r"The last good checkpoint is kept: epoch 1") as info:
        train_entry.main(tiny(cache, out, *CONSTANT))
    assert "\n" not in str(info.value.code)


def test_unavailable_device_is_one_line(cache, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "train.py", *tiny(cache, out, "--device_target", "GPU")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: device_target GPU is not available here: MindSpore " + done.stderr.split("MindSpore ")[1]
        .split(" ")[0] + " on this machine runs on CPU (the GPU backend needs its drivers; see "
        "MindSpore's installation guide)"]
    assert not out.exists()


def test_eval_and_export_to_an_unwritable_place_are_one_line(two_epochs):
    with pytest.raises(SystemExit, match=f"error: cannot write {UNWRITABLE}"):
        eval_entry.main(["--run", str(two_epochs), "--out", f"{UNWRITABLE}/result"])
    with pytest.raises(SystemExit, match=f"error: cannot write {UNWRITABLE}"):
        export_entry.main(["--run", str(two_epochs), "--file", f"{UNWRITABLE}/model"])


def test_ctrl_c_in_eval_is_one_line_and_writes_nothing(two_epochs, monkeypatch, capsys):
    import callbacks.evaluation as evaluation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "evaluate_by_severity", interrupted)
    before = listing(two_epochs)
    with pytest.raises(SystemExit) as info:
        eval_entry.main(["--run", str(two_epochs)])
    assert info.value.code == 130
    assert capsys.readouterr().err.strip() == "eval.py interrupted; no result was written"
    assert listing(two_epochs) == before


# -- eval.py --benchmark checks every file first ---------------------------------------
def test_benchmark_files_are_all_checked_before_any_is_evaluated(two_epochs, tmp_path, monkeypatch):
    import callbacks.benchmark_report as corrupted

    evaluated = []
    real = corrupted.predict_set
    monkeypatch.setattr(corrupted, "predict_set", lambda *a, **k: evaluated.append(1) or real(*a, **k))
    bench = tmp_path / "bench"
    bench.mkdir()
    good = np.zeros((5 * 4, 12, 12), np.uint8)
    np.save(bench / "labels.npy", np.zeros(4, np.int64))
    np.save(bench / "gaussian_noise.npy", good)
    np.save(bench / "jpeg_compression.npy", good[:, :8])  # the last one evaluated: wrong shape
    with pytest.raises(SystemExit, match=r"jpeg_compression.npy: images are \(8, 12, 1\)"):
        eval_entry.main(["--run", str(two_epochs), "--benchmark", str(bench)])
    assert evaluated == []
    (bench / "jpeg_compression.npy").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(SystemExit, match=r"jpeg_compression.npy is not a readable NumPy .npy file"):
        eval_entry.main(["--run", str(two_epochs), "--benchmark", str(bench)])
    assert evaluated == []


def test_benchmark_writer_refuses_a_negative_count(tmp_path):
    from datasets.benchmark import main

    with pytest.raises(SystemExit) as info:
        main(["--config", "configs/quickstart.yaml", "--out", str(tmp_path / "c"), "--num", "-5"])
    assert info.value.code == 2 and not (tmp_path / "c").exists()
