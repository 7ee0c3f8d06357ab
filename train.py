"""Train SharpDRO or a baseline.

    python train.py --config configs/quickstart.yaml [--section.key value ...]
    python train.py --resume runs/<name>            continue from its last checkpoint
    python train.py --config ... --overwrite        replace a finished run in the same folder

Overrides: --section.key value (or --key value when the key name is unique), see
sharpdro/config.py. The run folder (runs/<name>/ or --run_dir) is described in
callbacks/run_folder.py. Ctrl-C (or SIGTERM) stops cleanly: the partial epoch is dropped,
the last checkpoint stays, and the --resume command is printed.
"""
import argparse
import contextlib
import logging
import os
import shlex
import sys
import time

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
from sharpdro import config as C
from sharpdro import hparams as H
from sharpdro.runtime import set_context

INTERRUPTED = 130  # the shell's status for a process ended by Ctrl-C


class UserError(Exception):
    """Bad input: reported in one line, exit status 1, nothing written."""


def registry_help():
    """The valid names of every registry, for --help."""
    from datasets import CORRUPTIONS, READERS
    from sharpdro.algorithms import ALGORITHMS
    from sharpdro.models import MODELS

    return "".join(f"{kind}: {', '.join(registry.names())}\n" for kind, registry in (
        ("algorithm.name", ALGORITHMS), ("model.name", MODELS), ("data.dataset", READERS),
        ("data.corruption", CORRUPTIONS)))


def parse_args(argv):
    wants_help = any(a in ("-h", "--help") for a in argv)
    epilog = (registry_help() + "\nconfig keys:\n" + C.describe()) if wants_help else None
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter,
                                     epilog=epilog)
    parser.add_argument("--config", help="YAML config file (default: built-in defaults)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in this folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run already in the run folder")
    return parser.parse_known_args(argv)


def resolve_run(args, rest):
    """-> (config, RunFolder, checkpoint to resume from or None); checks the folder."""
    from callbacks.run_folder import RunFolder

    try:
        if args.resume:
            if args.config:
                raise UserError("give --resume RUN_DIR or --config, not both (a resumed run "
                                "uses its own config.yaml)")
            config_path = RunFolder(args.resume).file(RunFolder.CONFIG)
            if not os.path.isfile(config_path):
                raise UserError(f"cannot resume {args.resume}: it has no {RunFolder.CONFIG}")
            cfg = C.load_config(config_path, rest)
            cfg["run_dir"] = args.resume
        else:
            cfg = C.load_config(args.config, rest)
    except C.ConfigError as err:
        raise UserError(f"config error: {err}") from None
    folder = RunFolder(cfg.run_dir or os.path.join(cfg.output_root, C.run_name(cfg)))
    last = folder.checkpoint("last")
    in_stage1 = not folder.has_checkpoint() and folder.stage1().has_checkpoint()  # jtt, eiil
    if args.resume:
        if in_stage1:  # stopped in stage 1: the run's own config is what it started with
            check_changes(C.load_config(folder.file(folder.CONFIG)), cfg)
            return cfg, folder, None
        if not folder.has_checkpoint():
            raise UserError(f"cannot resume {folder}: no checkpoint at {last} (a run writes "
                            "one after its first epoch)")
        saved_epoch = check_resume_changes(cfg, last)
        if folder.is_finished() and cfg.train.epochs <= saved_epoch:
            raise UserError(f"{folder} holds a finished run; nothing to resume (raise "
                            "--train.epochs to train on)")
        return cfg, folder, last
    if not args.overwrite:
        if folder.is_finished():
            raise UserError(f"{folder} already holds a finished run; use --overwrite to "
                            "replace it, or another --name/--run_dir")
        if folder.has_checkpoint() or in_stage1:
            raise UserError(f"{folder} holds an unfinished run; continue it with --resume "
                            f"{folder}, or replace it with --overwrite")
    return cfg, folder, None


