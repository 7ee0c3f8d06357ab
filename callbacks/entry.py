"""Command-line plumbing shared by eval.py and export.py: a run folder, or a config plus a
checkpoint (or, for eval.py, a MindIR file); the device; the model as a ``predict``
function with its input contract; where the results go."""
import contextlib
import json
import math
import os
import sys

from sharpdro import config as C
from sharpdro.atomic import describe_os_error

from .run_folder import RunFolder, RunFolderError


def add_checkpoint_args(parser, mindir=False):
    parser.add_argument("--run", action="append", help="run folder (its config.yaml and "
                        "checkpoints/best.ckpt, else last.ckpt)" + (
                            "; repeat it with --photon-sweep to compare runs" if mindir else ""))
    parser.add_argument("--config", help="YAML config (with --ckpt" + (" or --mindir)" if mindir else ")"))
    parser.add_argument("--ckpt", help="checkpoint file")
    if mindir:
        parser.add_argument("--mindir", help="exported MindIR file to evaluate instead of a checkpoint")


def parse_checkpoint_args(parser, argv=None):
    """-> (args, resolved config); unknown ``--key value`` pairs override the config.
    ``args.folder`` is the RunFolder of --run (else None)."""
    args, rest = parser.parse_known_args(argv)
    mindir = getattr(args, "mindir", None)
    args.folder = None
    args.runs = args.run or []
    if len(args.runs) > 1 and not getattr(args, "photon_sweep", False):
        parser.error("give one --run (several only with --photon-sweep)")
    args.run = args.runs[0] if args.runs else None
    if args.run:
        args.folder = RunFolder(args.run)
        if not args.folder.exists():
            sys.exit(f"run folder {args.run} does not exist")
        args.config = args.config or args.folder.file(RunFolder.CONFIG)
        if not mindir and not args.ckpt:
            args.ckpt = args.folder.model_checkpoint()
            if args.ckpt is None:
                sys.exit(f"{args.run} has no checkpoint (looked for "
                         f"{', '.join(n + '.ckpt' for n in RunFolder.CHECKPOINT_NAMES)} in "
                         f"{RunFolder.CHECKPOINTS}/)")
    if not args.config or not (args.ckpt or mindir):
        parser.error("give --run, or --config with --ckpt" + (" or --mindir" if hasattr(args, "mindir") else ""))
    for path in (args.ckpt, mindir):
        if path and not os.path.isfile(path):
            sys.exit(f"{path} does not exist")
    try:
        return args, C.load_config(args.config, rest)
    except C.ConfigError as err:
        sys.exit(f"config error: {err}")


def set_device(cfg, mode, seed=None):
    """The config's device in ``mode``; a device or mode that cannot be used ends the
    program with one line."""
    from sharpdro.runtime import set_context

    try:
        set_context(cfg.device_target, mode, cfg.device_id, seed=seed)
    except ValueError as err:
        sys.exit(f"error: {err}")


def model_source(args):
    """The model file: eval.py's --mindir, else the checkpoint."""
    return getattr(args, "mindir", None) or args.ckpt


def describe_model(args):
    """The MindIR file, or the checkpoint with its run state (describe_checkpoint)."""
    return args.mindir if getattr(args, "mindir", None) else describe_checkpoint(args.ckpt)


def describe_checkpoint(path):
    """'runs/x/checkpoints/best.ckpt (epoch 3, step 1170, best val_worst_acc 75.27 %)'."""
    from sharpdro.checkpoint import read_run_state

    try:
        state = read_run_state(path)
    except ValueError:
        return path  # a plain weights checkpoint: no run state to show
    best = state.get("best_value")
    best = f", best {state['best_metric']} {100 * best:.2f} %" if best is not None else ""
    return f"{path} (epoch {state['epoch']}, step {state['step']}{best})"


def owning_run(path):
    """The RunFolder that holds ``path`` (a checkpoint in its checkpoints/, or a model file
    beside or under its config.yaml), or None."""
    folder = os.path.dirname(os.path.abspath(path))
    for candidate in (folder, os.path.dirname(folder)):
        if os.path.isfile(os.path.join(candidate, RunFolder.CONFIG)):
            return RunFolder(candidate)
    return None


def input_contract(args, cfg):
    """What the model takes: {class_names, channels, image_size, mean, std, ...} from the
    run folder's data.json while the data settings are the run's own; else (data overridden
    on the command line, an older run, a checkpoint outside a run folder) read from the
    config's dataset."""
    folder = args.folder or owning_run(args.ckpt or getattr(args, "mindir", None))
    info = folder.data_info() if folder is not None else None
    if info is not None:
        saved = C.load_config(folder.file(RunFolder.CONFIG))
        if saved.data != cfg.data:
            info = None
    if info is None:
        from datasets import dataset_info

        info = dataset_info(cfg)
    return info


