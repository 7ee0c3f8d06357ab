"""Every decision about a run folder taken under its lock, by every writer (a fault pass's
defects 1-6 and 15): the folder held before the data is built and its state decided again
under the lock; a refit never targets another method's unfinished run and reads its
reference under a shared lock; a two-stage run resumed in stage 1 checks what stage 1 was
trained with, and stage 2 refuses a start checkpoint replaced since stage 1."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

import train as train_entry
from callbacks.run_folder import RunFolder, RunFolderError
from helpers import crash_at_epoch_2, tiny

FAST = ["--export_mindir", "false", "--eval_max_batches", "2"]


@pytest.fixture(scope="module")
def source(cache, tmp_path_factory):
    """A finished one-epoch ERM run (copy it before anything may write it)."""
    path = tmp_path_factory.mktemp("source") / "erm"
    train_entry.main(tiny(cache, path, *FAST, "--algorithm.name", "erm", "--epochs", "1"))
    return path


def refit(cache, out, reference, *extra):
    return tiny(cache, out, *FAST, "--algorithm.name", "dfr", "--algorithm.reference",
                str(reference), *extra)


def test_the_folder_is_held_from_before_the_data_is_built(cache, tmp_path, monkeypatch):
    """A second writer of the same new folder is refused while the first builds its data
    (before, the lock came at the first write, and the slower start replaced the faster's
    finished run)."""
    import datasets

    out, seen = tmp_path / "run", []
    real = datasets.build_data

    def slow(*args, **kwargs):
        seen.append(RunFolder(out).holder())
        with pytest.raises(RunFolderError, match="is in use by train.py"):
            with RunFolder(out).lock("second"):
                pass
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "build_data", slow)
    train_entry.main(tiny(cache, out, *FAST, "--epochs", "1"))
    assert seen[0].startswith("train.py (pid") and (out / "done").is_file()


@pytest.mark.parametrize("algorithm", ["erm", "dfr"])
def test_a_run_finished_there_meanwhile_is_not_replaced(cache, source, tmp_path, monkeypatch,
                                                        algorithm):
    """The folder is free and empty when train.py looks; another process finishes a run in
    it before train.py holds it: under the lock the decision is taken again and refused."""
    import callbacks.data as data_module

    out = tmp_path / "run"
    real = data_module.check_choices

    def meanwhile(cfg):
        shutil.copytree(source, out)  # what the other process left: a finished run
        return real(cfg)

    monkeypatch.setattr(data_module, "check_choices", meanwhile)
    argv = refit(cache, out, source) if algorithm == "dfr" else tiny(cache, out, *FAST)
    with pytest.raises(SystemExit, match="already holds a finished run.*written by another "
                                         "process while this one started"):
        train_entry.main(argv)
    assert (out / "done").read_text() == (source / "done").read_text()


def test_a_refit_never_targets_another_methods_unfinished_run(cache, source, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(source / "config.yaml", out / "config.yaml")  # stopped before epoch 1 ended
    with pytest.raises(SystemExit, match="holds an unfinished erm run"):
        train_entry.main(refit(cache, out, source))
    shutil.copytree(source / "checkpoints", out / "checkpoints")
    with pytest.raises(SystemExit, match="holds an unfinished run; continue it with --resume"):
        train_entry.main(refit(cache, out, source))
    assert sorted(os.listdir(out)) == ["checkpoints", "config.yaml"]


def test_a_refit_reads_its_reference_under_a_shared_lock(cache, source, tmp_path):
    """While the reference trains, the refit is refused; while a refit reads it, training
    it on is refused."""
    reference = tmp_path / "reference"
    shutil.copytree(source, reference)
    with RunFolder(reference).lock("train.py"):
        with pytest.raises(SystemExit, match="is in use by train.py"):
            train_entry.main(refit(cache, tmp_path / "out", reference))
    assert not (tmp_path / "out").exists()
    with RunFolder(reference).read_lock():
        with pytest.raises(SystemExit, match="is in use by another process"):
            train_entry.main(["--resume", str(reference), "--train.epochs", "2"])
    assert not (reference / "checkpoints" / "last.ckpt").stat().st_size == 0
    train_entry.main(refit(cache, tmp_path / "out", reference))  # free again: it runs
    import json

    record = json.load(open(tmp_path / "out" / "dfr.json"))
    from sharpdro.atomic import file_sha256

    assert record["source_sha256"] == file_sha256(str(reference / "checkpoints" / "best.ckpt"))


def jtt(cache, out, *extra):
    return tiny(cache, out, *FAST, "--algorithm.name", "jtt", "--epochs", "3", *extra)


def test_a_config_edited_in_stage_1_is_refused_on_resume(cache, tmp_path, monkeypatch):
    from callbacks.fit import kept_checkpoint

    out = tmp_path / "jtt"
    undo = crash_at_epoch_2(monkeypatch)  # in stage 1, after its first checkpoint
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(jtt(cache, out, "--algorithm.first_epochs", "2"))
    undo()
    assert (out / "stage1" / "checkpoints" / "last.ckpt").is_file()
    assert not (out / "checkpoints" / "last.ckpt").exists()
    # a failure now would keep stage 1's checkpoint, and the message says how to go on
    folder = RunFolder(out)
    message = kept_checkpoint(folder, folder)
    assert "stage 1's epoch 1" in message and f"--resume {out}" in message
    text = (out / "config.yaml").read_text()
    for old, new, key in (("seed: 0", "seed: 3", "seed"), ("momentum: 0.9", "momentum: 0.5",
                                                           "optim.momentum")):
        (out / "config.yaml").write_text(text.replace(old, new))
        with pytest.raises(SystemExit, match=f"{key} cannot change on resume"):
            train_entry.main(["--resume", str(out)])
    (out / "config.yaml").write_text(text)
    train_entry.main(["--resume", str(out)])
    assert (out / "done").is_file()


def test_stage_2_refuses_a_start_checkpoint_replaced_since_stage_1(cache, source, tmp_path,
                                                                   monkeypatch):
    import mindspore as ms

    from datasets.build import DataBundle

    start = tmp_path / "start.ckpt"
    shutil.copy(source / "checkpoints" / "last.ckpt", start)
    out = tmp_path / "jtt"
    original = DataBundle.train_epoch

    def crash_in_stage_2(self, epoch):  # stage 2's data repeats the error set
        if self.repeats is not None:
            raise RuntimeError("simulated crash")
        return original(self, epoch)

    monkeypatch.setattr(DataBundle, "train_epoch", crash_in_stage_2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(jtt(cache, out, "--algorithm.first_epochs", "1",
                             "--model.checkpoint", str(start)))
    monkeypatch.setattr(DataBundle, "train_epoch", original)
    params = ms.load_checkpoint(str(start))
    ms.save_checkpoint([{"name": k, "data": v} for k, v in params.items() if k != "run_state"],
                       str(start))  # the same weights, another file
    with pytest.raises(SystemExit, match=r"model.checkpoint .*start.ckpt changed since stage 1"):
        train_entry.main(["--resume", str(out)])
    assert not (out / "checkpoints" / "last.ckpt").exists()


def test_sigterm_during_a_refit_ends_with_a_message(cache, source, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "train.py", *refit(cache, out, source)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "embedding the training and validation images" in line:
                proc.send_signal(signal.SIGTERM)
                break
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted: the dfr refit" in stderr and "--overwrite" in stderr
    assert not (out / "done").exists()