def check_resume_changes(cfg, checkpoint):
    """Compare the resumed run's config with the one its checkpoint was trained with: keys
    of C.RESUMABLE may change (printed), any other change is refused. Returns the
    checkpoint's epoch."""
    from sharpdro.checkpoint import read_run_state

    try:
        saved = read_run_state(checkpoint)
        used = C.from_text(saved["config"], checkpoint)
    except (ValueError, KeyError) as err:
        raise UserError(f"cannot resume: {err}") from None
    check_changes(used, cfg)
    if cfg.train.epochs < saved["epoch"]:
        raise UserError(f"{checkpoint} is already at epoch {saved['epoch']}; train.epochs "
                        f"{cfg.train.epochs} cannot go below it")
    return saved["epoch"]


def check_changes(used, cfg):
    """Refuse a resumed config that differs from ``used`` outside C.RESUMABLE; print the
    allowed changes."""
    allowed, refused = C.resume_changes(used, cfg)
    for key, (old, new) in refused.items():  # the first one
        raise UserError(f"{key} cannot change on resume (the checkpoint was trained with "
                        f"{old!r}, now {new!r}); a resumed run may change only "
                        f"{', '.join(k for k in C.RESUMABLE if '.' in k)} and where it runs")
    for key, (old, new) in allowed.items():
        if key not in ("name", "run_dir", "output_root"):
            print(f"resume: {key} {old!r} -> {new!r}")


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


def python_command():
    """How this interpreter was called, as short as it can be written."""
    exe = sys.executable
    rel = os.path.relpath(exe)
    return rel if not rel.startswith("..") else exe


def main(argv=None):
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with contextlib.ExitStack() as hold:  # the run folder's lock, released on any exit
            return train(args, rest, hold)
    except UserError as err:
        sys.exit(f"error: {err}")
    except FloatingPointError as err:  # the NaN guards
        sys.exit(f"error: {err}. {kept_checkpoint(args)} Try a lower optim.lr or "
                 "algorithm.rho.")
    except OSError as err:  # a full disk, a folder that became read-only
        from sharpdro.atomic import describe_os_error

        sys.exit(f"error: {describe_os_error(err)}. {kept_checkpoint(args)}")


def kept_checkpoint(args):
    """What a failed run leaves to resume from, in a sentence."""
    from sharpdro.checkpoint import read_run_state

    folder = getattr(args, "folder", None)
    try:
        saved = read_run_state(folder.checkpoint("last"))
    except (AttributeError, ValueError, OSError):
        return "No checkpoint was written."
    return (f"The last good checkpoint is kept: epoch {saved['epoch']} (step {saved['step']}) "
            f"in {folder.checkpoint('last')}.")


def train(args, rest, hold):
    """``hold``: an ExitStack that keeps the run folder's lock until train() returns."""
    cfg, folder, resume_from = resolve_run(args, rest)
    args.folder = folder  # for the messages of a failed run
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from callbacks.run_folder import RunFolderError
    from datasets import build_data
    from datasets.readers import DatasetNotFoundError
    from sharpdro.distributed import DistributedError, init_distributed

    try:  # everything that can be wrong with the input, before the run folder is touched
        algorithm, reference = check_choices(cfg)
        for message in ignored_settings(cfg):
            print(f"warning: {message}", file=sys.stderr)
        set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)
        rank, world = init_distributed(cfg.train.distributed)
        if rank == 0:  # only rank 0 writes, and holds the folder
            folder.check_free()
        t0 = time.time()
        data = build_data(cfg, rank, world)
        empty = [f"{split} {data.arrays.group_kind} {name}" for split, sets in
                 (("validation", data.val), ("test", data.test))
                 for name, s in sets.items() if len(s) == 0]
        if empty:
            raise ValueError(f"no images in the {', '.join(empty)}: every group needs "
                             "validation and test images (more data, or a larger "
                             "data.val_fraction)")
    except (ValueError, DatasetNotFoundError, DistributedError, RunFolderError) as err:
        raise UserError(str(err)) from None
    except OSError as err:  # the cache folder: read-only, full
        from sharpdro.atomic import describe_os_error

        raise UserError(describe_os_error(err)) from None
    parallel = f", rank {rank} of {world} ({cfg.train.batch_size // world} per rank)" if world > 1 else ""
    groups = (f"{cfg.data.corruption} at severities 0..{cfg.data.num_severity}"
              if cfg.data.groups == "severity" else f"groups {cfg.data.groups}: "
              + ", ".join(f"{n} ({c})" for n, c in zip(data.group_names, data.train_counts)))
    print(f"data: {cfg.data.dataset}, {groups}, {sum(data.train_counts)} training "
          f"images, {data.steps_per_epoch} steps/epoch ({time.time() - t0:.1f}s){parallel}")
    run = Run(args, rest, hold, cfg, folder, rank, world, t0)
    if algorithm.two_stage:
        data = second_stage_data(run, cfg, data, reference)
    return fit(run, cfg, folder, data, resume_from)


