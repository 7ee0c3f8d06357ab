"""Run configuration: a typed schema, YAML files and command-line overrides.

The schema is :data:`BASE_SCHEMA` plus the options that registries declare where their
entries are registered: the ``model`` section gets every model's (``sharpdro/models``), the
``data`` section every dataset reader's (the ``datasets`` package adds its registry with
``add_option_source`` when imported), the ``algorithm`` section every algorithm's
hyperparameters (``sharpdro/hparams.py``). ``SCHEMA`` and ``LEAVES`` are built on first use.

A config file is YAML with the sections of :data:`SCHEMA`; anything it leaves out takes
the default. Overrides come from the command line as ``--section.key value`` or
``--section.key=value``; a key whose name is unique across sections may drop its section
(``--lr 0.03`` is ``--optim.lr 0.03``). Values are read as YAML (``0.1``, ``true``,
``null``, ``[0.3, 0.6]``). Unknown keys and wrong types are errors that name the key;
a key given twice in a file (YAML would keep the last) is an error naming it and its line.
A config file must name its dataset, model and algorithm (:data:`REQUIRED_IN_FILE`); the
built-in defaults alone (no file) are for tests and quick experiments.
"""
import copy
import datetime
import os

import yaml

from .atomic import atomic_path
from .field import ConfigError, Field
from .hparams import all_hparams, users
from .registry import closest
from .choices import (CORRUPTION_TABLES, EXECUTION_MODES, MAX_STEPS, PARALLEL_MODES, ROUNDINGS,
                      SCHEDULES)
from .runtime import DEVICE_TARGETS

REQUIRED_IN_FILE = ("data.dataset", "model.name", "algorithm.name")
GROUP_SOURCES = ("severity", "given", "none")  # data.groups (datasets/build.py registers each)
# train.best_metric -> (split, field of its eval.jsonl record)
METRICS = {"val_worst_acc": ("val", "worst_acc"), "val_mean_acc": ("val", "mean_acc")}
BEST_METRICS = tuple(METRICS)
GROUP_SAMPLERS = ("group_balanced", "class_group_balanced")  # need group labels
SAMPLERS = ("permutation", "replacement") + GROUP_SAMPLERS  # datasets/pipeline.py draws them


