"""Starting from trained weights (sharpdro/finetune.py, model.checkpoint / model.pretrained /
model.freeze / optim.backbone_lr_scale): what is loaded, re-initialised and adapted, a frozen
backbone that stays bit-identical, a resumed fine-tuning run, and the bad inputs."""
import json
import os
import re

import mindspore as ms
import numpy as np
import pytest

import train as train_entry
from helpers import crash_at_epoch_2, tiny

FAST = ["--export_mindir", "false", "--eval_max_batches", "2"]


def values(path):
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(path).items() if k != "run_state"}


def fresh_params(name, num_classes, in_channels, seed=0):
    from sharpdro.models import create_model

    ms.set_seed(seed)
    return create_model(name, num_classes, in_channels)


def mindcv_style_checkpoint(path, in_channels=3, seed=1):
    """A mindcv-like ResNet-18 file: 1000 classes, random weights, plus optimizer state."""
    net = fresh_params("resnet18", 1000, in_channels, seed)
    ms.save_checkpoint(net, str(path), append_dict={"global_step": ms.Tensor(np.int32(7))})
    return values(str(path))


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mindcv") / "resnet18-made.ckpt"
    saved = mindcv_style_checkpoint(path)
    return str(path), saved


def test_a_mindcv_checkpoint_loads_into_a_10_class_model_with_a_new_head(resnet_file):
    from sharpdro.finetune import load_start_weights

    path, saved = resnet_file
    net = fresh_params("resnet18", 10, 3, seed=5)
    head_before = {p.name: p.asnumpy().copy() for p in net.get_parameters()
                   if p.name.startswith("classifier.")}
    report = load_start_weights(net, path, head="classifier")
    for p in net.get_parameters():
        if p.name.startswith("classifier."):  # left as initialised: 10 classes, not 1000
            np.testing.assert_array_equal(p.asnumpy(), head_before[p.name])
        else:
            np.testing.assert_array_equal(p.asnumpy(), saved[p.name], err_msg=p.name)
    assert report.reinitialised == ["classifier.weight", "classifier.bias"]
    assert len(report.loaded) == len(list(net.get_parameters())) - 2
    assert report.skipped == ["global_step"] and not report.adapted
    assert "2 re-initialised" in report.summary() and report.sha256 in json.dumps(report.to_json())


def test_grey_images_on_a_colour_checkpoint_sum_the_stem_over_its_channels(resnet_file):
    from sharpdro.finetune import load_start_weights

    path, saved = resnet_file
    colour, grey = fresh_params("resnet18", 1000, 3), fresh_params("resnet18", 10, 1)
    load_start_weights(colour, path, head="classifier")
    report = load_start_weights(grey, path, head="classifier")
    assert report.adapted == ["conv1.weight"]
    # the grey network on x computes the colour network's features on x repeated 3 times
    x = np.random.default_rng(0).random((2, 1, 64, 64), np.float32)
    for net in (colour, grey):
        net.set_train(False)
    head = saved["classifier.weight"], saved["classifier.bias"]
    grey.classifier.weight.set_data(ms.Tensor(head[0]))
    grey.classifier.bias.set_data(ms.Tensor(head[1]))
    got = grey(ms.Tensor(x)).asnumpy()
    want = colour(ms.Tensor(np.repeat(x, 3, axis=1))).asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_another_architecture_is_refused_listing_names(resnet_file):
    from sharpdro.finetune import load_start_weights

    net = fresh_params("wrn", 10, 3)
    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    with pytest.raises(ValueError, match="does not fit this model .*another architecture.*"
                                         "stem.weight: not in the file"):
        load_start_weights(net, resnet_file[0], head="fc")
    for p in net.get_parameters():  # untouched
        np.testing.assert_array_equal(p.asnumpy(), before[p.name])



def test_eval_resume_and_start_refuse_another_architecture_in_one_format(tmp_path):
    """The three loaders share one matcher (sharpdro/checkpoint.py load_matching): a
    small_cnn training checkpoint loaded into a wrn gives the same one-line error for eval
    (strict), resume (strict, optimizer state left out) and as start weights."""
    from sharpdro.checkpoint import load_network_weights, load_train_state, save_train_state
    from sharpdro.finetune import load_start_weights

    path = str(tmp_path / "small_cnn.ckpt")
    save_train_state(fresh_params("small_cnn", 3, 1, seed=1), path, {"epoch": 1, "step": 4})
    net = fresh_params("wrn", 3, 1)
    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    saved = values(path)
    wrong = [p.name for p in net.get_parameters()
             if p.name not in saved or saved[p.name].shape != tuple(p.shape)]
    messages = []
    for load in (lambda: load_network_weights(net, path), lambda: load_train_state(net, path),
                 lambda: load_start_weights(net, path, head="fc")):
        with pytest.raises(ValueError) as err:
            load()
        messages.append(str(err.value))
    assert messages[0] == messages[1] == messages[2], messages
    message = messages[0]
    assert "\n" not in message
    assert message.startswith(f"checkpoint {path} does not fit this model ({len(wrong)} of "
                              f"{len(before)} parameters; a checkpoint of another architecture?): "
                              f"{wrong[0]}: not in the file; {wrong[1]}: not in the file; ")
    assert message.endswith(f"; ... ({len(wrong) - 5} more)")
    assert [part.split(":")[0] for part in message.split("): ", 1)[1].split("; ")[:5]] == wrong[:5]
    for p in net.get_parameters():  # untouched
        np.testing.assert_array_equal(p.asnumpy(), before[p.name])

