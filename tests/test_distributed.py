"""Data parallel: msrun with 2 CPU workers (tests/dist_worker.py) against one process on
the global batch."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from helpers import (DP_CASES, DP_STEPS, NAME_OF, PER_SLICE, cell_state, global_batch,
                     initial_params, make_nobn_cell, read_jsonl, run)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def msrun(script_args, log_dir, workers=2, timeout=300):
    """Run ``msrun`` with the venv's python first on PATH (msrun starts ``python``)."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    cmd = [os.path.join(os.path.dirname(sys.executable), "msrun"), f"--worker_num={workers}",
           f"--local_worker_num={workers}", f"--master_port={free_port()}", "--join=True",
           "--cluster_time_out=90", f"--log_dir={log_dir}", *script_args]
    done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    if done.returncode:
        logs = "".join(open(os.path.join(log_dir, f)).read()[-3000:] for f in sorted(os.listdir(log_dir)))
        raise AssertionError(f"msrun failed ({done.returncode}):\n{done.stdout[-2000:]}\n{logs}")
    return done


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    msrun([os.path.join("tests", "dist_worker.py"), str(out)], str(out / "logs"))
    return {name: [dict(np.load(out / f"rank{r}_{name}.npz")) for r in range(2)]
            for name in [c[0] for c in DP_CASES] + ["cnn", "cnn_before", "groupacc"]}


def one_process(algorithm, options):
    cell = make_nobn_cell(algorithm, 1, **options)
    losses = [float(run(cell, *global_batch(step)).asnumpy()) for step in range(DP_STEPS)]
    return dict(cell_state(cell), loss=np.array(losses))


def assert_close(got, want, what):
    scale = max(np.abs(want).max(), 1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


@pytest.mark.parametrize("name,algorithm,options", [c for c in DP_CASES if c[0] not in
                                                    ("sharpdro_unsynced",) + PER_SLICE])
def test_two_ranks_equal_one_process_on_the_global_batch(graph_mode, ranks, name, algorithm, options):
    """Weights, momentum buffers, group weights, logged loss and group losses, 2 steps."""
    want = one_process(algorithm, options)
    for r, got in enumerate(ranks[name]):
        assert set(got) == set(want)
        for key in want:
            assert_close(got[key], want[key], f"{name} rank {r}: {key}")


@pytest.mark.parametrize("name,algorithm,options", [c for c in DP_CASES if c[0] in PER_SLICE])
def test_two_ranks_equal_the_reference_of_the_per_slice_rule(ranks, name, algorithm, options):
    """Each rank selects (agnostic) or draws (pass 2 on a subset, its own numbers) from its
    own slice with the global group counts; the summed gradients are the reference's sum of
    the slices' estimates (SPEC 3b), 2 steps."""
    import reference as ref
    from helpers import G, LR, MOMENTUM, WD

    params = {k: v for k, v in initial_params().items() if k not in ("gamma", "beta")}
    state = {"params": params, "buf": {k: np.zeros_like(v) for k, v in params.items()},
             "w": np.full(G, 1.0 / G)}
    for step in range(DP_STEPS):
        state, _ = ref.step(algorithm, state, *global_batch(step), G, LR, MOMENTUM, WD,
                            ranks=2, **{"eta": 0.01, **options})
    for r, got in enumerate(ranks[name]):
        for param, key in NAME_OF.items():
            if key in params:
                assert_close(got[param], state["params"][key], f"{name} rank {r}: {param}")
                assert_close(got[f"moments.{param}"], state["buf"][key], f"{name} rank {r}: buf")
        assert_close(got["group_weights"], state["w"], f"{name} rank {r}: group weights")


def test_ranks_stay_identical(ranks):
    for name in [c[0] for c in DP_CASES]:
        a, b = ranks[name]
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}: {key}")


def test_unsynced_perturbation_differs_from_the_synced_one(ranks):
    """sync_perturbation false: each rank's epsilon from its own slice (m-sharpness)."""
    synced, unsynced = ranks["sharpdro"][0], ranks["sharpdro_unsynced"][0]
    assert synced["loss"][0] == unsynced["loss"][0]  # pass 1 of step 1 is the same
    diff = max(np.abs(synced[k] - unsynced[k]).max() for k in synced if k.startswith("moments."))
    assert diff > 1e-4