BASE_SCHEMA = {
    "name": Field(None, str, "run name; default <algorithm>-<dataset>-<timestamp>"),
    "seed": Field(0, int, "seeds the data split, the noise, the weights and the data order", low=0),
    "device_target": Field("CPU", str, "MindSpore device", choices=DEVICE_TARGETS),
    "device_id": Field(None, int, "device index; null lets MindSpore choose", low=0),
    "mode": Field("graph", str, "MindSpore execution mode", choices=EXECUTION_MODES),
    "output_root": Field("runs", str, "parent folder of run folders"),
    "run_dir": Field(None, str, "run folder; default <output_root>/<name>"),
    "protocol": Field("ours", str, "'authors' behaves like the authors' code where it differs "
                      "from ours (see AUTHORS_PROTOCOL); keys set explicitly still win",
                      choices=("ours", "authors")),
    "data": {
        "dataset": Field("synthetic", str, "dataset reader name (image_folder and csv: your "
                         "own images)"),
        "data_dir": Field("data", str, "where the dataset files are (image_folder: ROOT of "
                          "ROOT/{train,val,test}/[<group>/]<class>/*)"),
        "groups": Field("severity", str, "where groups come from: 'severity' makes them by "
                        "the photon-limited protocol (Poisson split + data.corruption); "
                        "'given' takes them from the data (a folder level or a CSV column); "
                        "'none': no group labels (the label-free erm, sam, cvar, jtt, eiil, "
                        "sharpdro_agnostic)",
                        choices=GROUP_SOURCES),
        "val_fraction": Field(0.1, float, "where the data has no validation (or test) split: "
                              "the share carved from the training images, stratified by class "
                              "and group", low=0.0, high=0.9, low_open=True),
        "corruption": Field("gaussian_noise", str, "corruption applied at severities 1..S"),
        "num_severity": Field(5, int, "S: severities 1..S plus clean 0 make S+1 groups",
                              low=1, high=5),
        "poisson_lambda": Field(1.0, float, "share of severity s is Poisson(lambda).pmf(s)",
                                low=0.0, low_open=True),
        "num_per_class": Field(None, int, "training images per class; null = dataset default",
                               low=1),
        "val_per_class": Field(None, int, "validation images per class: null = all the "
                               "training images not in the training set (SPEC); a cap "
                               "makes frequent evaluation cheaper", low=1),
        "corruption_table": Field("default", str, "corruption constants: 'default' (CIFAR-10-C "
                                  "up to 32 px, Tiny-ImageNet-C above) or the harsher "
                                  "'imagenet_c'", choices=CORRUPTION_TABLES),
        "cache_dir": Field("cache", str, "where corrupted arrays are cached"),
        "random_crop": Field(False, bool, "training augmentation: random crop (pad 4) in "
                             "addition to the horizontal flip"),
        "file_lists": Field(None, str, "imagenet30: folder of file lists to reuse a split "
                            "(train_severity_<s>.txt and val.txt, or the authors' "
                            "imagenet30_distribution_<s>.txt and imagenet30_val.txt); null "
                            "draws and writes them"),
        "sampler": Field("permutation", str, "training order: a permutation per epoch; n "
                         "draws with replacement (the authors' code); n draws with "
                         "probability 1/n_g (group_balanced) or 1/n_(g,y) "
                         "(class_group_balanced, Idrissi et al. 2022); the last partial "
                         "batch is dropped", choices=SAMPLERS),
        "uint8_rounding": Field("round", str, "corrupted images to uint8: to the nearest level, "
                                "or truncated as the authors' code (about 0.5 level darker)",
                                choices=ROUNDINGS),
        "resave_jpeg": Field(0, int, "re-save corrupted images as JPEG at this quality, as the "
                             "authors' ImageNet-30 files are (0 = off)", low=0, high=100),
    },
    "model": {
        "name": Field("small_cnn", str, "model registry name"),
        "checkpoint": Field(None, str, "start from this MindSpore checkpoint (a mindcv one of "
                            "the same architecture, or a best.ckpt/last.ckpt of one of our "
                            "runs): matched by name and shape, the head re-initialised for "
                            "another class count"),
        "pretrained": Field(False, bool, "start from mindcv's published ImageNet weights "
                            "(resnet18, resnet50; downloaded into mindcv's cache)"),
        "freeze": Field("none", str, "'backbone': train only the classifier head (the "
                        "backbone's BatchNorm statistics frozen too)",
                        choices=("none", "backbone")),
    },
    # name plus every algorithm's hyperparameters, from their one table (sharpdro/hparams.py)
    "algorithm": {"name": Field("sharpdro", str, "algorithm registry name"), **all_hparams()},
    "optim": {
        "lr": Field(0.03, float, "initial learning rate", low=0.0, low_open=True),
        "momentum": Field(0.9, float, "SGD momentum", low=0.0, high=1.0),
        "weight_decay": Field(5e-4, float, "L2 weight decay", low=0.0),
        "backbone_lr_scale": Field(1.0, float, "learning rate of everything but the head, "
                                   "as a multiple of the head's (e.g. 0.1 to fine-tune)",
                                   low=0.0),
        "decay_bn_bias": Field(True, bool, "also decay BatchNorm scale/shift and biases "
                               "(the authors' code does)"),
        "schedule": Field("step", str, "learning-rate schedule, applied per step",
                          choices=SCHEDULES),
        "milestones": Field([0.3, 0.6, 0.8], list, "step schedule: fractions of training",
                            item_type=float),
        "gamma": Field(0.2, float, "step schedule: factor at each milestone", low=0.0),
        "milestone_unit": Field("step", str, "step schedule: 'step' changes the rate at the "
                                "first step past a milestone; 'epoch' as the authors' code, "
                                "after the epoch past it (one epoch later)",
                                choices=("step", "epoch")),
    },
    "train": {
        "epochs": Field(200, int, "training epochs", low=1),
        "batch_size": Field(100, int, "training batch size", low=1),
        "eval_batch_size": Field(500, int, "evaluation batch size", low=1),
        "sink_mode": Field(False, bool, "MindSpore dataset sink mode"),
        "log_every": Field(50, int, "steps between progress lines", low=1),
        "eval_every": Field(1, int, "epochs between evaluations (and always after the last)",
                            low=1),
        "best_metric": Field("val_worst_acc", str, "validation metric that picks best.ckpt "
                             "(higher is better)", choices=BEST_METRICS),
        "max_steps": Field(0, int, "stop after this many steps in total (0 = all epochs); "
                           "for smoke tests", low=0),
        "until_epoch": Field(0, int, "stop after this epoch (0 = train.epochs); the schedule "
                             "still spans train.epochs, so the run resumed with a later "
                             "until_epoch goes on as if it had not stopped (tune.py --halving)",
                             low=0),
        "eval_max_batches": Field(0, int, "evaluate only the first N batches of each split "
                                  "and severity during training (0 = all); for smoke tests, "
                                  "where full evaluation dominates the time", low=0),
        "export_mindir": Field(True, bool, "export the best model to model.mindir at the end"),
        "amp_level": Field("O0", str, "mixed precision (mindspore.amp): O0 float32; O1 float16 "
                           "for listed ops (GPU); O2 float16 except BatchNorm and the loss "
                           "(GPU, Ascend); O3 all float16 (Ascend)",
                           choices=("O0", "O1", "O2", "O3")),
        "loss_scale": Field("auto", str, "dynamic loss scaling over both passes: 'auto' = "
                            "on unless amp_level is O0; 'dynamic' always; 'none' never",
                            choices=("auto", "dynamic", "none")),
        "distributed": Field("auto", str, "data parallel: 'auto' when started by msrun (one "
                             "process per device, batch_size is the global batch), 'off' "
                             "always one process", choices=PARALLEL_MODES),
    },
}