def check_choices(cfg):
    """The algorithm's class and, for jtt/eiil with algorithm.reference, the reference run;
    ValueError where the algorithm, the model, the groups and the sampler do not go together."""
    from callbacks import stages
    from sharpdro.algorithms import ALGORITHMS
    from sharpdro.models import MODELS

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
    reference = None
    if algorithm.two_stage:
        if cfg.data.sampler in C.GROUP_SAMPLERS:
            raise ValueError(f"{cfg.algorithm.name} is label-free and data.sampler "
                             f"{cfg.data.sampler} reads group labels; use permutation or "
                             "replacement")
        if cfg.algorithm.reference:
            reference = stages.check_reference(cfg, cfg.algorithm.reference)
        else:
            stages.first_epochs(cfg)
    return algorithm, reference


class Run:
    """What every stage of one train.py run shares: the command, the run folder (taken
    with ``claim`` just before the first write, after every input check) and the ranks."""

    def __init__(self, args, rest, hold, cfg, folder, rank, world, t0):
        self.args, self.rest, self.hold, self.cfg, self.folder = args, rest, hold, cfg, folder
        self.rank, self.world, self.t0 = rank, world, t0
        self.main_rank = rank == 0  # only rank 0 writes the run folder
        self.claimed = False
        self.network = None  # the network fit() trained last

    def claim(self):
        """Lock the run folder (rank 0), clear it for --overwrite, write its config."""
        if self.claimed or not self.main_rank:
            return
        from callbacks.run_folder import RunFolderError

        try:
            self.hold.enter_context(self.folder.lock("train.py"))
        except RunFolderError as err:
            raise UserError(str(err)) from None
        self.claimed = True
        if self.args.overwrite:
            self.folder.clear()
        self.folder.create()
        C.save_config(self.cfg, self.folder.file(self.folder.CONFIG))


def second_stage_data(run, cfg, data, reference):
    """jtt, eiil: stage 1 (an ERM run in <run>/stage1, trained or resumed here, or the
    reference run), then stage 2's data from its last checkpoint (callbacks/stages.py)."""
    from callbacks import stages
    from sharpdro.checkpoint import copy_trained_model, create_trained_model

    source, trained = reference, None
    if source is None:
        source = run.folder.stage1()
        cfg1 = stages.stage1_config(cfg, source)
        if not source.is_finished():
            # --overwrite clears it; otherwise resolve_run allowed only a resumable one
            resume = source.checkpoint("last") if (source.has_checkpoint()
                                                   and not run.args.overwrite) else None
            print(f"stage 1: ERM for {cfg1.train.epochs} epoch(s) in {source}")
            fit(run, cfg1, source, data, resume, stage1=True)
            trained = run.network
        else:
            print(f"stage 1: done in {source}")
    print(f"stage 1 model: {source.checkpoint('last')}")
    if trained is not None:  # the weights of last.ckpt, on every rank without reading it
        net = copy_trained_model(cfg.model, data.num_classes, data.in_channels, trained)
    else:
        net = create_trained_model(cfg.model, data.num_classes, data.in_channels,
                                   source.checkpoint("last"))
    start = time.time()
    logits = stages.training_logits(net, data, cfg.train.eval_batch_size)
    new, rows, lines = stages.between_stages(cfg, data, logits, cfg.seed)
    stages.report(lines)
    print(f"between the stages: {time.time() - start:.1f}s (the stage-1 model on "
          f"{len(logits)} training images, and the inference)")
    if run.main_rank:
        run.claim()
        stages.write_inferred(run.folder.file(run.folder.INFERRED), rows)
    print(f"stage 2: {cfg.algorithm.name}, {new.steps_per_epoch} steps/epoch")
    return new


