"""Deep Feature Reweighting (sharpdro/dfr.py; the post-hoc method ``dfr`` that train.py runs
with --algorithm.reference): the L1 logistic regression against its optimality conditions,
the balanced draws and halves, the grid extended past an edge pick, a refit that helps the
rare group, and a DFR run folder that evaluates and exports like any other."""
import json
import os

import numpy as np
import pytest

import train as train_entry
from helpers import read_jsonl, tiny
from sharpdro.dfr import balanced_draw, dfr_fit, fit_logistic_l1, group_accuracies, split_halves


def made_features(n_major=600, n_rare=30, seed=0):
    """Two groups, 2 classes. Feature 0 carries the label weakly everywhere; feature 1
    equals it in the large group only (a shortcut) and is noise in the rare one."""
    rng = np.random.default_rng(seed)
    out = []
    for g, n in ((0, n_major), (1, n_rare)):
        y = rng.integers(0, 2, n)
        core = (2 * y - 1) * 1.0 + rng.normal(0, 1.0, n)
        shortcut = (2 * y - 1) * 3.0 if g == 0 else rng.normal(0, 3.0, n)
        shortcut = shortcut + rng.normal(0, 0.3, n)
        out.append((np.stack([core, shortcut, rng.normal(0, 1, n)], 1), y, np.full(n, g)))
    return tuple(np.concatenate(parts) for parts in zip(*out))


def test_the_l1_fit_meets_its_optimality_conditions():
    """liblinear's objective: C sum_i logloss_i + ||[w, b]||_1 (the intercept a feature of
    constant 1). At its minimum the gradient g of the summed loss satisfies C g_j = -sign(w_j)
    where w_j != 0 and |C g_j| <= 1 where w_j = 0."""
    x, y, _ = made_features()
    x = (x - x.mean(0)) / x.std(0)
    c = 0.01
    fit = fit_logistic_l1(x, y, 2, c)
    assert fit.converged and fit.iterations > 0
    w = np.append(fit.weight[1], fit.bias[1])  # class 1's logit against class 0's zero
    assert not fit.weight[0].any() and fit.bias[0] == 0
    xa = np.hstack([x, np.ones((len(x), 1))])
    p = 1 / (1 + np.exp(-xa @ w))
    g = c * xa.T @ (p - y)
    nonzero = w != 0
    assert nonzero.any() and (~nonzero).any()  # this strength zeroes some weights
    np.testing.assert_allclose(g[nonzero], -np.sign(w[nonzero]), atol=2e-3)
    assert np.all(np.abs(g[~nonzero]) <= 1 + 2e-3)
    # a strength above every gradient at zero keeps all weights at zero
    assert not fit_logistic_l1(x, y, 2, 1e-6).weight.any()


