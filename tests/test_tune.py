"""tune.py: the pick equals a hand computation from the runs' own validation records, a
sweep interrupted midway picks the same on its rerun, and bad input is one line with
nothing trained (issue 33's core)."""
import glob
import json
import os
import shutil

import pytest
import yaml

from helpers import TINY, read_jsonl
from sharpdro import config as C

import tune as tune_py
from callbacks import tune

FAST = [*TINY, "--epochs", "1", "--export_mindir", "false", "--eval_max_batches", "2"]
# erm (one run) + sharpdro over 2 of its 3 rho values, groupdro... : 2 methods x 2 values
METHODS = ["--methods", "sharpdro,groupdro", "--budget", "4"]


def argv(tmp_path, *extra):
    return ["--config", "configs/quickstart.yaml", "--output_root", str(tmp_path / "runs"),
            "--cache_dir", str(tmp_path / "cache"), *FAST, *extra]


def by_hand(root):
    """The pick from each run's eval.jsonl: its validation record at the first epoch of the
    highest worst-group accuracy, then the best (worst, mean), ties to the first in the
    order sharpdro, groupdro and each grid's."""
    runs = [os.path.join(root, "sharpdro", f"rho={v}") for v in (0.02, 0.05)]
    runs += [os.path.join(root, "groupdro", f"eta={v}") for v in (0.001, 0.01)]
    scores = []
    for run in runs:
        val = [r for r in read_jsonl(os.path.join(run, "eval.jsonl")) if r["split"] == "val"]
        best = max(r["worst_acc"] for r in val)
        chosen = next(r for r in val if r["worst_acc"] == best)
        scores.append((chosen["worst_acc"], chosen["mean_acc"]))
    top = max(scores)
    return runs[scores.index(top)]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tune")
    out = tune_py.main(argv(tmp_path, *METHODS))
    return tmp_path, out


def test_the_pick_is_the_hand_computed_one(swept):
    tmp_path, out = swept
    root = str(tmp_path / "runs" / "quickstart-tune")
    assert len(out["rows"]) == 4
    assert out["pick"]["candidate"].run_dir == by_hand(root)
    picked = yaml.safe_load(open(out["tuned"]))
    winner = yaml.safe_load(open(os.path.join(by_hand(root), "config.yaml")))
    assert picked["name"] is None and picked["run_dir"] is None
    assert picked["algorithm"] == winner["algorithm"]
    cfg = C.load_config(out["tuned"])  # ready for train.py --config tuned.yaml
    assert cfg.algorithm.name == winner["algorithm"]["name"]
    report = open(out["report"]).read()
    assert report.count("**yes**") == 1 and "| sharpdro | rho | 0.05 |" in report
    assert os.path.getsize(out["plot"]) > 0


def test_a_rerun_after_a_kill_midway_resumes_and_picks_the_same(swept, capsys):
    tmp_path, out = swept
    root = tmp_path / "runs" / "quickstart-tune"
    before = open(out["tuned"]).read()
    # the state a kill leaves: one run not done (and one never started)
    os.remove(root / "groupdro" / "eta=0.001" / "done")
    shutil.rmtree(root / "groupdro" / "eta=0.01")
    again = tune_py.main(argv(tmp_path, *METHODS))
    lines = capsys.readouterr().out.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 4 and all("ETA" in line for line in progress)
    assert sum("skipped (finished)" in line for line in progress) == 2
    assert open(again["tuned"]).read() == before
    assert again["pick"]["candidate"].run_dir == out["pick"]["candidate"].run_dir


def refuse(tmp_path, capsys, *extra):
    with pytest.raises(SystemExit) as exit_info:
        tune_py.main(argv(tmp_path, *extra))
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert not glob.glob(str(tmp_path / "runs" / "*" / "*" / "*" / "done"))
    assert not os.path.exists(tmp_path / "runs" / "quickstart-tune")
    return message


def test_an_unknown_method_is_one_line_with_a_hint(tmp_path, capsys):
    assert "did you mean 'sharpdro'" in refuse(tmp_path, capsys, "--methods", "sharpdor,erm")