def test_agnostic_selects_the_top_fraction_of_each_ranks_slice(graph_mode, ranks):
    """Per-rank selection: at step 1 the selected samples are each half's top 50 % by
    score (6 of 12), counted per group over both ranks; not the global top 50 %."""
    import mindspore as ms
    from helpers import N
    from sharpdro.selection import ood_score

    net = make_nobn_cell("sharpdro_agnostic", 1).network
    x, _, group = global_batch(0)
    score = ood_score(net(ms.Tensor(x.astype(np.float32)))).asnumpy()
    per_rank = np.zeros(len(group))
    for half in (slice(0, N), slice(N, 2 * N)):
        top = np.argsort(-score[half], kind="stable")[:6]
        per_rank[np.arange(2 * N)[half][top]] = 1
    got = ranks["agnostic"][0]["selected_per_step"][0]
    np.testing.assert_array_equal(got, np.bincount(group, weights=per_rank, minlength=len(got)))
    global_top = np.zeros(len(group))
    global_top[np.argsort(-score, kind="stable")[:12]] = 1
    assert not np.array_equal(per_rank, global_top)  # the test tells the two rules apart


def test_group_accuracy_sums_the_ranks_counts(ranks):
    """Under msrun each rank counted half of a batch; both report the whole batch's
    per-group accuracy, equal to one process counting all of it (group 3 absent)."""
    from helpers import group_accuracy_batch
    from sharpdro.metrics import GroupAccuracy

    logits, labels, groups, _, _ = group_accuracy_batch()
    metric = GroupAccuracy(5)
    metric.update(logits, labels, groups)
    want = metric.eval()
    for r in ranks["groupacc"]:
        np.testing.assert_allclose(r["acc"], [np.nan if a is None else a for a in want["acc"].values()],
                                   rtol=1e-6)
        assert float(r["mean"]) == pytest.approx(want["mean"]) and float(r["worst"]) == pytest.approx(want["worst"])


def test_batchnorm_statistics_are_averaged_and_everything_is_identical(ranks):
    """Small CNN with BatchNorm, 3 steps on different images per rank: the moving
    statistics differ before the averaging; after it, every parameter, moving statistic
    and the group weights are bit-identical across the ranks."""
    before = ranks["cnn_before"]
    stats = [k for k in before[0] if "moving_" in k]
    assert stats and any(not np.array_equal(before[0][k], before[1][k]) for k in stats)
    a, b = ranks["cnn"]
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for k in stats:
        np.testing.assert_allclose(a[k], (before[0][k] + before[1][k]) / 2, rtol=1e-6)


TINY = ["--config", "configs/quickstart.yaml", "--data.dataset", "synthetic", "--image_size", "12",
        "--channels", "1", "--num_classes", "3", "--num_per_class", "120", "--batch_size", "16",
        "--eval_batch_size", "64", "--log_every", "5", "--mode", "graph"]


@pytest.fixture(scope="module")
def msrun_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("msrun_run")
    cache = str(root / "cache")
    argv = TINY + ["--cache_dir", cache, "--epochs", "3"]
    msrun(["train.py", *argv, "--run_dir", str(root / "dp")], str(root / "logs"))
    return root, argv


def test_msrun_writes_one_complete_run_folder(msrun_run):
    root, _ = msrun_run
    folder = root / "dp"
    for name in ("config.yaml", "train_log.csv", "group_weights.csv", "eval.jsonl", "predictions.npz",
                 "checkpoints/last.ckpt", "checkpoints/best.ckpt", "plots/group_weights.png",
                 "plots/accuracy_by_severity.png", "model.mindir", "done"):
        assert (folder / name).is_file(), name
    assert [(r["epoch"], r["split"]) for r in read_jsonl(folder / "eval.jsonl")] == [
        (e, s) for e in (1, 2, 3) for s in ("val", "test")]
    # the evaluation is sharded across the ranks and combined: whole sets, recounted
    saved = np.load(folder / "predictions.npz")
    for r in read_jsonl(folder / "eval.jsonl")[-2:]:
        for s, acc in r["acc"].items():
            pred, label = saved[f"{r['split']}_{s}_pred"], saved[f"{r['split']}_{s}_label"]
            assert len(label) == r["count"][s] > 0
            assert acc == pytest.approx(float((pred == label).mean()), abs=1e-12)
    log = (root / "logs" / "worker_1.log").read_text()
    assert "rank 1 of 2 (8 per rank)" in log and "rank 1 done" in log
    assert "run folder:" not in log  # rank 1 writes nothing but its log


def test_msrun_run_matches_one_process_within_the_batchnorm_caveat(msrun_run):
    """Same global batches and group-weight rule; only BatchNorm's batch statistics are
    per rank (8 images instead of 16), so the runs are close, not equal."""
    import train as train_entry

    root, argv = msrun_run
    train_entry.main(argv + ["--run_dir", str(root / "single")])
    last = {}
    for name in ("dp", "single"):
        rows = (root / name / "group_weights.csv").read_text().splitlines()
        last[name] = np.array([float(v) for v in rows[-1].split(",")[2:]])
    np.testing.assert_allclose(last["dp"], last["single"], atol=0.01)
    final = {name: read_jsonl(root / name / "eval.jsonl")[-1] for name in ("dp", "single")}
    assert abs(final["dp"]["mean_acc"] - final["single"]["mean_acc"]) < 0.05


