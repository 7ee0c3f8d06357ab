"""What a finished training never loses: a failed MindIR export after the last epoch is a
warning (the run is done and kept), train.py gives the signal handlers back when it
returns, and the photon capture refuses non-finite settings."""
import signal

import numpy as np
import pytest

import train as train_entry
from helpers import tiny


def test_a_failed_export_after_training_is_a_warning_and_the_run_is_done(tmp_path, monkeypatch,
                                                                        capsys):
    import sharpdro.deploy as deploy

    def refuse(*args, **kwargs):
        raise ValueError("the reloaded model differs by 1e-3")

    monkeypatch.setattr(deploy, "export_and_verify", refuse)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    out = tmp_path / "run"
    train_entry.main(tiny(str(tmp_path / "cache"), out, "--epochs", "1"))
    assert (out / "done").is_file() and not (out / "model.mindir").exists()
    err = capsys.readouterr().err
    assert "warning: model.mindir not written: the reloaded model differs" in err
    assert f"export.py --run {out}" in err
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.mark.parametrize("photons,read_noise", [(float("nan"), 0.0), (float("inf"), 0.0),
                                                (10.0, float("nan")), (10.0, -1.0)])
def test_capture_refuses_non_finite_settings(photons, read_noise):
    from datasets.photons import capture

    with pytest.raises(ValueError, match="finite number"):
        capture(np.zeros((1, 2, 2, 1), np.uint8), photons, read_noise)
