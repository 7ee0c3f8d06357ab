"""The config system: every shipped file loads, overrides, and clear errors."""
import glob
import os

import pytest
import yaml

from sharpdro.config import ConfigError, load_config, parse_overrides, save_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml")))


def test_there_are_configs():
    names = {os.path.basename(p) for p in CONFIGS}
    assert {"quickstart.yaml", "cifar10_wrn28_2.yaml", "cifar100_wrn28_2.yaml",
            "imagenet30_wrn28_2.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_every_config_loads_and_builds(path):
    from sharpdro.algorithms import ALGORITHMS
    from sharpdro.models import MODELS

    cfg = load_config(path)
    ALGORITHMS.check(cfg.algorithm.name)
    MODELS.check(cfg.model.name)
    with open(path) as f:  # every key written in the file is what the config holds
        raw = yaml.safe_load(f)
    for section, values in raw.items():
        if isinstance(values, dict):
            for key, value in values.items():
                assert cfg[section][key] == value, (section, key)


def test_paper_settings():
    cfg = load_config(os.path.join(ROOT, "configs", "cifar10_wrn28_2.yaml"))
    assert (cfg.model.name, cfg.model.depth, cfg.model.widen_factor) == ("wrn", 28, 2)
    assert cfg.train.batch_size == 100 and cfg.train.epochs == 200
    assert cfg.optim.weight_decay == 5e-4 and cfg.optim.momentum == 0.9
    assert cfg.algorithm.rho == 0.05 and cfg.algorithm.eta == 0.01


def test_overrides_both_forms_and_short_keys():
    cfg = load_config(None, ["--lr", "0.1", "--algorithm.rho=0.2", "--model.name", "wrn",
                             "--milestones", "[0.5, 0.75]", "--adaptive", "true"])
    assert cfg.optim.lr == 0.1 and cfg.algorithm.rho == 0.2 and cfg.model.name == "wrn"
    assert cfg.optim.milestones == [0.5, 0.75] and cfg.algorithm.adaptive is True
    assert parse_overrides(["--epochs", "3"]) == {"train.epochs": 3}
    # ints are accepted where floats are expected
    assert load_config(None, {"optim.lr": 1}).optim.lr == 1.0


def test_unknown_keys_name_the_closest():
    with pytest.raises(ConfigError, match=r"'algorithm\.rh'.*did you mean 'algorithm\.rho'"):
        load_config(None, {"algorithm.rh": 0.1})
    with pytest.raises(ConfigError, match=r"'algorithm\.etta'.*'algorithm\.eta'"):
        load_config(None, ["--algorithm.etta", "0.1"])


def test_unknown_key_in_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"'optim\.lrr'.*'optim\.lr'"):
        load_config(str(path))
    path.write_text("trian:\n  epochs: 1\n")
    with pytest.raises(ConfigError, match=r"'trian'.*'train'"):
        load_config(str(path))


@pytest.mark.parametrize("override,message", [
    ({"train.epochs": "many"}, "train.epochs: expected int"),
    ({"train.epochs": 2.5}, "train.epochs: expected int"),
    ({"algorithm.adaptive": "yes"}, "expected bool"),
    ({"algorithm.rho": -0.1}, "algorithm.rho: -0.1 must be >= 0"),
    ({"algorithm.eta": -1}, "algorithm.eta"),
    ({"data.num_severity": 0}, "num_severity"),
    ({"data.poisson_lambda": 0}, "must be > 0"),
    ({"mode": "eager"}, "mode: 'eager' is not one of"),
    ({"device_target": "TPU"}, "device_target"),
    ({"algorithm.eps_source": "worst"}, "eps_source"),
    ({"optim.milestones": [0.8, 0.3]}, "milestones"),
    ({"optim.milestones": ["a"]}, r"milestones\[0\]"),
    ({"train.epochs": None}, "null is not allowed"),
])
def test_wrong_values(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, override)


def test_short_keys_and_ambiguity(monkeypatch):
    from sharpdro import config

    assert parse_overrides(["--name", "x"]) == {"name": "x"}  # exact path wins over model.name
    monkeypatch.setattr(config, "leaves", lambda: {"a.depth": None, "b.depth": None})
    with pytest.raises(ConfigError, match="ambiguous"):
        config.resolve_key("depth")


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="needs a value"):
        parse_overrides(["--lr"])
    with pytest.raises(ConfigError, match="expected --key value"):
        parse_overrides(["lr", "0.1"])


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("no/such.yaml")


