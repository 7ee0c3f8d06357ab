"""eval.py at its edges (issue 32): non-finite or out-of-range photon counts and read
noise, --predict on one image file, and strict JSON out."""
import json
import os

import numpy as np
import pytest

import eval as eval_entry
import train as train_entry
from helpers import tiny


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("run"))
    train_entry.main(tiny(str(tmp_path_factory.mktemp("cache")), path))
    return path


def strict_json(path):
    """The file parsed as strict JSON (NaN / Infinity refused)."""
    def refuse(token):
        raise ValueError(f"{path}: {token} is not JSON")

    with open(path) as f:
        return json.load(f, parse_constant=refuse)


# items 8 and 11: photon counts and read noise

@pytest.mark.parametrize("option,value,message", [
    ("--read-noise", "nan", "--read-noise takes a number of electrons >= 0, got nan"),
    ("--read-noise", "inf", "got inf"),
    ("--read-noise", "-1", "got -1"),
    ("--photons", "inf,1", "got inf"),
    ("--photons", "1e400,1", "got inf"),
    ("--photons", "100,50,nan", "got nan"),
    ("--photons", "1e12,1e-300", "got 1e-300"),
    ("--photons", "1,1000", "not above LOW"),
    ("--photons", ",".join(["5"] * 101), "got 101 levels"),
])
def test_photon_sweep_refuses_counts_and_noise_out_of_range(run_dir, option, value, message, capsys):
    """--read-noise nan used to sweep to chance accuracy and write NaN into
    photon_sweep.json; inf / 1e400 / nan photons were tracebacks. Now one line each."""
    sweep = os.path.join(run_dir, "evals", "photon_sweep.json")
    before = os.path.getmtime(sweep) if os.path.exists(sweep) else None
    with pytest.raises(SystemExit) as info:
        eval_entry.main(["--run", run_dir, "--photon-sweep", option, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert (os.path.getmtime(sweep) if os.path.exists(sweep) else None) == before


def test_photon_sweep_writes_strict_json(run_dir):
    result = eval_entry.main(["--run", run_dir, "--photon-sweep", "--photons", "1e15,1e4,1",
                              "--read-noise", "1000"])
    (result,) = result.values()
    saved = strict_json(os.path.join(run_dir, "evals", "photon_sweep.json"))
    assert saved["read_noise"] == 1000 and [lv["photons"] for lv in saved["levels"]] == [1e15, 1e4, 1]
    assert [lv["acc"] for lv in saved["levels"]] == [lv["acc"] for lv in result["levels"]]


def test_every_eval_json_is_strict(tmp_path):
    """NaN and infinities (a model with NaN logits, say) are written as null."""
    from callbacks.accuracy import write_accuracy
    from callbacks.benchmark_report import write_benchmark
    from callbacks.photon_sweep import write_photon_sweep

    nan, inf = float("nan"), float("inf")
    write_accuracy(str(tmp_path / "acc"), {"acc": {0: nan}, "loss": {0: inf}, "count": {0: 3},
                                           "mean_acc": nan, "worst_acc": nan}, "m", None, "severity")
    write_benchmark(str(tmp_path / "bench"), {"acc": {"fog": {1: nan}}, "mean_by_corruption": {"fog": nan},
                                              "standard_found": ["fog"], "missing": [],
                                              "mean_acc": nan, "unnormalised_mce": -inf}, "m", "b")
    write_photon_sweep(str(tmp_path / "sweep"), {"clean": nan, "levels": [{"photons": 1.0, "acc": nan}],
                                                 "read_noise": nan, "photons_at_90": None}, "m")
    for name in ("acc", "bench", "sweep"):
        text = (tmp_path / f"{name}.json").read_text()
        assert "NaN" not in text and "Infinity" not in text
        strict_json(tmp_path / f"{name}.json")
    assert strict_json(tmp_path / "acc.json")["loss"] == {"0": None}


def test_a_baseline_with_accuracies_outside_0_1_is_refused(tmp_path):
    from callbacks.benchmark_report import load_results

    for value in ("NaN", "-0.5", "Infinity"):
        path = tmp_path / "base.json"
        path.write_text('{"acc": {"fog": {"1": %s}}}' % value)
        with pytest.raises(ValueError, match="outside"):
            load_results(str(path))


# item 12: --predict on one file

def test_predict_one_image_file_and_refuse_a_binary_file(run_dir, tmp_path, capsys):
    """--predict one_image.png used to fail with "'utf-8' codec can't decode": it predicts
    that image; a file that is neither an image nor a CSV is one line."""
    from PIL import Image

    image = tmp_path / "one image.png"
    Image.fromarray(np.full((12, 12), 200, np.uint8)).save(image)
    out = eval_entry.main(["--run", run_dir, "--predict", str(image)])
    with open(out) as f:
        rows = f.read().splitlines()
    assert os.path.basename(out) == "predictions_one image_best.csv"
    assert len(rows) == 2 and rows[1].startswith("one image.png,")
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SystemExit, match="not an image .* a folder of images or a CSV"):
        eval_entry.main(["--run", run_dir, "--predict", str(binary)])


def test_photon_sweep_honours_out_and_leaves_the_run_folder_alone(run_dir, tmp_path, monkeypatch):
    """--out used to be ignored by --photon-sweep: the sweep went into the run folder, which
    eval.py had not locked (it holds --out's folder then)."""
    before = {n: sorted(os.listdir(os.path.join(run_dir, n))) for n in ("evals", "plots")
              if os.path.isdir(os.path.join(run_dir, n))}
    monkeypatch.chdir(tmp_path)
    eval_entry.main(["--run", run_dir, "--photon-sweep", "--photons", "1e3,1e2,10", "--out", "sweep ü"])
    assert sorted(os.listdir(tmp_path)) == ["sweep ü.csv", "sweep ü.json", "sweep ü.png"]
    assert strict_json(tmp_path / "sweep ü.json")["levels"][0]["photons"] == 1000
    after = {n: sorted(os.listdir(os.path.join(run_dir, n))) for n in ("evals", "plots")
             if os.path.isdir(os.path.join(run_dir, n))}
    assert after == before
    with pytest.raises(SystemExit, match="2"):
        eval_entry.main(["--run", run_dir, "--run", run_dir, "--photon-sweep", "--out", "x"])
