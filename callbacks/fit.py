"""One training of a cell into a run folder, as train.py runs it: the model and its start,
the train step, resume, the folder's files, the epochs, Ctrl-C, and the finished folder.
:class:`Run` is what every stage of one command shares."""
import os
import shlex
import sys
import time

from sharpdro import config as C

from .checks import UserError, class_name_warnings, mixed_precision

INTERRUPTED = 130  # the shell's status for a process ended by Ctrl-C


class Run:
    """What every stage of one train.py run shares: the command, the run folder (locked by
    rank 0 before the data is built, written from ``claim`` on, after every input check)
    and the ranks."""

    def __init__(self, args, rest, hold, cfg, folder, rank, world, t0):
        self.args, self.rest, self.hold, self.cfg, self.folder = args, rest, hold, cfg, folder
        self.rank, self.world, self.t0 = rank, world, t0
        self.main_rank = rank == 0  # only rank 0 writes the run folder
        self.claimed = False
        self.network = None  # the network fit() trained last

    def argv(self):
        """The command's arguments, quoted for a shell (without --overwrite)."""
        return [shlex.quote(a) for a in command_line(self.args, self.rest) if a != "--overwrite"]

    def claim(self):
        """Rank 0, at the first write (the folder is locked since the data was built):
        clear it for --overwrite, write its config."""
        if self.claimed or not self.main_rank:
            return
        self.claimed = True
        if self.args.overwrite:
            self.folder.clear()
        self.folder.create()
        C.save_config(self.cfg, self.folder.file(self.folder.CONFIG))


def build_step(cfg, data, world, resume_from, same_start=None):
    """(network, start report or None, train-step cell, learning rates) of ``cfg``.
    ``same_start``: the start_weights.json record the start weights must equal (stage 2 of a
    two-stage run starts from the file stage 1 started from)."""
    from sharpdro.algorithms import create_train_step_from_config
    from sharpdro.models import create_model_from_config, model_head
    from sharpdro.optim import create_optimizer_from_config, lr_schedule_from_config

    from .start import start_from_config

    net = create_model_from_config(cfg.model, data.num_classes, data.in_channels)
    try:  # a resumed run's weights come from its checkpoint; the freeze applies again
        start = start_from_config(net, cfg.model, load=not resume_from)
        if start is not None and same_start and start.sha256 != same_start["sha256"]:
            raise ValueError(f"model.checkpoint {start.path} changed since stage 1 started from "
                             f"it (sha256 {same_start['sha256'][:16]}... then, "
                             f"{start.sha256[:16]}... now): put the file back, or start the "
                             "run again with --overwrite")
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
    return net, start, cell, lrs


def recorded_start(folder):
    """The start_weights.json record of ``folder`` (None without one, or unreadable)."""
    try:
        return folder.read_json(folder.START)
    except (OSError, ValueError):
        return None


def resume_state(cell, folder, resume_from, world):
    """The run state of ``resume_from`` loaded into ``cell`` ({} for a new run)."""
    from sharpdro.checkpoint import load_train_state

    if not resume_from:
        return {}
    try:  # everything but the learning rates, which come from this config's schedule
        resumed = load_train_state(cell, resume_from)
    except ValueError as err:
        raise UserError(str(err)) from None
    print(f"resuming {folder} after epoch {resumed['epoch']} (step {resumed['step']})")
    saved_world = resumed.get("world_size", 1)
    if saved_world != world:  # nothing in a checkpoint depends on the rank count
        print(f"note: the checkpoint was written by {saved_world} process(es), this run has "
              f"{world}; the global batch and the data order are the same")
    return resumed


def prepare_folder(run, cfg, folder, data, start, resumed, stage1):
    """Rank 0: the folder claimed, its logs cut to the resumed step, its records written."""
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
        from .plots import plot_group_examples

        plot_group_examples(data.examples(), data.arrays.group_kind, folder.plot("groups"))
    print(f"run folder: {folder}")


def exporter(cfg, folder, data):
    """export(checkpoint): model.mindir from a checkpoint, reloaded and compared."""
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.deploy import export_and_verify

    image_shape = (data.in_channels, data.image_size, data.image_size)

    def export(ckpt):
        model_net = create_trained_model(cfg.model, data.num_classes, data.in_channels, ckpt)
        try:  # the training is done and kept: a failed export must not undo the run
            path, diff = export_and_verify(model_net, image_shape,
                                           folder.file(folder.MODEL)[:-len(".mindir")])
        except ValueError as err:
            print(f"warning: {folder.MODEL} not written: {err}; export later with "
                  f"export.py --run {shlex.quote(str(folder))}", file=sys.stderr)
            return
        print(f"exported {path} from {os.path.basename(ckpt)} (dynamic batch; largest logit "
              f"difference after reload {diff:.1e})")
    return export if cfg.train.export_mindir else None


