"""benchmarks/reproduce.py and benchmarks/flatness.py: the parts that compute something."""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import flatness  # noqa: E402
import readme_outputs  # noqa: E402
import reproduce  # noqa: E402


class Quadratic:
    """L(theta) = 0.5 theta' A theta + b' theta: the Landscape interface with known answers."""

    def __init__(self, a, b, theta0):
        self.a, self.b, self.theta0 = a, b, theta0

    def loss_grad(self, theta, grad=True):
        return 0.5 * theta @ self.a @ theta + self.b @ theta, self.a @ theta + self.b

    def loss(self, theta):
        return self.loss_grad(theta)[0]


def test_flatness_measures_on_a_quadratic():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    eig = np.array([9.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    a = q @ np.diag(eig) @ q.T
    land = Quadratic(a, rng.normal(size=6), rng.normal(size=6))
    got = flatness.measure(land, rho=0.1, directions=20000, power_iters=100)
    g = a @ land.theta0 + land.b
    step = 0.1 * g / np.linalg.norm(g)
    assert got["grad_rise"] == pytest.approx(g @ step + 0.5 * step @ a @ step, rel=1e-9)
    # a random unit direction: E[rise] = rho^2 / 2 * trace(A) / n (the linear term averages out)
    assert got["random_rise"] == pytest.approx(0.01 / 2 * eig.sum() / 6, abs=3e-3)
    assert got["top_eigenvalue"] == pytest.approx(9.0, rel=1e-6)


def _write_run(folder, val_worst, test_worst):
    from sharpdro import config as C

    os.makedirs(folder)
    C.save_config(C.load_config(None), os.path.join(folder, "config.yaml"))
    with open(os.path.join(folder, "done"), "w") as f:
        f.write("finished\n")
    with open(os.path.join(folder, "eval.jsonl"), "w") as f:
        for epoch, (v, t) in enumerate(zip(val_worst, test_worst), start=1):
            for split, worst in (("val", v), ("test", t)):
                acc = {"0": worst + 0.1, "1": worst}
                f.write(json.dumps({"epoch": epoch, "split": split, "acc": acc,
                                    "mean_acc": (2 * worst + 0.1) / 2, "worst_acc": worst}) + "\n")


def test_selection_is_by_validation_and_statistics_over_seeds(tmp_path):
    _write_run(tmp_path / "a", val_worst=[0.5, 0.7, 0.6], test_worst=[0.1, 0.2, 0.3])
    best, last = reproduce.selected_test(str(tmp_path / "a"))
    assert best["epoch"] == 2 and best["worst_acc"] == 0.2  # the best validation epoch
    assert last["epoch"] == 3
    # a tie keeps the earlier epoch, as train.py's best.ckpt does (one rule for both)
    _write_run(tmp_path / "tie", val_worst=[0.5, 0.7, 0.7], test_worst=[0.1, 0.2, 0.3])
    assert reproduce.selected_test(str(tmp_path / "tie"))[0]["epoch"] == 2
    from callbacks.state import RunState

    state = RunState(10, 3)
    assert [state.offer(v, e) for e, v in enumerate([0.5, 0.7, 0.7], 1)] == [True, True, False]
    assert state.best_epoch == 2
    summary = reproduce.summarise([{"acc": {"0": 0.5, "1": 0.2}, "mean_acc": 0.35, "worst_acc": 0.2},
                                   {"acc": {"0": 0.7, "1": 0.4}, "mean_acc": 0.55, "worst_acc": 0.4}])
    assert summary["columns"] == ["0", "1", "mean", "worst"]
    np.testing.assert_allclose(summary["mean"], [60, 30, 45, 30])
    np.testing.assert_allclose(summary["std"], [np.std([50, 70], ddof=1)] * 4)


def test_sweep_runs_skips_finished_runs_and_reports(tmp_path, capsys):
    argv = ["--config", "configs/quickstart.yaml", "--algorithms", "erm,sharpdro_agnostic",
            "--seeds", "0,1", "--runs_root", str(tmp_path / "runs"), "--results",
            str(tmp_path / "results"), "--name", "tiny",
            "--data.dataset", "synthetic", "--image_size", "8", "--channels", "1",
            "--num_classes", "3", "--num_per_class", "60", "--batch_size", "16",
            "--eval_batch_size", "64", "--cache_dir", str(tmp_path / "cache"),
            "--export_mindir", "false", "--mode", "pynative"]
    results = reproduce.main(argv)
    assert set(results) == {"erm", "sharpdro_agnostic"}
    for name in ("tiny.md", "tiny.json", "tiny.png"):
        assert (tmp_path / "results" / name).is_file()
    assert "| sharpdro_agnostic |" in (tmp_path / "results" / "tiny.md").read_text()
    assert (tmp_path / "runs" / "sharpdro_agnostic-seed1" / "selection.csv").is_file()
    capsys.readouterr()
    again = reproduce.main(argv)  # everything done: nothing is trained again
    assert capsys.readouterr().out.count("skipped (done)") == 4
    assert again == results


@pytest.mark.parametrize("argv,message", [
    (["--algorithms", "erm,sharpdr"], "unknown algorithm 'sharpdr'; did you mean 'sharpdro'"),
    (["--seeds", "0,x"], "--seeds must be comma-separated integers"),
    (["--algorithm.fraction", "2"], "algorithm.fraction: 2.0 must be <= 1.0"),
])
def test_sweep_bad_input_fails_before_any_run(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        reproduce.main(["--config", "configs/quickstart.yaml", "--runs_root", str(tmp_path / "r"),
                        *argv])
    assert not (tmp_path / "r").exists()


def test_every_output_block_the_readme_marks_can_be_regenerated():
    """benchmarks/readme_outputs.py knows every marked block, and finds the two it is for."""
    marked = []
    for path in readme_outputs.documents():
        with open(path) as f:
            marked += [m.group(1) for m in readme_outputs.MARK.finditer(f.read())]
    assert sorted(marked) == sorted(readme_outputs.OUTPUTS)
    lines = ["x", "corruption   1", "a", "mean accuracy over ...", "after"]
    assert readme_outputs.between("\n".join(lines), "corruption ", "mean accuracy") == lines[1:4]


def test_the_comparison_picks_on_seed_0_validation_and_reports_the_grid(tmp_path):
    """Each method's grid value is the one with the best seed-0 validation worst group
    (a tie: the first in the grid); the table is over the seeds at that value."""
    assert reproduce.pick([(0.02, {"worst_acc": 0.5}), (0.05, {"worst_acc": 0.7}),
                           (0.1, {"worst_acc": 0.7})]) == 0.05
    root = tmp_path / "runs"
    runs = reproduce.method_runs("with_labels", "sam", [0, 1], str(root))
    assert [(v, s) for v, s, *_ in runs] == [(v, s) for v in (0.02, 0.05, 0.1) for s in (0, 1)]
    assert runs[0][4] == ["--algorithm.rho", "0.02"]
    assert reproduce.method_runs("with_labels", "erm+balanced", [0], str(root))[0][4] == \
        ["--data.sampler", "group_balanced"]
    for value, seed, run_dir, *_ in runs:  # value 0.05 is best on seed 0
        _write_run(run_dir, val_worst=[0.6 if value == 0.05 else 0.4],
                   test_worst=[0.3 + 0.1 * seed])

    class Args:
        methods, report_only, config, cost_steps = ["sam"], True, "configs/quickstart.yaml", 0

    report = reproduce.compare(Args, [], ["with_labels"], [0, 1], "t", str(root))
    row = report["tables"]["with_labels"]["sam"]
    assert row["picked"] == 0.05 and row["grid_val_worst"] == {"0.02": 0.4, "0.05": 0.6, "0.1": 0.4}
    np.testing.assert_allclose(row["best_val"]["mean"][-1], 35.0)  # worst: (30 + 40) / 2
    os.remove(os.path.join(runs[3][2], "done"))  # seed 1 at the pick: not finished yet
    partial = reproduce.compare(Args, [], ["with_labels"], [0, 1], "t", str(root))
    assert partial["tables"]["with_labels"]["sam"]["seeds"] == [0]
    assert "| sam (seeds 0 only) |" in reproduce.comparison_markdown(partial, "cmd")
    text = reproduce.comparison_markdown(report, "cmd")
    assert "## With group labels" in text and "| sam | rho | 0.02: 40.00, 0.05: 60.00, 0.1: 40.00 | 0.05 |" in text


def test_the_dfr_rows_refit_their_source_run_of_the_same_seed(tmp_path, monkeypatch):
    """dfr starts from ERM's run, sharpdro+dfr from SharpDRO's at its picked rho: train.py
    with --algorithm.reference, like any run."""
    calls = []
    monkeypatch.setattr(reproduce, "call", lambda cmd, *rest: calls.append(cmd) or 1.0)
    root = str(tmp_path / "runs")
    picks = {("with_labels", "erm"): (None, {}), ("with_labels", "sharpdro"): (0.05, {})}
    for label, source in [("dfr", os.path.join(root, "erm", "default", "seed2")),
                          ("sharpdro+dfr", os.path.join(root, "sharpdro", "rho=0.05", "seed2"))]:
        [(_, seed, run_dir, algorithm, extra)] = reproduce.method_runs(
            "with_labels", label, [2], root, picks)
        assert extra == ["--algorithm.reference", source] and algorithm == "dfr"
        assert reproduce.run_one("configs/quickstart.yaml", run_dir, algorithm, seed, extra) == 1.0
        assert calls[-1][1:] == ["--config", "configs/quickstart.yaml", "--run_dir", run_dir,
                                 "--overwrite", "--algorithm.name", "dfr", "--seed", "2",
                                 "--algorithm.reference", source]


def test_a_post_hoc_row_needs_its_source_row():
    with pytest.raises(SystemExit, match="'sharpdro\\+dfr' starts from 'sharpdro'"):
        reproduce.check(reproduce.parse_args(["--config", "configs/quickstart.yaml",
                                              "--comparison", "with_labels",
                                              "--methods", "erm,sharpdro+dfr"])[0], [])


def test_step_seconds_leaves_out_the_first_interval(tmp_path):
    """The first logged interval holds the graph compilation; a clock that goes back (a
    resumed run, two processes) is refused rather than mixed."""
    rows = ["epoch,step,loss,lr,seconds,train_seconds,group_loss_0",
            "1,20,1,0.1,9.0,9.0,1", "1,40,1,0.1,11.0,11.0,1", "1,60,1,0.1,15.0,13.0,1",
            "2,80,1,0.1,17.0,15.0,1"]
    (tmp_path / "train_log.csv").write_text("\n".join(rows) + "\n")
    assert reproduce.step_seconds(str(tmp_path)) == pytest.approx(4.0 / 40)  # 40 -> 80
    (tmp_path / "train_log.csv").write_text("\n".join(rows + ["2,100,1,0.1,3.0,3.0,1"]) + "\n")
    with pytest.raises(SystemExit, match="its clock went back"):
        reproduce.step_seconds(str(tmp_path))
    assert reproduce.step_seconds(str(tmp_path), first_process=True) == pytest.approx(4.0 / 40)


def test_a_timing_run_trains_the_row_at_its_pick_and_reads_its_log(tmp_path):
    """The cost column's timing run: train.py for cost_steps steps with the row's options,
    then its step time from train_log.csv; an unfinished one is started again."""
    tiny = ["--data.dataset", "synthetic", "--image_size", "8", "--channels", "1",
            "--num_classes", "3", "--num_per_class", "60", "--batch_size", "16",
            "--eval_batch_size", "64", "--cache_dir", str(tmp_path / "cache"), "--mode", "graph"]

    class Args:
        config, report_only, cost_steps = "configs/quickstart.yaml", False, 12

    root = str(tmp_path / "runs")
    seconds = reproduce.cost_run(Args, tiny, "with_labels", "sharpdro+subset0.2", 0.05, root)
    run_dir = os.path.join(root, "sharpdro+subset0.2", "cost")
    from sharpdro import config as C

    cfg = C.load_config(os.path.join(run_dir, "config.yaml"))
    assert cfg.algorithm["pass2_fraction"] == 0.2 and cfg.algorithm["rho"] == 0.05
    assert cfg.train.max_steps == 12 and 0 < seconds < 5
    assert reproduce.cost_run(Args, tiny, "with_labels", "dfr", None, root) is None  # its source's
    os.remove(os.path.join(run_dir, "done"))
    Args.report_only = True  # an unfinished timing run gives no number
    assert reproduce.cost_run(Args, tiny, "with_labels", "sharpdro+subset0.2", 0.05, root) is None


def test_the_cost_column_is_each_rows_step_over_erms():
    report = {"name": "t", "seeds": [0], "cost_steps": 120, "tables": {"with_labels": {}}}
    rows = report["tables"]["with_labels"]
    for label, algorithm, cost in [("erm", "erm", 1.0), ("sharpdro", "sharpdro", 1.96),
                                   ("dfr", "dfr", 1.0), ("jtt", "jtt", 1.02)]:
        rows[label] = {"algorithm": algorithm, "key": None, "grid_val_worst": {"None": 0.5},
                       "picked": None, "seeds": [0], "cost": cost,
                       "best_val": {"columns": ["0", "mean", "worst"], "mean": [1, 1, 1],
                                    "std": [0, 0, 0]}}
    text = reproduce.comparison_markdown(report, "cmd")
    assert "| method | 0 | mean | worst | step x ERM |" in text
    assert "| sharpdro | 1.00 +- 0.00 | 1.00 +- 0.00 | 1.00 +- 0.00 | 1.96 |" in text
    assert "| dfr | 1.00 +- 0.00 | 1.00 +- 0.00 | 1.00 +- 0.00 | 1.00 + refit |" in text
    assert "| jtt | 1.00 +- 0.00 | 1.00 +- 0.00 | 1.00 +- 0.00 | stage 1 + 1.02 |" in text


def test_the_readme_results_tables_are_the_reports():
    """README's Results tables are generated from results/*_comparison.json
    (benchmarks/results_table.py); a change to either shows here."""
    from benchmarks import results_table

    assert results_table.main(["--check", "README.md"]) == 0


def test_pass2_rules_reports_each_rule_against_the_whole_batch(tmp_path, monkeypatch):
    """benchmarks/pass2_rules.py: every (rule, seed) run, then worst-group validation and
    test accuracy per rule, read at each run's best validation epoch."""
    import pass2_rules

    monkeypatch.setattr(pass2_rules, "run_one", lambda *args: 0.0)  # the runs exist
    root, full = tmp_path / "runs", tmp_path / "full"
    for i, rule in enumerate(("sample", "top", "uniform")):
        for seed in (0, 1):
            _write_run(root / rule / f"seed{seed}", val_worst=[0.5, 0.6 + 0.01 * i],
                       test_worst=[0.1, 0.4 + 0.1 * seed])
    for seed in (0, 1):
        _write_run(full / f"seed{seed}", val_worst=[0.7], test_worst=[0.8])
    pass2_rules.main(["--config", "configs/quickstart.yaml", "--rho", "0.05", "--seeds", "0,1",
                      "--runs_root", str(root), "--full_runs", str(full),
                      "--results", str(tmp_path / "results")])
    text = (tmp_path / "results" / "quickstart_pass2_rules_f0.2.md").read_text()
    assert "| full | 70.00 +- 0.00 | 80.00 +- 0.00 | 80.00, 80.00 |" in text
    assert "| top | 61.00 +- 0.00 | 45.00 +- 7.07 | 40.00, 50.00 |" in text


@pytest.mark.parametrize("name", ["own_csv_given", "fmnist_shot"])
def test_the_comparison_rows_give_the_recorded_runs_their_options(name):
    """Each recorded comparison run (results/runs/<name>/<row>/<value>/seed0) comes out of
    its config and the row's overrides with the algorithm options it had (the config no
    longer sets irm's and vrex's anneal_steps: their rows do)."""
    from sharpdro import config as C
    from sharpdro.hparams import HPARAMS

    root = os.path.join("results", "runs", name)
    checked = 0
    for table, rows in reproduce.COMPARISON.items():
        for label, (algorithm, *_) in rows.items():
            if reproduce.source_row(table, label) is not None:
                continue  # refers to another row's run folder
            for value, _, folder, algorithm, overrides in reproduce.method_runs(table, label, [0], root):
                if not os.path.isfile(os.path.join(folder, "config.yaml")):
                    continue
                recorded = C.load_config(os.path.join(folder, "config.yaml"))
                cfg = C.load_config(f"configs/{name}.yaml", ["--algorithm.name", algorithm, *overrides])
                for key in HPARAMS[algorithm]:
                    assert cfg.algorithm[key] == recorded.algorithm[key], (folder, key)
                checked += algorithm in ("irm", "vrex")
    assert checked >= 6  # irm's and vrex's grids
