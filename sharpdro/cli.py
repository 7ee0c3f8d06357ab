"""Command-line plumbing shared by eval.py and export.py: a run folder, or a config plus a
checkpoint (or, for eval.py, a MindIR file)."""
import os
import sys

from . import config as C

RUN_CONFIG = "config.yaml"
CHECKPOINTS = ("best.ckpt", "last.ckpt")  # a run folder's checkpoint: best if there is one


def add_checkpoint_args(parser, mindir=False):
    parser.add_argument("--run", help="run folder (its config.yaml and checkpoints/best.ckpt, "
                                      "else last.ckpt)")
    parser.add_argument("--config", help="YAML config (with --ckpt" + (" or --mindir)" if mindir else ")"))
    parser.add_argument("--ckpt", help="checkpoint file")
    if mindir:
        parser.add_argument("--mindir", help="exported MindIR file to evaluate instead of a checkpoint")


def run_checkpoint(run_dir):
    for name in CHECKPOINTS:
        path = os.path.join(run_dir, "checkpoints", name)
        if os.path.isfile(path):
            return path
    sys.exit(f"{run_dir} has no checkpoint (looked for {', '.join(CHECKPOINTS)} in checkpoints/)")


def parse_checkpoint_args(parser, argv=None):
    """-> (args, resolved config); unknown ``--key value`` pairs override the config."""
    args, rest = parser.parse_known_args(argv)
    mindir = getattr(args, "mindir", None)
    if args.run:
        if not os.path.isdir(args.run):
            sys.exit(f"run folder {args.run} does not exist")
        args.config = args.config or os.path.join(args.run, RUN_CONFIG)
        if not mindir:
            args.ckpt = args.ckpt or run_checkpoint(args.run)
    if not args.config or not (args.ckpt or mindir):
        parser.error("give --run, or --config with --ckpt" + (" or --mindir" if hasattr(args, "mindir") else ""))
    for path in (args.ckpt, mindir):
        if path and not os.path.isfile(path):
            sys.exit(f"{path} does not exist")
    try:
        return args, C.load_config(args.config, rest)
    except C.ConfigError as err:
        sys.exit(f"config error: {err}")