def test_freeze_backbone_leaves_only_the_head_trainable():
    from sharpdro.finetune import freeze_backbone

    net = fresh_params("small_cnn", 3, 1)
    frozen = freeze_backbone(net, "fc")
    assert [p.name for p in net.trainable_params()] == ["fc.weight", "fc.bias"]
    assert frozen == len(list(net.get_parameters())) - 2
    with pytest.raises(ValueError, match="no head 'head'"):
        freeze_backbone(fresh_params("small_cnn", 3, 1), "head")


def test_backbone_lr_scale_groups_the_learning_rates():
    from sharpdro.optim import create_optimizer

    net = fresh_params("small_cnn", 3, 1)
    lrs = [0.1, 0.05, 0.01]
    opt = create_optimizer(net.trainable_params(), lrs, backbone_lr_scale=0.1, head="fc")
    for p in net.trainable_params():
        want = lrs if p.name.startswith("fc.") else [0.1 * v for v in lrs]
        np.testing.assert_allclose(opt.get_lr_parameter(p).asnumpy(), want, rtol=1e-6,
                                   err_msg=p.name)
    same = create_optimizer(net.trainable_params(), lrs)  # scale 1: one group, as before
    assert not same.is_group_lr
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="backbone_lr_scale"):
            create_optimizer(net.trainable_params(), lrs, backbone_lr_scale=bad, head="fc")
    with pytest.raises(ValueError, match="head"):
        create_optimizer(net.trainable_params(), lrs, backbone_lr_scale=0.5)


# -- through train.py ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A finished tiny run to start from."""
    root = tmp_path_factory.mktemp("finetune")
    cache, run = str(root / "cache"), str(root / "source")
    train_entry.main(tiny(cache, run, *FAST))
    return {"root": root, "cache": cache, "run": run,
            "best": os.path.join(run, "checkpoints", "best.ckpt")}


def snapshot_at_start(monkeypatch):
    """The network's parameters when the callbacks are built (after the start weights are
    loaded, before the first step)."""
    import callbacks

    seen = []
    original = callbacks.create_callbacks

    def spy(cell, net, *rest, **kw):
        seen.append({p.name: p.asnumpy().copy() for p in net.get_parameters()})
        return original(cell, net, *rest, **kw)

    monkeypatch.setattr(callbacks, "create_callbacks", spy)
    return seen


def test_another_runs_best_checkpoint_is_the_start(source, tmp_path, monkeypatch, capsys):
    seen = snapshot_at_start(monkeypatch)
    run = str(tmp_path / "b")
    train_entry.main(tiny(source["cache"], run, *FAST, "--epochs", "1",
                          "--model.checkpoint", source["best"]))
    saved = values(source["best"])
    assert seen and set(seen[0]) <= set(saved)
    for name, value in seen[0].items():
        np.testing.assert_array_equal(value, saved[name], err_msg=name)
    out = capsys.readouterr().out
    assert f"{len(seen[0])} parameters loaded" in out
    record = json.load(open(os.path.join(run, "start_weights.json")))
    assert record["loaded"] == len(seen[0]) and record["reinitialised"] == []
    assert record["trained_with"]["name"] == "small_cnn"
    from sharpdro.atomic import file_sha256

    assert record["sha256"] == file_sha256(source["best"])


def test_a_frozen_backbone_and_its_batchnorm_statistics_stay_bit_identical(source, tmp_path):
    run = str(tmp_path / "frozen")
    train_entry.main(tiny(source["cache"], run, *FAST, "--algorithm.name", "sharpdro",
                          "--model.checkpoint", source["best"], "--model.freeze", "backbone"))
    start, end = values(source["best"]), values(os.path.join(run, "checkpoints", "last.ckpt"))
    backbone = [k for k in start if k.startswith("features.")]
    assert any("moving_mean" in k for k in backbone)
    for name in backbone:
        np.testing.assert_array_equal(end[name], start[name], err_msg=name)
    assert not np.array_equal(end["fc.weight"], start["fc.weight"])  # the head trained
    assert not any(k.startswith("moments.features") for k in end)  # not in the optimizer