# protocol: authors. What the authors' code does where ours differs; a preset of defaults:
# any of these keys set in the file or on the command line keeps its value.
AUTHORS_PROTOCOL = {
    "data.sampler": "replacement",
    "data.uint8_rounding": "truncate",
    "optim.milestone_unit": "epoch",
    "data.resave_jpeg": lambda values: 85 if _get(values, "data.dataset") == "imagenet30" else 0,
}


def _get(values, dotted):
    node = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def apply_protocol(values):
    """The preset of ``protocol`` filled into ``values`` (nested dicts) where a key is unset."""
    if values.get("protocol") != "authors":
        return values
    for dotted, value in AUTHORS_PROTOCOL.items():
        if _get(values, dotted) is None:
            section, key = dotted.split(".")
            values.setdefault(section, {})[key] = value(values) if callable(value) else value
    return values


class Config(dict):
    """A nested dict whose keys are also attributes: ``cfg.algorithm.rho``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_dict(self):
        return {k: v.to_dict() if isinstance(v, Config) else copy.deepcopy(v)
                for k, v in self.items()}


def _leaves(schema, prefix=""):
    for key, value in schema.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, path + ".")
        else:
            yield path, value


_SOURCES = {}  # section -> [function returning {key: Field}]: the registries' options
_BUILT = {}    # the schema and its leaves, once built


def add_option_source(section, fields):
    """Add the options ``fields()`` returns ({key: Field}) to ``section`` of the schema: a
    registry's (the datasets package adds its readers' this way)."""
    _SOURCES.setdefault(section, []).append(fields)
    _BUILT.clear()


def schema():
    """The whole schema: BASE_SCHEMA with every registered source's options."""
    if not _BUILT:
        from .models import MODELS  # MindSpore loads here: after configure_process

        out = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE_SCHEMA.items()}
        for section, sources in [("model", [MODELS.fields])] + list(_SOURCES.items()):
            for fields in sources:
                for key, field in fields().items():
                    if out[section].setdefault(key, field) is not field:
                        raise AssertionError(f"config key {section}.{key} is declared twice")
        _BUILT.update(schema=out, leaves=dict(_leaves(out)))
    return _BUILT["schema"]


def leaves():
    """{dotted key: Field} of every leaf of the schema."""
    schema()
    return _BUILT["leaves"]