@contextlib.contextmanager
def entry_point(program, *outputs):
    """The common frame of eval.py and export.py: hold the run folder(s) that ``outputs``
    (paths to be written, or RunFolders) lie in, so that they have one writer at a time;
    a held folder, a folder that cannot be written, a full disk, Ctrl-C or SIGTERM end the
    program with one line (exit 1, or 130 for Ctrl-C and SIGTERM); what was not finished is
    not written. SIGTERM is a stop like Ctrl-C here, also because MindSpore's own SIGINT
    handler (installed at a graph's first run) turns Ctrl-C into a SIGTERM."""
    folders = {}
    for out in outputs:
        folder = out if isinstance(out, RunFolder) else owning_run(out) if out else None
        if folder is not None:
            folders[os.path.abspath(folder.path)] = folder
    with stopped_cleanly(program):
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(terminate_as_interrupt())
                for folder in folders.values():
                    stack.enter_context(folder.lock(program))
                yield
        except RunFolderError as err:
            sys.exit(f"error: {err}")
        except OSError as err:
            sys.exit(f"error: {describe_os_error(err)}")


@contextlib.contextmanager
def stopped_cleanly(program):
    """Ctrl-C (a KeyboardInterrupt) in the block ends the program with one line, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"\n{program} interrupted; no result was written", file=sys.stderr)
        sys.exit(130)


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM raises KeyboardInterrupt in the block (main thread only), then the handler
    before it is back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)


def predictor(args, cfg, num_classes, shape):
    """``predict(images) -> logits`` of the --mindir file, else of the config's model with
    the checkpoint's weights (a checkpoint of another model: the error names the parameters);
    ``shape``: C x H x W."""
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.deploy import mindir_predictor

    from .evaluation import network_predictor

    if args.mindir:
        return mindir_predictor(args.mindir, shape)
    return network_predictor(create_trained_model(cfg.model, num_classes, shape[0], args.ckpt))


def image_shape(info):
    """C x H x W of the input contract ``info``."""
    return (info["channels"], info["image_size"], info["image_size"])


def contract_predictor(args, cfg, info):
    """predictor() for the classes and image shape of the input contract ``info``."""
    return predictor(args, cfg, len(info["class_names"]), image_shape(info))


def contract_set(info, batch_size):
    """make_set(images, labels) -> an evaluation set with the model's normalisation."""
    from datasets.pipeline import EvalSet

    return lambda images, labels: EvalSet(images, labels, info["mean"], info["std"], batch_size)


def eval_outputs(args):
    """What eval.py writes into: --out, else the run folder(s) of the model(s)."""
    if args.out:
        return [args.out]
    return [RunFolder(r) for r in args.runs[1:]] + [args.folder or model_source(args)]


def output_prefix(args, source, split="test"):
    """eval.py's results (.json, .md, ... added): --out, else the run folder's
    evals/<split>_<model>, else beside the model file."""
    if args.out:
        return args.out
    stem = os.path.splitext(os.path.basename(source))[0]
    folder = args.folder or owning_run(source)
    if folder is None:
        return f"{os.path.splitext(source)[0]}_{split}"
    return folder.eval_base(stem, split)


def output_base(args):
    """export.py's file without its extension: --file, else the run folder's
    exports/model_<checkpoint>_batch<N|dynamic>, else beside the checkpoint."""
    if args.file:
        return args.file
    stem = os.path.splitext(os.path.basename(args.ckpt))[0]
    folder = args.folder or owning_run(args.ckpt)
    if folder is None:
        return os.path.join(os.path.dirname(os.path.abspath(args.ckpt)),
                            f"model_{stem}_batch{args.batch_size or 'dynamic'}")
    return folder.export_base(stem, args.batch_size)


def make_parent(path):
    """Create the folder ``path`` goes in (if missing) -> ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path


def finite_or_none(value):
    """``value`` (nested dicts, lists and tuples) with every NaN and infinity as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def write_json(path, value):
    """``value`` as strict JSON at ``path`` (written atomically): a NaN or an infinity (a
    model with NaN logits, say) is written as null, never as the NaN / Infinity that JSON
    does not have."""
    from sharpdro.atomic import atomic_path

    text = json.dumps(finite_or_none(value), indent=2, allow_nan=False)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text + "\n")