def test_a_fine_tuning_run_resumes_exactly(source, tmp_path, monkeypatch):
    args = [*FAST, "--model.checkpoint", source["best"], "--optim.backbone_lr_scale", "0.1",
            "--epochs", "3"]
    whole, broken = str(tmp_path / "whole"), str(tmp_path / "broken")
    train_entry.main(tiny(source["cache"], whole, *args))
    undo = crash_at_epoch_2(monkeypatch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_entry.main(tiny(source["cache"], broken, *args))
    undo()
    train_entry.main(["--resume", broken])
    want, got = values(os.path.join(whole, "checkpoints", "last.ckpt")), \
        values(os.path.join(broken, "checkpoints", "last.ckpt"))
    assert set(want) == set(got) and any(k.startswith("learning_rate_group") for k in got)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_other_class_names_warn(source, tmp_path, capsys):
    other = tmp_path / "other"
    os.makedirs(other / "checkpoints")
    info = json.load(open(os.path.join(source["run"], "data.json")))
    info["class_names"] = ["cat", "dog", "owl"]
    json.dump(info, open(other / "data.json", "w"))
    (other / "config.yaml").write_text(open(os.path.join(source["run"], "config.yaml")).read())
    ckpt = other / "checkpoints" / "best.ckpt"
    ckpt.write_bytes(open(source["best"], "rb").read())
    train_entry.main(tiny(source["cache"], str(tmp_path / "run"), *FAST, "--epochs", "1",
                          "--model.checkpoint", str(ckpt)))
    err = capsys.readouterr().err
    assert "other class names" in err and "'cat' there" in err


def expect_refusal(args, run_dir, match):
    with pytest.raises(SystemExit) as stop:
        train_entry.main(args)
    message = str(stop.value)
    assert message.startswith("error: ") and "\n" not in message.strip(), message
    assert re.search(match, message), message
    assert not os.path.exists(run_dir), "nothing is written on bad input"


def test_bad_start_weights_are_one_line_and_write_nothing(source, tmp_path):
    run = str(tmp_path / "bad")
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(open(source["best"], "rb").read()[:200])
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    wrn = tmp_path / "wrn.ckpt"
    ms.save_checkpoint(fresh_params("wrn", 3, 1), str(wrn))
    cases = [
        (["--model.checkpoint", str(tmp_path / "missing.ckpt")], "does not exist"),
        (["--model.checkpoint", str(truncated)], "cannot be read"),
        (["--model.checkpoint", str(text)], "cannot be read"),
        (["--model.checkpoint", str(wrn)], "does not fit this model"),
        (["--model.checkpoint", str(wrn), "--model.pretrained", "true"], "give one start"),
        (["--optim.backbone_lr_scale", "-1"], "backbone_lr_scale"),
        (["--optim.backbone_lr_scale", ".inf"], "backbone_lr_scale"),
        (["--model.pretrained", "true"], "no published weights for small_cnn"),
    ]
    for extra, match in cases:
        expect_refusal(tiny(source["cache"], run, *FAST, *extra), run, match)


def test_freeze_needs_a_head(source, tmp_path, monkeypatch):
    import callbacks.start as start

    monkeypatch.setattr(start, "model_head", lambda name: None)
    run = str(tmp_path / "headless")
    expect_refusal(tiny(source["cache"], run, *FAST, "--model.freeze", "backbone"), run,
                   "registers no head")


def test_pretrained_offline_fails_in_one_line_and_a_cached_file_is_used(source, tmp_path,
                                                                       monkeypatch):
    """The download is never attempted: urlopen is replaced by one that fails."""
    import urllib.error
    import urllib.request

    import mindcv.models.helpers as helpers

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setattr(helpers, "get_checkpoint_download_root", lambda: str(tmp_path / "cache"))
    run = str(tmp_path / "pre")
    args = tiny(source["cache"], run, *FAST, "--model.name", "resnet18", "--image_size", "32",
                "--model.pretrained", "true", "--epochs", "1", "--num_per_class", "20")
    expect_refusal(args, run, r"cannot download mindcv's resnet18 weights .*resnet18-.*\.ckpt"
                   r".*--model.checkpoint PATH")
    assert os.listdir(tmp_path / "cache") == []  # no empty stub left behind
    # with the file in mindcv's cache, the same command trains from it
    from mindcv.models.resnet import default_cfgs

    cached = tmp_path / "cache" / os.path.basename(default_cfgs["resnet18"]["url"])
    mindcv_style_checkpoint(cached, in_channels=3)
    train_entry.main(args)
    record = json.load(open(os.path.join(run, "start_weights.json")))
    assert record["adapted"] == ["conv1.weight"]  # grey synthetic images, colour weights
    assert record["reinitialised"] == ["classifier.weight", "classifier.bias"]
