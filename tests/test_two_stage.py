"""jtt and eiil as one train.py run each (callbacks/stages.py): stage 1 in <run>/stage1 or
from a reference run, the inferred groups in inferred_groups.csv, stage 2 resumed exactly
after a kill in either stage, label-free training, and the bad inputs."""
import csv
import os

import numpy as np
import pytest

import train as train_entry
from helpers import read_jsonl, tiny

# small and short: stage 2 of jtt repeats the error set, so keep upweight low
FAST = ["--num_per_class", "60", "--export_mindir", "false", "--algorithm.upweight", "2",
        "--eval_max_batches", "2",
        "--algorithm.eiil_steps", "300"]


def two_stage(cache, run_dir, algorithm, *extra):
    return tiny(cache, run_dir, "--algorithm.name", algorithm, *FAST, *extra)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def weights(run_dir, name="last"):
    from sharpdro.checkpoint import read_checkpoint

    saved = read_checkpoint(os.path.join(run_dir, "checkpoints", f"{name}.ckpt"))
    return {k: v.asnumpy() for k, v in saved.items() if k != "run_state"}


def assert_same_weights(a, b, skip=()):
    want, got = weights(a), weights(b)
    assert set(want) == set(got)
    for name in want:
        if name.startswith(skip):
            continue
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def crash_when(monkeypatch, predicate):
    """train.py crashes when it builds an epoch's data for which predicate(bundle, epoch)."""
    from datasets.build import DataBundle

    original = DataBundle.train_epoch

    def crashing(self, epoch):
        if predicate(self, epoch):
            raise RuntimeError("simulated crash")
        return original(self, epoch)

    monkeypatch.setattr(DataBundle, "train_epoch", crashing)
    return lambda: monkeypatch.setattr(DataBundle, "train_epoch", original)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted jtt run and one eiil run, 3 epochs (stage 1: 2 epochs)."""
    root = tmp_path_factory.mktemp("two_stage")
    cache = str(root / "cache")
    out = {}
    for algorithm in ("jtt", "eiil"):
        out[algorithm] = str(root / algorithm)
        train_entry.main(two_stage(cache, out[algorithm], algorithm, "--epochs", "3",
                                   "--algorithm.first_epochs", "2"))
    out["cache"] = cache
    return out


@pytest.mark.parametrize("algorithm", ["jtt", "eiil"])
def test_stage1_is_a_run_folder_and_the_inferred_groups_come_from_its_model(runs, algorithm):
    from datasets import build_data
    from sharpdro import config as C
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.label_free import eiil_environments, irm_terms

    run = runs[algorithm]
    stage1 = os.path.join(run, "stage1")
    assert os.path.isfile(os.path.join(stage1, "done"))
    used = C.load_config(os.path.join(stage1, "config.yaml"))
    assert used.algorithm.name == "erm" and used.train.epochs == 2
    assert [r["epoch"] for r in read_jsonl(os.path.join(stage1, "eval.jsonl"))
            if r["split"] == "val"] == [1, 2]
    # the CSV is what the stage-1 model computes on the training images
    cfg = C.load_config(os.path.join(run, "config.yaml"))
    data = build_data(cfg)
    net = create_trained_model(cfg.model, data.num_classes, data.in_channels,
                               os.path.join(stage1, "checkpoints", "last.ckpt"))
    from callbacks.stages import training_logits

    logits = training_logits(net, data, 64)
    labels = data.arrays.train[1]
    rows = read_rows(os.path.join(run, "inferred_groups.csv"))
    assert len(rows) == len(labels)
    assert [int(r["label"]) for r in rows] == labels.tolist()
    assert [r["severity"] for r in rows] == [str(g) for g in data.arrays.train[2]]
    if algorithm == "jtt":
        errors = (logits.argmax(1) != labels).astype(int)
        assert [int(r["in_error_set"]) for r in rows] == errors.tolist()
        assert 0 < errors.sum() < len(labels)
    else:
        env, _, _ = eiil_environments(irm_terms(logits, labels), 300, cfg.algorithm.eiil_lr,
                                      cfg.seed)
        assert [int(r["environment"]) for r in rows] == env.tolist()
        # stage 2's GroupDRO weighs the two inferred environments
        with open(os.path.join(run, "group_weights.csv")) as f:
            assert f.readline().strip() == "epoch,step,w_env0,w_env1"
    assert len(read_jsonl(os.path.join(run, "eval.jsonl"))) == 6  # 3 epochs x val, test


@pytest.mark.parametrize("algorithm,stage", [("jtt", 1), ("eiil", 2)])
def test_a_kill_in_either_stage_resumes_to_the_uninterrupted_run(runs, tmp_path, monkeypatch,
                                                                 algorithm, stage, capsys):
    resumed = str(tmp_path / "resumed")
    if stage == 1:  # in stage 1's second epoch (its first checkpoint written)
        undo = crash_when(monkeypatch, lambda data, epoch: epoch == 1 and data.num_groups == 6
                          and not os.path.exists(os.path.join(resumed, "stage1", "done")))
    else:  # in stage 2's second epoch
        undo = crash_when(monkeypatch, lambda data, epoch: epoch == 1
                          and os.path.exists(os.path.join(resumed, "stage1", "done")))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(two_stage(runs["cache"], resumed, algorithm, "--epochs", "3",
                                   "--algorithm.first_epochs", "2"))
    undo()
    assert os.path.exists(os.path.join(resumed, "stage1", "done")) == (stage == 2)
    with pytest.raises(SystemExit, match="unfinished run; continue it with --resume"):
        train_entry.main(two_stage(runs["cache"], resumed, algorithm, "--epochs", "3",
                                   "--algorithm.first_epochs", "2"))
    capsys.readouterr()
    train_entry.main(["--resume", resumed])
    out = capsys.readouterr().out
    assert ("stage 1: done" in out) == (stage == 2)
    assert_same_weights(os.path.join(runs[algorithm], "stage1"), os.path.join(resumed, "stage1"))
    assert_same_weights(runs[algorithm], resumed)
    assert read_rows(os.path.join(resumed, "inferred_groups.csv")) == \
        read_rows(os.path.join(runs[algorithm], "inferred_groups.csv"))
    assert read_jsonl(os.path.join(resumed, "eval.jsonl")) == \
        read_jsonl(os.path.join(runs[algorithm], "eval.jsonl"))


def test_a_reference_run_is_used_as_stage_1_without_training_one(runs, tmp_path, capsys):
    """jtt's stage 1 is an ERM run: eiil given it as the reference infers from it, trains
    no stage 1 of its own, and ends where the run that trained the same stage 1 ended."""
    run = str(tmp_path / "eiil")
    capsys.readouterr()
    train_entry.main(two_stage(runs["cache"], run, "eiil", "--epochs", "3",
                               "--algorithm.reference", os.path.join(runs["jtt"], "stage1")))
    assert "stage 1: ERM" not in capsys.readouterr().out
    assert not os.path.exists(os.path.join(run, "stage1"))
    assert read_rows(os.path.join(run, "inferred_groups.csv")) == \
        read_rows(os.path.join(runs["eiil"], "inferred_groups.csv"))
    assert_same_weights(runs["eiil"], run)


@pytest.mark.parametrize("algorithm", ["jtt", "eiil", "cvar", "sharpdro_agnostic"])
def test_label_free_runs_never_read_the_training_groups(runs, tmp_path, monkeypatch, algorithm):
    """The same run with the training groups permuted ends with bit-identical weights:
    only the evaluation (by the validation and test groups) and the diagnostics read them."""
    import datasets.build as build

    original = build.prepare_arrays

    def permuted(cfg):
        arrays = original(cfg)
        images, labels, groups = arrays.train
        arrays.train = (images, labels, np.random.default_rng(7).permutation(groups))
        return arrays

    plain, shuffled = str(tmp_path / "plain"), str(tmp_path / "shuffled")
    extra = ("--epochs", "2", "--eval_every", "2")
    train_entry.main(two_stage(runs["cache"], plain, algorithm, *extra))
    monkeypatch.setattr(build, "prepare_arrays", permuted)
    train_entry.main(two_stage(runs["cache"], shuffled, algorithm, *extra))
    # everything but the per-group diagnostics of the last step (what was seen, not used)
    assert_same_weights(plain, shuffled, skip=("last_group_",))


def bundle(groups, names, labels=None):
    from datasets.build import Arrays, DataBundle

    n = len(groups)
    labels = np.zeros(n, np.int64) if labels is None else labels
    arrays = Arrays(train=(np.zeros((n, 2, 2, 1), np.uint8), labels, np.asarray(groups)),
                    val={}, test={}, class_names=["a", "b"], group_names=names,
                    group_kind="group", mean=(0.0,), std=(1.0,),
                    train_counts=np.bincount(groups, minlength=len(names)).tolist())
    return DataBundle(arrays=arrays, batch_size=2, seed=0, random_crop=False, val={}, test={})


@pytest.mark.parametrize("right,message", [
    (True, "the error set holds all of the 4 training images"),
    (False, "the error set holds none of the 4 training images"),
])
def test_an_empty_or_full_error_set_is_a_warning(right, message):
    from sharpdro import config as C
    from callbacks.stages import between_stages

    cfg = C.load_config(None, {"algorithm.name": "jtt"})
    logits = np.tile([[0.0, 1.0]] if right else [[1.0, 0.0]], (4, 1))
    new, rows, lines = between_stages(cfg, bundle([0, 0, 1, 1], ["x", "y"]), logits, 0)
    assert any(line.startswith("warning:") and message in line for line in lines)
    assert new.epoch_length == (4 * 20 if right else 4)
    # the true groups are read only for the table
    assert any(line.split()[:2] == ["y", "2"] for line in lines)


def test_eiil_putting_everything_in_one_environment_is_a_warning(monkeypatch):
    from sharpdro import config as C
    from callbacks import stages

    cfg = C.load_config(None, {"algorithm.name": "eiil"})
    from sharpdro import label_free

    monkeypatch.setattr(label_free, "eiil_environments",
                        lambda d, steps, lr, seed: (np.zeros(len(d), np.int64), np.zeros(len(d)), 0.0))
    new, _, lines = stages.between_stages(cfg, bundle([0, 1, 1], ["x", "y"]),
                                          np.zeros((3, 2)), 0)
    assert any("EIIL put all 3 training images in one environment" in line for line in lines)
    assert new.train_counts == [3, 0] and new.group_names == ["env0", "env1"]


@pytest.mark.parametrize("extra,message", [
    (["--algorithm.first_epochs", "2"], "algorithm.first_epochs 2 must be at least 1 and below "
                                        "train.epochs 2"),
    (["--algorithm.first_epochs", "-1"], "algorithm.first_epochs: -1 must be >= 0"),
    (["--sampler", "group_balanced"], "jtt is label-free and data.sampler group_balanced reads "
                                      "group labels"),
    (["--algorithm.reference", "/nonexistent"], "is not a run folder with a checkpoint"),
    (["--algorithm.upweight", "0"], "algorithm.upweight: 0 must be >= 1"),
])
def test_bad_two_stage_input_is_one_line_and_writes_nothing(runs, tmp_path, extra, message):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=message):
        train_entry.main(two_stage(runs["cache"], out, "jtt", "--epochs", "2", *extra))
    assert not out.exists()


@pytest.mark.parametrize("reference,extra,message", [
    ("jtt", [], "is a jtt run; stage 1 of jtt must be an ERM run"),
    ("jtt/stage1", ["--seed", "3"], "is not a run of the same data, model and seed: seed is 0 "
                                    "there and 3 here"),
    ("jtt/stage1", ["--num_classes", "4"], "data.num_classes is 3 there and 4 here"),
])
def test_a_reference_that_is_not_an_erm_run_of_the_same_data_is_refused(runs, tmp_path, reference,
                                                                        extra, message):
    out = tmp_path / "run"
    ref = os.path.join(os.path.dirname(runs["jtt"]), reference)
    with pytest.raises(SystemExit, match=message):
        train_entry.main(two_stage(runs["cache"], out, "jtt", "--epochs", "2",
                                   "--algorithm.reference", ref, *extra))
    assert not out.exists()


@pytest.mark.parametrize("algorithm,stage2", [("jtt", "erm"), ("eiil", "groupdro")])
def test_the_two_stage_cells_are_their_stage_2_steps(algorithm, stage2):
    """create_train_step("jtt"/"eiil") is stage 2's step: two steps equal erm's / groupdro's
    bit for bit (the stage options are read by the application, not by the cell)."""
    from helpers import batch, initial_params, make_cell, run

    cells = [make_cell(name, initial_params()) for name in (algorithm, stage2)]
    for step in range(2):
        for cell in cells:
            run(cell, *batch(step))
    for a, b in zip(cells[0].get_parameters(), cells[1].get_parameters()):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy(), err_msg=a.name)
