"""The checks train.py makes before it touches a run folder: the algorithm, model, groups and
sampler go together; settings that do nothing; every group has evaluation images; the
mixed-precision level runs on the device; the start checkpoint's class names."""
import os
import sys

from sharpdro import config as C
from sharpdro import hparams as H


class UserError(Exception):
    """Bad input: reported in one line, exit status 1, nothing written."""


# the photon-limited protocol's settings (data.groups: severity)
SEVERITY_KEYS = ("corruption", "num_severity", "poisson_lambda", "num_per_class", "val_per_class",
                 "corruption_table", "file_lists", "uint8_rounding", "resave_jpeg")


def ignored_settings(cfg):
    """Settings that differ from their default but that the chosen algorithm, schedule,
    model or dataset does not read: one message each (a typo-free key can still do nothing)."""
    from datasets import READERS
    from sharpdro.models import MODELS

    out = []

    def check(section, names, used, who):
        for key in names:
            value, default = cfg[section][key], C.LEAVES[f"{section}.{key}"].default
            if key not in used and value != default:
                out.append(f"{section}.{key} = {value!r} is ignored: {who}")

    algorithm = cfg.algorithm.name
    for key in H.all_hparams():
        check("algorithm", [key], H.HPARAMS[algorithm],
              f"{algorithm} does not use it (used by {', '.join(H.users(key))})")
    if cfg.optim.schedule != "step":
        check("optim", ["milestones", "gamma"], (), f"only the step schedule uses it "
              f"(optim.schedule is {cfg.optim.schedule})")
    reader_keys = {k for name in READERS.names() for k in READERS.options(name)}
    check("data", sorted(reader_keys), READERS.options(cfg.data.dataset),
          f"the {cfg.data.dataset} reader does not use it")
    # file lists name files: only readers that return file names can use them
    file_readers = [n for n in READERS.names() if READERS.trait(n, "file_names")]
    check("data", ["file_lists"], ("file_lists",) if cfg.data.dataset in file_readers else (),
          f"only {', '.join(file_readers)} read file lists")
    if cfg.data.groups != "severity":
        check("data", SEVERITY_KEYS, (), f"only data.groups severity (the photon-limited "
              f"protocol) uses it; data.groups is {cfg.data.groups}")
    model_keys = {k for name in MODELS.names() for k in MODELS.options(name)}
    check("model", sorted(model_keys), MODELS.options(cfg.model.name),
          f"model {cfg.model.name} does not use it")
    return out


def warn_ignored(cfg):
    for message in ignored_settings(cfg):
        print(f"warning: {message}", file=sys.stderr)


def unreached_anneal(cfg, steps_per_epoch):
    """IRM and V-REx weigh their penalty by 1 until anneal_steps, then by their lambda: the
    message when the run ends before that (the lambda then does nothing), else None."""
    options = H.HPARAMS.get(cfg.algorithm.name, {})
    total = steps_per_epoch * cfg.train.epochs
    if "anneal_steps" not in options or cfg.algorithm.anneal_steps < total:
        return None
    weight = next(k for k in options if k != "anneal_steps")
    return (f"algorithm.anneal_steps {cfg.algorithm.anneal_steps} is not below the run's "
            f"{total} steps: {weight} never applies (the penalty weight stays 1); lower "
            "anneal_steps (the comparison uses 100)")


def check_choices(cfg):
    """The algorithm's class and, for a method with a reference run (jtt/eiil's stage 1,
    dfr's source), that run; ValueError where the algorithm, the model, the groups and the
    sampler do not go together."""
    from sharpdro.algorithms import ALGORITHMS, POST_HOC, TWO_STAGE
    from sharpdro.models import MODELS

    from . import post_hoc, stages

    ALGORITHMS.check(cfg.algorithm.name)
    MODELS.check(cfg.model.name)
    algorithm = ALGORITHMS.get(cfg.algorithm.name)
    label_free = ", ".join(n for n in ALGORITHMS.names()
                           if not ALGORITHMS.get(n).uses_group_labels)
    if cfg.data.groups == "none":
        if algorithm.uses_group_labels:
            raise ValueError(f"{cfg.algorithm.name} needs group labels and data.groups is "
                             f"none; the label-free choices: {label_free}")
        if cfg.data.sampler in C.GROUP_SAMPLERS:
            raise ValueError(f"data.sampler {cfg.data.sampler} needs group labels and "
                             f"data.groups is none; use permutation or replacement (the "
                             f"label-free algorithms: {label_free})")
    if algorithm.kind == TWO_STAGE:
        return algorithm, stages.check_options(cfg)
    if algorithm.kind == POST_HOC:
        return algorithm, post_hoc.check_options(cfg)
    return algorithm, None