def test_a_budget_below_one_run_per_method_is_one_line(tmp_path, capsys):
    assert "empty grid" in refuse(tmp_path, capsys, "--methods", "erm,sharpdro", "--budget", "1")


def test_a_declared_empty_grid_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tune, "tuned_option", lambda name: ("rho", ()))
    assert "empty grid" in refuse(tmp_path, capsys, "--methods", "sharpdro")


def test_no_validation_set_is_one_line(tmp_path, capsys, monkeypatch):
    from datasets import build

    real = build.prepare_arrays

    def without_validation(cfg):
        arrays = real(cfg)
        arrays.val = {name: (x[:0], y[:0]) for name, (x, y) in arrays.val.items()}
        return arrays

    monkeypatch.setattr(build, "prepare_arrays", without_validation)
    assert "no validation set" in refuse(tmp_path, capsys, "--methods", "erm")


def test_label_free_data_allows_only_label_free_methods(tmp_path, capsys):
    message = refuse(tmp_path, capsys, "--data.groups", "none", "--methods", "groupdro")
    assert "needs group labels" in message


def test_the_budget_keeps_each_grid_s_middle_values():
    methods = [tune.parse_method("sharpdro", "severity"), tune.parse_method("erm", "severity")]
    trimmed, note = tune.apply_budget(methods, 2)
    assert [m.grid for m in trimmed] == [(0.05,), (None,)] and "middle 1" in note
    assert tune.apply_budget(methods, 9) == (methods, None)


# -- successive halving (--halving) ---------------------------------------------------
TWO = ["--epochs", "2", "--eval_every", "1"]


@pytest.fixture(scope="module")
def halved(tmp_path_factory):
    """The same 4 candidates over 2 epochs: trained to the end, and halved at epoch 1."""
    whole = tmp_path_factory.mktemp("whole")
    half = tmp_path_factory.mktemp("half")
    full = tune_py.main(argv(whole, *METHODS, *TWO, "--halving", "0"))
    cut = tune_py.main(argv(half, *METHODS, *TWO, "--halving", "2"))
    return full, cut, half


def val_at(run_dir, epoch):
    return next(r for r in read_jsonl(os.path.join(run_dir, "eval.jsonl"))
                if r["split"] == "val" and r["epoch"] == epoch)


def test_halving_keeps_the_hand_computed_half_and_its_records_are_the_full_runs(halved):
    full, cut, _ = halved
    whole = [r["candidate"].run_dir for r in full["rows"]]
    # by hand, from the uninterrupted runs' epoch-1 records: the best 2 by (worst, mean)
    at1 = [(val_at(d, 1)["worst_acc"], val_at(d, 1)["mean_acc"], -i) for i, d in enumerate(whole)]
    kept = sorted(sorted(range(4), key=lambda i: at1[i], reverse=True)[:2])
    stopped = [r["stopped"] for r in cut["rows"]]
    assert [i for i in range(4) if stopped[i] is None] == kept
    assert [s for s in stopped if s is not None] == [1, 1]
    for i, row in enumerate(cut["rows"]):  # a survivor resumed past its stop = the full run
        got = read_jsonl(os.path.join(row["candidate"].run_dir, "eval.jsonl"))
        want = read_jsonl(os.path.join(whole[i], "eval.jsonl"))
        assert got == (want if i in kept else [r for r in want if r["epoch"] == 1])
    # the pick: the best of the survivors at their selected epochs
    finals = {i: full["rows"][i]["val"] for i in kept}
    best = max(kept, key=lambda i: (finals[i]["worst_acc"], finals[i]["mean_acc"], -i))
    assert tune.label(cut["pick"]["candidate"]) == tune.label(full["rows"][best]["candidate"])
    assert "stopped at epoch" in open(cut["report"]).read()
    assert yaml.safe_load(open(cut["tuned"]))["train"]["until_epoch"] == 0


def test_a_halved_sweep_run_again_trains_nothing_and_picks_the_same(halved, capsys):
    _, cut, half = halved
    before = open(cut["tuned"]).read()
    again = tune_py.main(argv(half, *METHODS, *TWO, "--halving", "2"))
    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(progress) == 6 and all("skipped (" in line for line in progress)
    assert sum("skipped (finished)" in line for line in progress) == 2
    assert open(again["tuned"]).read() == before