def test_a_pick_on_the_grid_edge_extends_the_grid(monkeypatch):
    """The weakest penalty wins on separable features: the grid grows past 1.0 until the
    pick is inside it or the extensions run out; each C's solver is reported."""
    from sharpdro import dfr

    pool = made_features(seed=0)
    select = made_features(n_major=400, n_rare=200, seed=1)
    calls = []
    real = dfr.fit_logistic_l1
    monkeypatch.setattr(dfr, "fit_logistic_l1",
                        lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    monkeypatch.setattr(dfr, "group_accuracies", lambda logits, y, g: {0: calls[-1] / 100})
    result = dfr.dfr_fit(pool, select, 2, seed=0, draws=1)
    assert result.grid == list(dfr.C_GRID) + [3.0, 9.0, 27.0] and result.picked == 27.0
    assert set(result.solver) == {str(c) for c in result.grid} | {"final"}
    assert all(s["converged"] for s in result.solver.values())
    # a pick at the strong end extends the other way
    monkeypatch.setattr(dfr, "group_accuracies", lambda logits, y, g: {0: -calls[-1]})
    result = dfr.dfr_fit(pool, select, 2, seed=0, draws=1)
    assert result.grid[len(dfr.C_GRID):] == [0.00333, 0.00111, 0.00037]
    # inside the grid: nothing added
    monkeypatch.setattr(dfr, "group_accuracies", lambda logits, y, g: {0: -abs(calls[-1] - 0.1)})
    assert dfr.dfr_fit(pool, select, 2, seed=0, draws=1).grid == list(dfr.C_GRID)


def test_draws_are_group_balanced_and_halves_split_every_group():
    groups = np.array([0] * 50 + [1] * 7 + [2] * 20)
    idx = balanced_draw(groups, np.random.default_rng(0))
    assert np.bincount(groups[idx]).tolist() == [7, 7, 7] and len(set(idx)) == len(idx)
    fit, select = split_halves(groups, seed=3)
    assert not set(fit) & set(select) and len(fit) + len(select) == len(groups)
    assert np.bincount(groups[select]).tolist() == [25, 3, 10]
    again = split_halves(groups, seed=3)
    assert np.array_equal(again[0], fit)


def test_a_balanced_refit_beats_the_plain_fit_on_the_rare_group():
    pool = made_features(seed=0)
    select = made_features(n_major=400, n_rare=200, seed=1)
    result = dfr_fit(pool, select, 2, seed=0, draws=5)
    x, y, g = made_features(n_major=2000, n_rare=2000, seed=2)
    dfr = group_accuracies(x @ result.weight.T + result.bias, y, g)
    plain_fit = fit_logistic_l1(pool[0], pool[1], 2, 1.0)  # every pooled image, unbalanced
    plain = group_accuracies(x @ plain_fit.weight.T + plain_fit.bias, y, g)
    assert min(dfr.values()) > min(plain.values()) + 0.05, (dfr, plain)
    assert result.draw_size == 60 and result.picked in result.scores


def test_dfr_fit_needs_every_group_in_the_pool():
    x, y, g = made_features()
    keep = g == 0
    with pytest.raises(ValueError, match=r"groups \[1\] have no image"):
        dfr_fit((x[keep], y[keep], g[keep]), (x, y, g), 2, seed=0)


# -- the entry point on a tiny run ----------------------------------------------------

FAST = ["--export_mindir", "false", "--eval_max_batches", "2"]


def write_shortcut_images(root, seed=0, train=(300, 15), per_eval=40, rare_val=None):
    """Grey 12 px images listed in root/metadata.csv, 2 classes: the stripes' orientation is
    the class (faint), a bright square in one corner a shortcut that agrees with the class
    in the common group and contradicts it in the rare one (5 % of training)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    stripes = np.sin(np.arange(12) * np.pi / 2) * 6
    rows = []
    val = (per_eval, per_eval if rare_val is None else rare_val)
    for split, counts in (("train", train), ("val", val), ("test", (per_eval,) * 2)):
        for group, n in zip(("common", "rare"), counts):
            for label in (0, 1):
                for i in range(n):
                    img = rng.normal(128, 25, (12, 12))
                    img += stripes[:, None] if label == 0 else stripes[None, :]
                    corner = 8 * (label if group == "common" else 1 - label)
                    img[corner:corner + 4, corner:corner + 4] += 90
                    rel = f"{split}/{group}/{label}/{i}.png"
                    os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
                    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                        os.path.join(root, rel))
                    rows.append(f"{rel},{('horizontal', 'vertical')[label]},{group},{split}")
    with open(os.path.join(root, "metadata.csv"), "w") as f:
        f.write("path,label,group,split\n" + "\n".join(rows) + "\n")
    return os.path.join(root, "metadata.csv")


def shortcut_args(cache, run, metadata, *extra):
    return tiny(cache, run, *FAST, "--data.dataset", "csv", "--data.metadata", metadata,
                "--data.groups", "given", "--batch_size", "30", "--image_size", "12", *extra)


def refit(cache, run, metadata, reference, *extra):
    """train.py --algorithm.name dfr on ``reference``, into ``run``."""
    return train_entry.main(shortcut_args(cache, run, metadata, "--algorithm.name", "dfr",
                                          "--algorithm.reference", reference, *extra))


@pytest.fixture(scope="module")
def dfr_run(tmp_path_factory):
    """ERM on the shortcut images learns the corner (0 % on the rare group); DFR refits."""
    root = tmp_path_factory.mktemp("dfr")
    cache, run = str(root / "cache"), str(root / "erm")
    metadata = write_shortcut_images(str(root / "images"))
    train_entry.main(shortcut_args(cache, run, metadata, "--algorithm.name", "erm",
                                   "--epochs", "3"))
    out = refit(cache, run + "-dfr", metadata, run, "--algorithm.draws", "3")
    return {"root": root, "cache": cache, "run": run, "out": out, "metadata": metadata}


def test_dfr_improves_the_worst_group_and_writes_a_run_folder(dfr_run):
    out = dfr_run["out"]
    assert out == dfr_run["run"] + "-dfr" and os.path.isfile(os.path.join(out, "done"))
    info = json.load(open(os.path.join(out, "dfr.json")))
    assert info["solver"]["final"]["converged"] and info["draws"] == 3
    assert info["selection_worst_acc"][str(info["picked_C"])] == max(
        info["selection_worst_acc"].values())
    assert info["selection_worst_acc"][str(info["picked_C"])] > \
        info["selection_worst_acc_own_head"] + 0.2
    records = read_jsonl(os.path.join(out, "eval.jsonl"))
    assert [r["split"] for r in records] == ["val", "test"]
    assert set(records[1]["acc"]) == {"common", "rare"}
    own = [r for r in read_jsonl(os.path.join(dfr_run["run"], "eval.jsonl"))
           if r["split"] == "val"]
    assert records[0]["worst_acc"] > max(r["worst_acc"] for r in own) + 0.2
    # only the head differs from the source's best checkpoint
    import mindspore as ms

    a = ms.load_checkpoint(os.path.join(dfr_run["run"], "checkpoints", "best.ckpt"))
    b = ms.load_checkpoint(os.path.join(out, "checkpoints", "best.ckpt"))
    for name in b:
        if name in ("run_state",):
            continue
        same = np.array_equal(a[name].asnumpy(), b[name].asnumpy())
        assert same != name.startswith("fc."), name


def test_the_dfr_run_evaluates_and_exports(dfr_run, capsys):
    import eval as eval_entry
    import export as export_entry

    out = dfr_run["out"]
    eval_entry.main(["--run", out])
    test = read_jsonl(os.path.join(out, "eval.jsonl"))[1]
    saved = json.load(open(os.path.join(out, "evals", "test_best.json")))
    assert saved["worst_acc"] == pytest.approx(test["worst_acc"])
    export_entry.main(["--run", out])
    assert any(f.endswith(".mindir") for f in os.listdir(os.path.join(out, "exports")))


def test_bad_dfr_inputs_are_one_line(dfr_run, tmp_path):
    cache, metadata = dfr_run["cache"], dfr_run["metadata"]
    label_free = str(tmp_path / "none")
    train_entry.main(shortcut_args(cache, label_free, metadata, "--algorithm.name", "erm",
                                   "--data.groups", "none", "--epochs", "1"))
    unfinished = tmp_path / "unfinished"
    (unfinished / "checkpoints").mkdir(parents=True)
    (unfinished / "checkpoints" / "last.ckpt").write_text("")
    out = str(tmp_path / "out")
    cases = [
        (shortcut_args(cache, out, metadata, "--algorithm.name", "dfr", "--data.groups", "none",
                       "--algorithm.reference", label_free), "data.groups is none"),
        (shortcut_args(cache, out, metadata, "--algorithm.name", "dfr"), "--algorithm.reference"),
        (shortcut_args(cache, out, metadata, "--algorithm.name", "dfr", "--algorithm.reference",
                       str(unfinished)), "not a finished run"),
        (shortcut_args(cache, out, metadata, "--algorithm.name", "dfr", "--algorithm.reference",
                       dfr_run["run"], "--algorithm.draws", "0"), "algorithm.draws"),
        (shortcut_args(cache, out, metadata, "--algorithm.name", "dfr", "--algorithm.reference",
                       dfr_run["run"], "--seed", "4"), "seed is 0 there and 4 here"),
        (shortcut_args(cache, dfr_run["out"], metadata, "--algorithm.name", "dfr",
                       "--algorithm.reference", dfr_run["run"]), "already holds a finished run"),
        (shortcut_args(cache, dfr_run["run"], metadata, "--algorithm.name", "dfr",
                       "--algorithm.reference", dfr_run["run"], "--overwrite"),
         "must differ from algorithm.reference"),
    ]
    for argv, match in cases:
        with pytest.raises(SystemExit) as stop:
            train_entry.main(argv)
        message = str(stop.value)
        assert message.startswith("error: ") and match in message and "\n" not in message, message
    assert not os.path.exists(out)
    assert os.path.isfile(os.path.join(dfr_run["run"], "done"))  # the reference untouched


def test_the_cells_take_no_stage_option_and_dfr_is_no_cell():
    """Stage options (jtt's first_epochs, dfr's reference) never reach a cell: create_train_step
    refuses them for algorithms without them and drops them for those with."""
    from helpers import initial_params, make_cell

    params = initial_params()
    with pytest.raises(ValueError, match="dfr is post-hoc"):
        make_cell("dfr", params)
    with pytest.raises(ValueError, match="takes options"):
        make_cell("erm", params, reference="x")
    assert type(make_cell("jtt", params, first_epochs=2, upweight=5)).__name__ == "JTT"


def test_dfr_refuses_a_group_that_one_half_of_validation_would_lack(tmp_path):
    """One validation image in the rare group: one half of validation would lack it; DFR
    asks for at least 2 images per group and names the group."""
    metadata = write_shortcut_images(str(tmp_path / "images"), per_eval=20, rare_val=0)
    # the CSV then has no rare validation rows at all: one rare test image becomes one
    with open(metadata) as f:
        rows = f.read().splitlines()
    moved = next(i for i, r in enumerate(rows) if r.startswith("test/rare/0/"))
    rows[moved] = rows[moved].replace(",test", ",val")
    with open(metadata, "w") as f:
        f.write("\n".join(rows) + "\n")
    cache, run = str(tmp_path / "cache"), str(tmp_path / "erm")
    train_entry.main(shortcut_args(cache, run, metadata, "--algorithm.name", "erm",
                                   "--epochs", "1"))
    with pytest.raises(SystemExit) as stop:
        refit(cache, run + "-dfr", metadata, run)
    message = str(stop.value)
    assert "at least 2 validation images in every group" in message and "rare (1)" in message
    assert not os.path.exists(run + "-dfr")