def _one_line(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


@pytest.mark.parametrize("text,pattern", [
    # a duplicated section: YAML keeps the last, so the first one's keys were dropped
    ("data:\n  dataset: synthetic\noptim:\n  lr: 0.1\ndata:\n  num_severity: 3\n",
     r"bad.yaml line 5: 'data' appears twice \(first on line 1\)"),
    ("optim:\n  lr: 0.1\n  momentum: 0.5\n  lr: 0.2\n",
     r"bad.yaml line 4: 'optim.lr' appears twice \(first on line 2\)"),
    ("optim: {lr: 0.1, lr: 0.2}\n", r"line 1: 'optim.lr' appears twice"),
])
def test_a_duplicated_key_in_a_file_names_the_key_and_line(tmp_path, text, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as e:
        load_config(str(path))
    _one_line(e)


@pytest.mark.parametrize("nest", [
    lambda n: "optim:\n  milestones: " + "[" * n + "]" * n + "\n",
    lambda n: "data:\n  columns: " + "{a: " * n + "1" + "}" * n + "\n",
    lambda n: "".join("  " * i + "a:\n" for i in range(n)) + "  " * n + "1\n",
])
def test_yaml_nested_thousands_deep_is_one_line(tmp_path, nest):
    """5000 levels were a RecursionError traceback."""
    path = tmp_path / "deep.yaml"
    path.write_text(nest(5000))
    with pytest.raises(ConfigError, match=r"deep.yaml line \d+: nested more than \d+ levels") as e:
        load_config(str(path))
    _one_line(e)


def test_overrides_are_read_by_the_same_strict_yaml():
    with pytest.raises(ConfigError, match=r"--data.columns: nested more than \d+ levels") as e:
        parse_overrides(["--data.columns", "[" * 5000 + "]" * 5000])
    _one_line(e)
    with pytest.raises(ConfigError, match=r"--data.columns: 'label' appears twice") as e:
        parse_overrides(["--data.columns", "{label: y, label: z}"])
    _one_line(e)
    assert parse_overrides(["--data.columns", "{label: y}"]) == {"data.columns": {"label": "y"}}
    with pytest.raises(ConfigError, match=r"--optim.milestones is not valid YAML") as e:
        parse_overrides(["--optim.milestones", "[0.3, 0.6"])  # was a yaml traceback
    _one_line(e)


@pytest.mark.parametrize("text", ["\x00\x01 binary", "data:\n\tdataset: csv\n", "a: 1\n---\nb: 2\n"])
def test_a_broken_yaml_file_is_one_line(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML: ") as e:
        load_config(str(path))
    _one_line(e)


def test_yaml_merge_keys_may_still_override(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("data:\n  dataset: csv\n  columns: {<<: {label: y, group: g}, label: z}\n"
                    "model:\n  name: small_cnn\nalgorithm:\n  name: erm\n")
    assert load_config(str(path)).data.columns == {"label": "z", "group": "g"}


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(os.path.join(ROOT, "configs", "quickstart.yaml"), ["--rho", "0.1"])
    path = str(tmp_path / "config.yaml")
    save_config(cfg, path)
    again = load_config(path)
    assert again == cfg and again.algorithm.rho == 0.1


def test_readme_option_table_is_the_hyperparameter_registry():
    """The documented algorithm option table (docs/method.md) is generated from
    sharpdro/hparams.py."""
    from sharpdro.hparams import markdown_table

    readme = open("docs/method.md").read()
    start = readme.index("<!-- hparams table: python -m sharpdro.hparams -->\n")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- end hparams table -->", start)
    assert readme[start:end] == markdown_table()


def test_every_algorithm_has_one_hyperparameter_table():
    from sharpdro.algorithms import ALGORITHMS
    from sharpdro.config import LEAVES
    from sharpdro.hparams import HPARAMS, all_hparams

    assert ALGORITHMS.names() == sorted(HPARAMS)
    for name in ALGORITHMS.names():
        assert ALGORITHMS.options(name) == tuple(HPARAMS[name])
    # the config schema's algorithm section is the table's, defaults and ranges included
    assert {k for k in LEAVES if k.startswith("algorithm.")} == {
        "algorithm.name", *(f"algorithm.{k}" for k in all_hparams())}
    for key, field in all_hparams().items():
        assert LEAVES[f"algorithm.{key}"] is field


def test_create_train_step_takes_its_defaults_from_the_table():
    import mindspore.nn as nn

    from helpers import TinyNet
    from sharpdro.algorithms import create_train_step
    from sharpdro.hparams import HPARAMS
    from sharpdro.optim import create_optimizer

    net = TinyNet()
    cell = create_train_step("sharpdro", net, create_optimizer(net.trainable_params(), 0.1), 4)
    table = HPARAMS["sharpdro"]
    assert cell.rho == table["rho"].default and cell.eta == table["eta"].default
    assert cell.adaptive is table["adaptive"].default and isinstance(cell, nn.Cell)


def test_evaluations_left_for_the_eta():
    from callbacks.state import RunState

    state = RunState(steps_per_epoch=10, epochs=5, eval_every=2)
    # evaluations after epochs 2, 4 and 5 (the last)
    assert [state.evals_left(s) for s in (1, 10, 11, 20, 21, 40, 41, 50)] == [3, 3, 3, 3, 2, 2, 1, 1]
    stopped = RunState(steps_per_epoch=10, epochs=5, max_steps=25, eval_every=2)
    assert [stopped.evals_left(s) for s in (1, 20, 21, 25)] == [2, 2, 1, 1]  # epochs 2 and 3


def test_every_registered_option_is_a_config_key_of_its_section():
    """A model's or a reader's options are named where it is registered (the registry passes
    only those) and typed in the config schema (checked before MindSpore loads): the two
    lists cannot drift apart."""
    from datasets import READERS
    from sharpdro import config as C
    from sharpdro.algorithms import ALGORITHMS
    from sharpdro.models import MODELS

    for section, registry in (("model", MODELS), ("data", READERS), ("algorithm", ALGORITHMS)):
        for name in registry.names():
            missing = [k for k in registry.options(name) if f"{section}.{k}" not in C.LEAVES]
            assert not missing, (section, name, missing)


def test_every_train_command_in_the_readme_and_docs_is_a_valid_config():
    """The train.py commands the README and docs/ show load: their files exist and every
    --key is a config key of the right type (documentation that drifts fails here)."""
    import re
    import shlex

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    checked = 0
    for path in [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md"))):
        text = open(path).read().replace("\\\n", " ")
        for line in text.splitlines():
            match = re.search(r"python train\.py (--config \S+.*)", line)
            if not match:
                continue
            args = shlex.split(match.group(1).split("#")[0])
            config, rest = args[1], [a for a in args[2:] if a not in ("--overwrite",)]
            if "--resume" in rest or "<" in match.group(1) or "..." in match.group(1):
                continue
            if config.startswith("runs/"):  # written by the command before it (tune.py)
                continue
            load_config(os.path.join(root, config), rest)
            checked += 1
    assert checked >= 10