def check_evaluation_sets(data):
    """ValueError unless every group has validation and test images."""
    empty = [f"{split} {data.arrays.group_kind} {name}" for split, sets in
             (("validation", data.val), ("test", data.test))
             for name, s in sets.items() if len(s) == 0]
    if empty:
        raise ValueError(f"no images in the {', '.join(empty)}: every group needs "
                         "validation and test images (more data, or a larger "
                         "data.val_fraction)")


# data and model keys that may differ between a reference run and this one: where the data
# is read or cached, how training draws from it, how strictly it is checked, where the
# weights started (not what the images, the groups and the network are)
NOT_COMPARED = ("data.data_dir", "data.cache_dir", "data.sampler", "data.random_crop",
                "data.strict", "model.checkpoint", "model.pretrained", "model.freeze")


def same_data_model_seed(cfg, path, where=NOT_COMPARED):
    """``path``: a finished run folder of the same data, model and seed as ``cfg`` (keys
    ``where`` may differ). Returns (RunFolder, its config); ValueError in one line saying
    what is wrong or which setting differs."""
    from .run_folder import RunFolder

    ref = RunFolder(path)
    name = f"algorithm.reference {path}"
    target = cfg.run_dir or (os.path.join(cfg.output_root, cfg.name) if cfg.name else None)
    if target and os.path.abspath(target) == os.path.abspath(path):
        raise ValueError("the run folder must differ from algorithm.reference")
    if not ref.exists() or not ref.has_checkpoint():
        raise ValueError(f"{name} is not a run folder with a checkpoint")
    if not ref.is_finished():
        raise ValueError(f"{name} is not a finished run (finish it with train.py --resume "
                         f"{path})")
    try:
        used = C.load_config(ref.file(ref.CONFIG))
    except C.ConfigError as err:
        raise ValueError(f"{name}: {err}") from None
    theirs, mine = C.flat(used), C.flat(cfg)
    for key in C.LEAVES:
        same_kind = key == "seed" or key.startswith(("data.", "model."))
        if same_kind and key not in where and theirs[key] != mine[key]:
            raise ValueError(f"{name} is not a run of the same data, model and seed: {key} "
                             f"is {theirs[key]!r} there and {mine[key]!r} here")
    return ref, used


def mixed_precision(net, cfg, data):
    """The network cast by mindspore.amp at ``train.amp_level``, checked with one forward
    and backward in inference mode (BatchNorm statistics untouched), so a level the device
    cannot run fails here with a clear message, not deep in the first training step."""
    import numpy as np
    import mindspore as ms
    from mindspore import amp

    level, device = cfg.train.amp_level, cfg.device_target
    shape = (2, data.in_channels, data.image_size, data.image_size)
    try:
        net = amp.auto_mixed_precision(net, level)
        net.set_train(False)
        x = ms.Tensor(np.zeros(shape, np.float32))

        def probe(images):
            return net(images).astype(ms.float32).sum()

        ms.value_and_grad(probe, None, net.trainable_params())(x)
        net.set_train(True)
    except Exception as err:  # MindSpore raises RuntimeError, TypeError, ImportError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"train.amp_level {level} does not run on {device} here ({first}); "
                        "O1/O2 are meant for GPU, O2/O3 for Ascend; use O0 on the CPU") from None
    return net


def class_name_warnings(start, data):
    """Where the start checkpoint is one of our runs' (its folder has data.json) and its head
    was loaded: the class names it was trained on, if they differ from this data's."""
    from .entry import owning_run

    if start.reinitialised:
        return []
    source = owning_run(start.path)
    try:
        theirs = list((source.data_info() if source else None)["class_names"])
    except (OSError, ValueError, KeyError, TypeError):
        return []  # not a run folder of ours: the names are unknown
    ours = list(data.arrays.class_names)
    if theirs == ours:
        return []
    pairs = [f"{i}: {a!r} there, {b!r} here" for i, (a, b) in enumerate(zip(theirs, ours)) if a != b]
    return [f"model.checkpoint's head was trained on other class names ({'; '.join(pairs[:5])}"
            f"{'; ...' if len(pairs) > 5 else ''}): its outputs are kept in that order"]
