"""Dynamic loss scaling over both passes: a sane scale changes nothing, an overflow in
pass 1 or in pass 2 skips the whole step and lowers the scale."""
import numpy as np
import pytest

from helpers import assert_close, batch, initial_params, make_cell, run

CASES = [("erm", {}), ("groupdro", {"eta": 0.5}), ("sam", {}), ("sharpdro", {"eta": 0.5}),
         ("sharpdro", {"eta": 0.5, "eps_source": "weighted"}), ("sharpdro_agnostic", {}),
         ("sharpdro", {"eta": 0.5, "pass2_fraction": 0.5}),
         ("sharpdro_agnostic", {"pass2_selected": True})]
SCALE_STATE = ("loss_scale", "loss_scale_good_steps", "last_overflow")


def state(cell):
    return {p.name: p.asnumpy().copy() for p in cell.get_parameters()
            if not p.name.startswith("scratch") and p.name not in SCALE_STATE
            and not p.name.startswith("last_")}


def scaled_cell(algorithm, options, init_scale, **extra):
    cell = make_cell(algorithm, initial_params(), **options, **extra)
    cell.enable_loss_scale(init_scale, factor=2.0, window=2)
    return cell


@pytest.mark.parametrize("algorithm,options", CASES)
def test_a_sane_scale_equals_the_unscaled_step(graph_mode, algorithm, options):
    plain = make_cell(algorithm, initial_params(), **options)
    scaled = scaled_cell(algorithm, options, 2.0 ** 10)
    for i in range(3):
        want = float(run(plain, *batch(i)).asnumpy())
        got = float(run(scaled, *batch(i)).asnumpy())
        assert_close(got, want, f"loss, step {i}")
    a, b = state(plain), state(scaled)
    assert a.keys() == b.keys()
    for name in a:
        assert_close(b[name], a[name], name)
    # window 2: the scale doubled after steps 2 (and would again after 4)
    assert float(scaled.loss_scale.asnumpy()) == 2.0 ** 11
    np.testing.assert_array_equal(scaled.last_overflow.asnumpy(), [0, 0])


def _overflow_in(cell, x, label, group, expected_flags):
    before = state(cell)
    scale = float(cell.loss_scale.asnumpy())
    run(cell, x, label, group)
    np.testing.assert_array_equal(cell.last_overflow.asnumpy(), expected_flags)
    after = state(cell)
    for name in before:  # weights, moments, step counter, BN statistics, group weights
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert float(cell.loss_scale.asnumpy()) == scale / 2


@pytest.mark.parametrize("algorithm,options", CASES)
def test_an_overflow_in_pass_one_skips_the_step(graph_mode, algorithm, options):
    cell = scaled_cell(algorithm, options, 2.0 ** 10)
    run(cell, *batch(0))  # one real step first: moments and group weights are not trivial
    x, label, group = batch(1)
    x[0, 0] = np.inf  # the forward and every pass-1 gradient become non-finite
    _overflow_in(cell, x, label, group, [1, 1])
    run(cell, *batch(2))  # and training goes on
    assert np.isfinite(cell.group_weights.asnumpy()).all()


@pytest.mark.parametrize("algorithm,options", [c for c in CASES if c[0] in ("sam", "sharpdro")])
def test_an_overflow_in_pass_two_skips_the_step(graph_mode, algorithm, options):
    """A huge rho sends the perturbed network's logits to ~1e18; pass 1 stays finite at
    scale 2^60 while pass 2's scaled gradients overflow."""
    cell = scaled_cell(algorithm, options, 2.0 ** 60, rho=1e18)
    _overflow_in(cell, *batch(0), [0, 1])


def test_amp_levels_in_a_run_and_their_bad_input(tmp_path, monkeypatch, capsys):
    import json

    import train as train_entry
    from sharpdro import config as C
    from sharpdro.checkpoint import read_checkpoint

    with pytest.raises(C.ConfigError, match="train.amp_level: 'O4' is not one of"):
        C.load_config(None, {"train.amp_level": "O4"})
    tiny = ["--config", "configs/quickstart.yaml", "--data.dataset", "synthetic",
            "--image_size", "12", "--channels", "1", "--num_classes", "3",
            "--num_per_class", "60", "--epochs", "1", "--batch_size", "16",
            "--eval_batch_size", "64", "--cache_dir", str(tmp_path / "cache"),
            "--export_mindir", "false"]
    train_entry.main(tiny + ["--run_dir", str(tmp_path / "o2"), "--train.amp_level", "O2"])
    import re

    assert re.search(r"worst group \d scale 65536 \|", capsys.readouterr().out)  # progress line
    saved = read_checkpoint(str(tmp_path / "o2" / "checkpoints" / "last.ckpt"))
    assert float(saved["loss_scale"].asnumpy()) == 2.0 ** 16  # auto: dynamic scaling with O2
    assert json.loads(saved["run_state"])["epoch"] == 1

    from mindspore import amp

    def unsupported(net, level):
        raise RuntimeError("Unsupported op Conv2D in float16\ndetails")

    monkeypatch.setattr(amp, "auto_mixed_precision", unsupported)
    with pytest.raises(SystemExit, match=r"train.amp_level O3 does not run on CPU here "
                                         r"\(Unsupported op Conv2D in float16\).*use O0"):
        train_entry.main(tiny + ["--run_dir", str(tmp_path / "o3"), "--train.amp_level", "O3"])
    assert not (tmp_path / "o3").exists()