def test_msrun_checkpoint_evaluates_in_one_process(msrun_run, capsys):
    import eval as eval_entry

    root, _ = msrun_run
    result = eval_entry.main(["--run", str(root / "dp")])
    test = [r for r in read_jsonl(root / "dp" / "eval.jsonl") if r["split"] == "test"][-1]
    assert [result["acc"][s] for s in range(6)] == [test["acc"][str(s)] for s in range(6)]


def _pids_with(text):
    """The processes whose command line contains ``text``."""
    pids = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(name))
        except (OSError, ValueError):
            pass
    return pids


def test_msrun_run_killed_mid_epoch_resumes_under_msrun(msrun_run, tmp_path):
    """SIGTERM to msrun's process group after the first checkpoint, then `msrun train.py --resume`: the same
    final weights and evaluations as the uninterrupted msrun run."""
    import signal
    import time

    root, argv = msrun_run
    out = tmp_path / "killed"
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    cmd = [os.path.join(os.path.dirname(sys.executable), "msrun"), "--worker_num=2",
           "--local_worker_num=2", f"--master_port={free_port()}", "--join=True",
           "--cluster_time_out=90", f"--log_dir={tmp_path / 'logs1'}", "train.py", *argv,
           "--run_dir", str(out)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while not (out / "checkpoints" / "last.ckpt").exists() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    # msrun starts its workers in sessions of their own: signal every process of this run
    # (scheduler and workers name the run folder on their command line) and wait for all
    mine = [pid for pid in _pids_with(str(out)) if pid != os.getpid()]
    for pid in mine:
        os.kill(pid, signal.SIGTERM)
    proc.wait(timeout=120)
    while _pids_with(str(out)) and time.time() < deadline:
        time.sleep(0.1)
    assert not (out / "done").exists()
    msrun(["train.py", "--resume", str(out)], str(tmp_path / "logs2"))
    assert (out / "done").exists()
    from sharpdro.checkpoint import read_checkpoint

    want = read_checkpoint(str(root / "dp" / "checkpoints" / "last.ckpt"))
    got = read_checkpoint(str(out / "checkpoints" / "last.ckpt"))
    for name in want:
        if name != "run_state":
            np.testing.assert_array_equal(got[name].asnumpy(), want[name].asnumpy(), err_msg=name)
    strip = lambda rs: [{k: v for k, v in r.items()} for r in rs]  # noqa: E731
    assert strip(read_jsonl(out / "eval.jsonl")) == strip(read_jsonl(root / "dp" / "eval.jsonl"))


def test_bad_distributed_input(monkeypatch):
    from sharpdro import config as C
    from sharpdro.distributed import DistributedError, init_distributed

    with pytest.raises(C.ConfigError, match="train.distributed: 'on' is not one of"):
        C.load_config(None, {"train.distributed": "on"})
    from datasets import build_data

    cfg = C.load_config(None, {"data.num_per_class": 20, "train.batch_size": 16})
    with pytest.raises(ValueError, match="train.batch_size 16 .* not divisible by the 3 ranks"):
        build_data(cfg, rank=0, world_size=3)
    import mindspore.communication as comm

    def fail():
        raise RuntimeError("Failed to initialize distributed job cluster\nmore")

    monkeypatch.setattr(comm, "init", fail)
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    monkeypatch.setenv("MS_SCHED_PORT", "8118")
    with pytest.raises(DistributedError, match=r"started by msrun \(MS_ROLE=MS_WORKER, .*"
                                               r"MS_SCHED_PORT=8118.*Failed to initialize"):
        init_distributed("auto")
    assert init_distributed("off") == (0, 1)


def test_each_rank_gets_its_slice_of_every_global_batch():
    from datasets.pipeline import TrainEpoch

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 4, 4, 1), dtype=np.uint8)
    labels, groups = np.arange(40), np.arange(40) % 6
    args = (images, labels, groups, 8, (0.5,), (0.25,), 3, 1)
    whole = TrainEpoch(*args)
    parts = [TrainEpoch(*args, rank=r, world_size=2) for r in range(2)]
    assert len(whole) == len(parts[0]) == 5
    for b in range(len(whole)):
        for column in range(3):
            joined = np.concatenate([parts[0][b][column], parts[1][b][column]])
            np.testing.assert_array_equal(joined, whole[b][column])