def fit(run, cfg, folder, data, resume_from, stage1=False):
    """Train ``cfg``'s algorithm on ``data`` into ``folder``, from scratch or from the
    checkpoint ``resume_from``: the model, the train step, the callbacks, the epochs, and
    the finished folder. ``stage1``: the ERM reference run of jtt/eiil (a subfolder)."""
    import mindspore as ms
    from mindspore.train import Model

    from callbacks import RunState, create_callbacks, finish_run, format_table
    from sharpdro.algorithms import create_train_step_from_config
    from sharpdro.checkpoint import create_trained_model, load_train_state
    from sharpdro.deploy import export_and_verify
    from sharpdro.finetune import start_from_config
    from sharpdro.models import create_model_from_config, model_head
    from sharpdro.optim import create_optimizer_from_config, lr_schedule_from_config

    args, rank, world, main_rank = run.args, run.rank, run.world, run.main_rank
    args.folder = folder  # for the messages of a failed run
    ms.set_seed(cfg.seed)  # every model of the run starts from the seed's weights (jtt, eiil)
    net = create_model_from_config(cfg.model, data.num_classes, data.in_channels)
    try:  # a resumed run's weights come from its checkpoint; the freeze applies again
        start = start_from_config(net, cfg.model, load=not resume_from)
        if start is not None:
            print(start.summary())
            for message in class_name_warnings(start, data):
                print(f"warning: {message}", file=sys.stderr)
        if cfg.train.amp_level != "O0":
            net = mixed_precision(net, cfg, data)
        # one schedule: the optimizer steps through it, the progress log prints from it
        lrs = lr_schedule_from_config(cfg.optim, data.steps_per_epoch, cfg.train.epochs)
        optimizer = create_optimizer_from_config(cfg.optim, net.trainable_params(), lrs,
                                                 model_head(cfg.model.name))
        cell = create_train_step_from_config(cfg.algorithm, net, optimizer, data.num_groups, world,
                                             group_counts=data.train_counts, seed=cfg.seed)
    except ValueError as err:  # e.g. the adjustment and a group without training images
        raise UserError(str(err)) from None
    if cfg.train.loss_scale == "dynamic" or (cfg.train.loss_scale == "auto"
                                             and cfg.train.amp_level != "O0"):
        cell.enable_loss_scale()
    resumed = {}
    if resume_from:
        try:  # everything but the learning rates, which come from this config's schedule
            resumed = load_train_state(cell, resume_from)
        except ValueError as err:
            raise UserError(str(err)) from None
        print(f"resuming {folder} after epoch {resumed['epoch']} (step {resumed['step']})")
        saved_world = resumed.get("world_size", 1)
        if saved_world != world:  # nothing in a checkpoint depends on the rank count
            print(f"note: the checkpoint was written by {saved_world} process(es), this run has "
                  f"{world}; the global batch and the data order are the same")

    if main_rank:
        run.claim()
        if stage1 and not resumed:
            folder.clear()  # what an earlier start left before its first checkpoint
        folder.create()
        if resumed and folder.is_finished():  # a finished run trained on (more epochs)
            folder.unmark_done()
        try:
            folder.restart_logs(resumed.get("step"))
        except ValueError as err:  # a damaged log line
            raise UserError(str(err)) from None
        C.save_config(cfg, folder.file(folder.CONFIG))
        folder.write_json(folder.DATA, data.info())  # the model's input contract
        if start is not None:
            folder.write_json(folder.START, start.to_json())
        if not resumed:
            from callbacks.plots import plot_group_examples

            plot_group_examples(data.examples(), data.arrays.group_kind, folder.plot("groups"))
        print(f"run folder: {folder}")

    state = RunState(data.steps_per_epoch, cfg.train.epochs, cfg.train.max_steps,
                     cfg.train.eval_every, resumed.get("best_value"), resumed.get("best_epoch"))
    image_shape = (data.in_channels, data.image_size, data.image_size)

    def export_best(ckpt):
        model_net = create_trained_model(cfg.model, data.num_classes, data.in_channels, ckpt)
        path, diff = export_and_verify(model_net, image_shape, folder.file(folder.MODEL)[:-len(".mindir")])
        print(f"exported {path} from {os.path.basename(ckpt)} (dynamic batch; largest logit "
              f"difference after reload {diff:.1e})")

    interrupt, callbacks = create_callbacks(cell, net, data, state, folder, cfg, lrs, rank, world,
                                            export_best if cfg.train.export_mindir else None)
    model = Model(cell)
    epoch = resumed.get("epoch") or 0  # the next epoch to train (0-based)
    try:
        with interrupt:  # Ctrl-C and kill/timeout alike
            # one Model.train call per epoch: each epoch's data is rebuilt from (seed, epoch),
            # so a resumed run gets the same batches as an uninterrupted one
            for epoch in range(epoch, cfg.train.epochs):
                model.train(epoch + 1, data.train_epoch(epoch), callbacks=callbacks,
                            dataset_sink_mode=cfg.train.sink_mode, initial_epoch=epoch)
                if state.stopped:
                    break
            interrupt.check()  # a signal swallowed during the last evaluation
    except KeyboardInterrupt:
        interrupted(run.folder, folder, epoch + 1, args, run.rest)
    run.network = net  # the trained network: jtt/eiil infer their groups from stage 1's
    if not main_rank:
        print(f"rank {rank} done in {time.time() - run.t0:.1f}s")
        return str(folder)
    if resumed.get("epoch") == cfg.train.epochs:  # stopped after the last checkpoint
        print("training had finished before the interruption; completing the run folder")
        finish_run(folder, export_best if cfg.train.export_mindir else None)
    summary = final_summary(folder, state, cfg.train.best_metric, format_table)
    if summary:
        print(summary)
    best = "none" if state.best_value is None else f"{100 * state.best_value:.2f} %"
    folder.mark_done(f"finished in {time.time() - run.t0:.1f}s; best {cfg.train.best_metric} "
                     f"{best} at epoch {state.best_epoch}\n")
    print(f"done in {time.time() - run.t0:.1f}s; results in {folder}")
    return str(folder)