def fit(run, cfg, folder, data, resume_from, stage1=False):
    """Train ``cfg``'s algorithm on ``data`` into ``folder``, from scratch or from the
    checkpoint ``resume_from``. ``stage1``: the ERM reference run of jtt/eiil (a subfolder)."""
    import mindspore as ms

    from . import RunState, create_callbacks

    run.args.folder = folder  # for the messages of a failed run
    ms.set_seed(cfg.seed)  # every model of the run starts from the seed's weights (jtt, eiil)
    first = None if stage1 else recorded_start(folder.stage1())
    net, start, cell, lrs = build_step(cfg, data, run.world, resume_from, first)
    resumed = resume_state(cell, folder, resume_from, run.world)
    if run.main_rank:
        prepare_folder(run, cfg, folder, data, start, resumed, stage1)
    state = RunState(data.steps_per_epoch, cfg.train.epochs, cfg.train.max_steps,
                     cfg.train.eval_every, resumed.get("best_value"), resumed.get("best_epoch"),
                     cfg.train.until_epoch)
    export = exporter(cfg, folder, data)
    interrupt, callbacks = create_callbacks(cell, net, data, state, folder, cfg, lrs, run.rank,
                                            run.world, export)
    train_epochs(run, cfg, folder, data, cell, interrupt, callbacks, state,
                 resumed.get("epoch") or 0)
    run.network = net  # the trained network: jtt/eiil infer their groups from stage 1's
    return finish(run, cfg, folder, state, resumed, export)


def train_epochs(run, cfg, folder, data, cell, interrupt, callbacks, state, epoch):
    """Epochs ``epoch`` (0-based) to the last, one Model.train call each: each epoch's data
    is rebuilt from (seed, epoch), so a resumed run gets an uninterrupted one's batches."""
    from mindspore.train import Model

    model = Model(cell)
    try:
        with interrupt:  # Ctrl-C and kill/timeout alike
            for epoch in range(epoch, state.final_epoch()):
                model.train(epoch + 1, data.train_epoch(epoch), callbacks=callbacks,
                            dataset_sink_mode=cfg.train.sink_mode, initial_epoch=epoch)
                if state.stopped:
                    break
            interrupt.check()  # a signal swallowed during the last evaluation
    except KeyboardInterrupt:
        interrupted(run.folder, folder, epoch + 1, run.args, run.rest)


def finish(run, cfg, folder, state, resumed, export):
    """The finished folder (rank 0): the selected epoch's test accuracy, the done marker."""
    from . import finish_run, format_table

    if not run.main_rank:
        print(f"rank {run.rank} done in {time.time() - run.t0:.1f}s")
        return str(folder)
    if resumed.get("epoch") == state.final_epoch():  # stopped after the last checkpoint
        print("training had finished before the interruption; completing the run folder")
        finish_run(folder, export)
    summary = final_summary(folder, state, cfg.train.best_metric, format_table)
    if summary:
        print(summary)
    best = "none" if state.best_value is None else f"{100 * state.best_value:.2f} %"
    folder.mark_done(f"finished in {time.time() - run.t0:.1f}s; best {cfg.train.best_metric} "
                     f"{best} at epoch {state.best_epoch}\n")
    print(f"done in {time.time() - run.t0:.1f}s; results in {folder}")
    return str(folder)


def python_command():
    """How this interpreter was called, as short as it can be written."""
    from .run_folder import short_path

    return short_path(sys.executable)


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
        command = " ".join(shlex.quote(a) for a in command_line(args, rest))
        print(f"\ninterrupted in epoch {epoch}, before the first checkpoint; nothing to resume. "
              f"Start again with:\n  {python} train.py {command}", file=sys.stderr)
    sys.exit(INTERRUPTED)


def command_line(args, rest):
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


def kept_checkpoint(folder, top=None):
    """What a failed run leaves to resume from, in a sentence. ``folder``: the stage's run
    folder, ``top`` the run's: a two-stage run that failed in stage 2 before its first
    checkpoint still has stage 1's."""
    from sharpdro.checkpoint import read_run_state

    candidates = [folder] + ([top.stage1()] if top is not None and folder is top else [])
    for current in candidates:
        try:
            saved = read_run_state(current.checkpoint("last"))
        except (AttributeError, ValueError, OSError):
            continue
        which = "" if current is folder else "stage 1's "
        return (f"The last good checkpoint is kept: {which}epoch {saved['epoch']} (step "
                f"{saved['step']}) in {current.checkpoint('last')}; continue with train.py "
                f"--resume {shlex.quote(str(top or folder))}.")
    return "No checkpoint was written."
