"""Data parallel: msrun with 2 CPU workers (tests/dist_worker.py) against one process on
the global batch."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from helpers import DP_CASES, DP_STEPS, cell_state, global_batch, make_nobn_cell, run

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
            for name in [c[0] for c in DP_CASES] + ["cnn", "cnn_before"]}


def one_process(algorithm, options):
    cell = make_nobn_cell(algorithm, 1, **options)
    losses = [float(run(cell, *global_batch(step)).asnumpy()) for step in range(DP_STEPS)]
    return dict(cell_state(cell), loss=np.array(losses))


def assert_close(got, want, what):
    scale = max(np.abs(want).max(), 1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale, err_msg=what)


@pytest.mark.parametrize("name,algorithm,options", [c for c in DP_CASES
                                                    if c[0] not in ("sharpdro_unsynced", "agnostic")])
def test_two_ranks_equal_one_process_on_the_global_batch(graph_mode, ranks, name, algorithm, options):
    """Weights, momentum buffers, group weights, logged loss and group losses, 2 steps."""
    want = one_process(algorithm, options)
    for r, got in enumerate(ranks[name]):
        assert set(got) == set(want)
        for key in want:
            assert_close(got[key], want[key], f"{name} rank {r}: {key}")


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