def __getattr__(name):  # SCHEMA, LEAVES, SECTIONS: built on first use
    if name == "SCHEMA":
        return schema()
    if name == "LEAVES":
        return leaves()
    if name == "SECTIONS":
        return {path.rsplit(".", 1)[0] for path in leaves() if "." in path}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def defaults():
    return _build(schema(), {}, "")


def _unknown(key, valid):
    hint = closest(key, valid)
    return ConfigError(f"unknown config key {key!r}" + (f"; did you mean {hint!r}?" if hint else "")
                       + " (see sharpdro/config.py for all keys)")


def _build(schema, values, prefix):
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, "
                          f"got {type(values).__name__}")
    for key in values:
        if key not in schema:
            raise _unknown(f"{prefix}{key}", list(leaves()) + sorted(
                {path.rsplit(".", 1)[0] for path in leaves() if "." in path}))
    out = Config()
    for key, field in schema.items():
        path = f"{prefix}{key}"
        if isinstance(field, dict):
            out[key] = _build(field, values.get(key) or {}, path + ".")
        else:
            out[key] = field.coerce(path, values[key]) if key in values else copy.deepcopy(field.default)
    return out


def resolve_key(key):
    """Full dotted path for ``key``: itself, or the one leaf whose last part it is."""
    if key in leaves():
        return key
    matches = [path for path in leaves() if path.rsplit(".", 1)[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"config key {key!r} is ambiguous: use one of {matches}")
    raise _unknown(key, list(leaves()))


MAX_YAML_DEPTH = 100  # no config nests more than 4 levels; PyYAML's composer recurses


class _Refused(yaml.YAMLError):
    def __init__(self, mark, message):
        super().__init__(message)
        self.line, self.message = mark.line + 1, message


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (YAML keeps the last,
    silently dropping the first, e.g. a whole duplicated section) and nesting deeper than
    MAX_YAML_DEPTH (a RecursionError otherwise). Merge keys (``<<: *base``) may still be
    overridden."""

    def __init__(self, stream):
        super().__init__(stream)
        self.path = []  # the keys (or item indexes) from the document to the node composed

    def compose_node(self, parent, index):
        if len(self.path) > MAX_YAML_DEPTH:
            raise _Refused(self.peek_event().start_mark,
                           f"nested more than {MAX_YAML_DEPTH} levels deep")
        self.path.append(index.value if isinstance(index, yaml.ScalarNode) else index)
        try:
            return super().compose_node(parent, index)
        finally:
            self.path.pop()

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        first = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if (key.tag, key.value) in first:
                    name = ".".join(str(p) for p in self.path[1:] + [key.value])
                    raise _Refused(key.start_mark, f"{name!r} appears twice (first on line "
                                   f"{first[key.tag, key.value]}); YAML would keep only the "
                                   "last: remove one")
                first[key.tag, key.value] = key.start_mark.line + 1
        return node


def read_yaml(text, where, lines=True):
    """The value of the YAML ``text`` (a string or a file) read by _StrictLoader; an error
    is a one-line ConfigError naming ``where`` (and the line, with ``lines``)."""
    loader = None
    try:
        loader = _StrictLoader(text)  # reads the start of the stream: may fail already
        return loader.get_single_data()
    except _Refused as err:
        raise ConfigError(f"{where}{f' line {err.line}' if lines else ''}: {err.message}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(err).split())}") from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_overrides(args):
    """``['--optim.lr', '0.1', '--rho=0.2']`` -> ``{'optim.lr': 0.1, 'algorithm.rho': 0.2}``."""
    out, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"expected --key value, got {arg!r}")
        if "=" in arg:
            key, text = arg[2:].split("=", 1)
            i += 1
        else:
            key = arg[2:]
            if i + 1 >= len(args) or (args[i + 1].startswith("--") and len(args[i + 1]) > 2):
                raise ConfigError(f"--{key} needs a value")
            text = args[i + 1]
            i += 2
        key = resolve_key(key.replace("-", "_"))
        out[key] = read_yaml(text, f"--{key}", lines=False) if text != "" else None
    return out


def load_config(path=None, overrides=None):
    """Defaults, then the YAML file at ``path``, then ``overrides`` (dotted keys or argv list)."""
    values = {}
    if path is not None:
        if os.path.isdir(path):
            raise ConfigError(f"config file {path!r} is a folder; give a YAML file")
        if not os.path.isfile(path):
            raise ConfigError(f"config file {path!r} does not exist")
        try:
            with open(path) as f:
                values = read_yaml(f, path) or {}
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a mapping, got {type(values).__name__}")
    if isinstance(overrides, (list, tuple)):
        overrides = parse_overrides(list(overrides))
    values = copy.deepcopy(values)
    for dotted, value in (overrides or {}).items():
        dotted = resolve_key(dotted)
        node = values
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{part}: expected a mapping")
        node[parts[-1]] = value
    if isinstance(values.get("protocol"), str) and isinstance(values.get("data", {}), dict):
        apply_protocol(values)
    cfg = _build(schema(), values, "")  # unknown keys and types first: the likelier mistake
    if path is not None:
        missing = [key for key in REQUIRED_IN_FILE if not _has(values, key)]
        if missing:
            raise ConfigError(f"{path}: missing required key(s) {missing}")
    _check(cfg)
    return cfg


def _has(values, dotted):
    return _get(values, dotted) is not None


def _check(cfg):
    """Rules that involve more than one key."""
    ms = cfg.optim.milestones
    if any(not 0.0 < m < 1.0 for m in ms) or list(ms) != sorted(ms):
        raise ConfigError(f"optim.milestones: {ms} must be increasing fractions in (0, 1)")
    if cfg.train.epochs > MAX_STEPS:  # each epoch is a step at least: refused before the data
        raise ConfigError(f"train.epochs: {cfg.train.epochs} epochs are more than {MAX_STEPS:,} "
                          "steps (the learning-rate schedule holds a rate per step, about 55 "
                          "bytes of memory each)")
    if cfg.model.checkpoint and cfg.model.pretrained:
        raise ConfigError("model.checkpoint and model.pretrained: give one start, not both")


# What a resumed run (train.py --resume R --key value) may change, and how train.py applies
# it: the learning-rate schedule is rebuilt from optim.lr and train.epochs (or max_steps)
# and the remaining steps take its values at their global step; the others change when or
# where work is done, not what is computed. Every other key must stay as the checkpoint has it.
RESUMABLE = ("train.epochs", "train.max_steps", "train.until_epoch", "optim.lr", "train.eval_every",
             "train.log_every", "train.export_mindir", "train.eval_batch_size",
             "train.sink_mode", "train.distributed", "device_target", "device_id", "mode",
             "data.data_dir", "data.cache_dir", "name", "run_dir", "output_root")


def flat(cfg):
    """{dotted key: value} of a config, one entry per schema leaf."""
    return {path: _get(cfg, path) for path in leaves()}


def from_text(text, where):
    """A config from YAML text (a checkpoint's copy); keys added since get their defaults."""
    return _build(schema(), read_yaml(text, where) or {}, "")


def from_dict(values):
    """A config from a nested dict (another config's ``to_dict()``, changed)."""
    return _build(schema(), copy.deepcopy(values), "")


def resume_changes(saved, cfg):
    """(allowed, refused): {key: (old value, new value)} of the keys that differ between
    the checkpoint's config ``saved`` and the resumed run's ``cfg``, split by
    :data:`RESUMABLE`."""
    old, new = flat(saved), flat(cfg)
    changed = {k: (old[k], new[k]) for k in leaves() if old[k] != new[k]}
    return ({k: v for k, v in changed.items() if k in RESUMABLE},
            {k: v for k, v in changed.items() if k not in RESUMABLE})


def run_name(cfg):
    if cfg.name:
        return cfg.name
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{cfg.algorithm.name}-{cfg.data.dataset}-{stamp}"


def save_config(cfg, path):
    """Write the resolved config as YAML (atomically), so the run can be reproduced."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)


def describe():
    """One line per key: path, default and help (for --help)."""
    def used_by(path):
        section, key = path.split(".", 1) if "." in path else ("", path)
        return f" [{', '.join(users(key))}]" if section == "algorithm" and key != "name" else ""

    return "\n".join(f"  --{path} (default {field.default!r}): {field.help}{used_by(path)}"
                     for path, field in leaves().items())
