"""Which run a train.py command means: a new run, a resumed one (what may change on resume),
or a finished one replaced with --overwrite; refused in one line where the folder says
otherwise."""
import os

from sharpdro import config as C

from .checks import UserError
from .run_folder import RunFolder
from .state import stop_epoch


def load_run_config(args, rest):
    """The config of ``--config`` (or of the resumed folder) with the command's overrides."""
    try:
        if not args.resume:
            return C.load_config(args.config, rest)
        if args.config:
            raise UserError("give --resume RUN_DIR or --config, not both (a resumed run "
                            "uses its own config.yaml)")
        config_path = RunFolder(args.resume).file(RunFolder.CONFIG)
        if not os.path.isfile(config_path):
            raise UserError(f"cannot resume {args.resume}: it has no {RunFolder.CONFIG}")
        cfg = C.load_config(config_path, rest)
        cfg["run_dir"] = args.resume
        return cfg
    except C.ConfigError as err:
        raise UserError(str(err)) from None


def resolve_run(args, rest):
    """-> (config, RunFolder, checkpoint to resume from or None); checks the folder. The
    decision is taken again under the folder's lock (``confirm``), where it counts."""
    cfg = load_run_config(args, rest)
    folder = RunFolder(cfg.run_dir or os.path.join(cfg.output_root, C.run_name(cfg)))
    return cfg, folder, decide(args, cfg, folder)


def decide(args, cfg, folder, say=print):
    """The checkpoint to resume from (None: a new run, or a two-stage run resumed in
    stage 1); UserError where the folder holds what the command may not touch. ``say``
    prints the allowed changes of a resumed config."""
    last = folder.checkpoint("last")
    in_stage1 = not folder.has_checkpoint() and folder.stage1().has_checkpoint()  # jtt, eiil
    if args.resume:
        if in_stage1:  # stopped in stage 1: the run's config, and what stage 1 was trained with
            check_changes(C.load_config(folder.file(folder.CONFIG)), cfg, say)
            check_stage1_changes(cfg, folder.stage1(), say)
            return None
        if not folder.has_checkpoint():
            raise UserError(f"cannot resume {folder}: no checkpoint at {last} (a run writes "
                            "one after its first epoch)")
        saved_epoch = check_resume_changes(cfg, last, say)
        end = stop_epoch(cfg.train.epochs, cfg.train.until_epoch)
        if folder.is_finished() and end <= saved_epoch:
            raise UserError(f"{folder} holds a finished run; nothing to resume (raise "
                            "--train.epochs, or --train.until_epoch where it stopped early, to "
                            "train on)")
        return last
    if not args.overwrite:
        if folder.is_finished():
            raise UserError(f"{folder} already holds a finished run; use --overwrite to "
                            "replace it, or another --name/--run_dir")
        if folder.has_checkpoint() or in_stage1:
            raise UserError(f"{folder} holds an unfinished run; continue it with --resume "
                            f"{folder}, or replace it with --overwrite")
        other = started_by(folder)
        if other is not None and other != cfg.algorithm.name:
            raise UserError(f"{folder} holds an unfinished {other} run (stopped before its "
                            "first checkpoint); replace it with --overwrite, or choose another "
                            "--name/--run_dir")
    return None


def started_by(folder):
    """The algorithm of the run whose config.yaml the folder holds, or None."""
    try:
        return C.load_config(folder.file(folder.CONFIG)).algorithm.name
    except (C.ConfigError, OSError):
        return None


def confirm(args, cfg, folder, resume_from):
    """Under the folder's lock: the decision ``resolve_run`` took before it, taken again.
    Another process may have written the folder in between (a second train.py, a refit)."""
    try:
        now = decide(args, cfg, folder, say=lambda line: None)  # printed the first time
    except UserError as err:
        raise UserError(f"{err} (written by another process while this one started)") from None
    if now != resume_from:
        raise UserError(f"{folder} changed while this run was starting (another process wrote "
                        "it); run the command again")


def check_stage1_changes(cfg, stage1, say=print):
    """A two-stage run resumed in stage 1: what stage 1 is trained with (its config from this
    run's) must equal what its checkpoint recorded, outside C.RESUMABLE."""
    from .stages import stage1_config

    try:
        used = stage1_config(cfg, stage1)
    except ValueError as err:
        raise UserError(str(err)) from None
    check_resume_changes(used, stage1.checkpoint("last"), say)


def check_resume_changes(cfg, checkpoint, say=print):
    """Compare the resumed run's config with the one its checkpoint was trained with: keys
    of C.RESUMABLE may change (printed), any other change is refused. Returns the
    checkpoint's epoch."""
    from sharpdro.checkpoint import read_run_state

    try:
        saved = read_run_state(checkpoint)
        used = C.from_text(saved["config"], checkpoint)
    except (ValueError, KeyError) as err:
        raise UserError(f"cannot resume: {err}") from None
    check_changes(used, cfg, say)
    for key in ("epochs", "until_epoch"):
        value = cfg.train[key]
        if value and value < saved["epoch"]:
            raise UserError(f"{checkpoint} is already at epoch {saved['epoch']}; train.{key} "
                            f"{value} cannot go below it")
    return saved["epoch"]


def check_changes(used, cfg, say=print):
    """Refuse a resumed config that differs from ``used`` outside C.RESUMABLE; ``say`` the
    allowed changes."""
    allowed, refused = C.resume_changes(used, cfg)
    for key, (old, new) in refused.items():  # the first one
        raise UserError(f"{key} cannot change on resume (the checkpoint was trained with "
                        f"{old!r}, now {new!r}); a resumed run may change only "
                        f"{', '.join(k for k in C.RESUMABLE if '.' in k)} and where it runs")
    for key, (old, new) in allowed.items():
        if key not in ("name", "run_dir", "output_root"):
            say(f"resume: {key} {old!r} -> {new!r}")