def class_name_warnings(start, data):
    """Where the start checkpoint is one of our runs' (its folder has data.json) and its head
    was loaded: the class names it was trained on, if they differ from this data's."""
    from callbacks.entry import owning_run

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


def interrupted(top, folder, epoch, args, rest):
    """Ctrl-C: the partial epoch is dropped (its log rows are cut on resume); say how to go
    on. ``folder``: the stage's run folder, ``top`` the run's (the same but in stage 1)."""
    python = python_command()
    if folder.has_checkpoint():
        from sharpdro.checkpoint import read_run_state

        saved = read_run_state(folder.checkpoint("last"))
        where = "; the run is" if folder is top else " of stage 1; stage 1 is"
        print(f"\ninterrupted in epoch {epoch}{where} kept up to its last checkpoint "
              f"(epoch {saved['epoch']}, step {saved['step']}). Continue with:\n"
              f"  {python} train.py --resume {shlex.quote(str(top))}", file=sys.stderr)
    else:
        command = " ".join(shlex.quote(a) for a in _command_line(args, rest))
        print(f"\ninterrupted in epoch {epoch}, before the first checkpoint; nothing to resume. "
              f"Start again with:\n  {python} train.py {command}", file=sys.stderr)
    sys.exit(INTERRUPTED)


def _command_line(args, rest):
    out = ["--config", args.config] if args.config else []
    return out + (["--overwrite"] if args.overwrite else []) + list(rest)


def final_summary(folder, state, best_metric, format_table):
    """After a run with several evaluations: the selected epoch's test accuracy."""
    records = folder.eval_records()
    tests = {r["epoch"]: r for r in records if r["split"] == "test"}
    if len(tests) < 2 or state.best_epoch not in tests:
        return None
    return (f"selected epoch {state.best_epoch} (best {best_metric} "
            f"{100 * state.best_value:.2f} %); its test accuracy:\n"
            f"{format_table(tests[state.best_epoch])}")


if __name__ == "__main__":
    main()