def test_a_halving_below_2_is_one_line(tmp_path, capsys):
    assert "--halving 1" in refuse(tmp_path, capsys, "--methods", "erm", "--halving", "1")


def test_a_fixed_option_reaches_the_runs_and_a_misspelt_one_is_one_line(tmp_path, capsys):
    fast = tune.parse_method("sharpdro+balanced+pass2_fraction=0.5", "severity")
    (c, *_), = [tune.candidates([fast], "/r", [])[:1]]
    assert c.args[-4:] == ["--data.sampler", "group_balanced", "--algorithm.pass2_fraction", "0.5"]
    message = refuse(tmp_path, capsys, "--methods", "sharpdro+pass2_fracton=0.5")
    assert "did you mean '+pass2_fraction'" in message
    assert "varies" in refuse(tmp_path, capsys, "--methods", "sharpdro+rho=0.1")


def test_an_anneal_the_run_never_reaches_is_named():
    from callbacks.checks import unreached_anneal

    irm = C.load_config("configs/quickstart.yaml", ["--algorithm.name", "irm", "--epochs", "4"])
    message = unreached_anneal(irm, steps_per_epoch=10)  # 40 steps, anneal_steps 500
    assert "irm_lambda never applies" in message and "40 steps" in message
    assert unreached_anneal(irm, steps_per_epoch=200) is None  # 800 steps
    sharp = C.load_config("configs/quickstart.yaml", ["--epochs", "4"])
    assert unreached_anneal(sharp, steps_per_epoch=10) is None


def test_a_grid_whose_values_change_nothing_is_noted(tmp_path):
    method = tune.parse_method("irm", "severity")
    rows = []
    for value in method.grid:
        run = tmp_path / f"irm_lambda={value}"
        run.mkdir()
        acc = {"a": 0.5, "b": 0.25}
        (run / "eval.jsonl").write_text("".join(
            json.dumps({"epoch": e, "split": "val", "acc": acc, "worst_acc": 0.25,
                        "mean_acc": 0.375}) + "\n" for e in (1, 2)))
        rows.append({"candidate": tune.Candidate(method, value, str(run), [])})
    notes = tune.inert(rows, "val_worst_acc")
    assert len(notes) == 1 and "every irm_lambda of irm" in notes[0]
    (tmp_path / "irm_lambda=10.0" / "eval.jsonl").write_text(
        '{"epoch": 2, "split": "val", "acc": {"a": 0.5, "b": 0.5}, "worst_acc": 0.5, '
        '"mean_acc": 0.5}\n')
    assert tune.inert(rows, "val_worst_acc") == []


@pytest.mark.parametrize("epochs, every, eta, want", [
    (8, 2, 2, [2, 4, 8]), (8, 2, 3, [4, 8]), (4, 2, 2, [2, 4]), (4, 2, 3, [4]),
    (30, 1, 3, [2, 4, 10, 30]), (200, 10, 3, [30, 70, 200]), (8, 2, None, [8]), (4, 5, 2, [4])])
def test_the_rungs_are_evaluation_epochs_eta_apart(epochs, every, eta, want):
    steps = tune.rungs(epochs, every, eta)
    assert steps == want
    assert all(s % every == 0 for s in steps[:-1]) and steps[-1] == epochs


def test_a_rung_keeps_the_best_fraction_in_order_ties_to_the_first():
    records = [{"worst_acc": w, "mean_acc": m} for w, m in
               [(0.5, 0.7), (0.6, 0.6), (0.6, 0.6), (0.4, 0.9), (0.6, 0.65)]]
    assert tune.keep(records, 2, tune.WORST) == [1, 2, 4]      # ceil(5 / 2): by (worst, mean)
    assert tune.keep(records, 3, tune.WORST) == [1, 4]         # tie (1, 2): the first
    assert tune.keep(records, 5, tune.OVERALL) == [3]          # overall: the mean alone
