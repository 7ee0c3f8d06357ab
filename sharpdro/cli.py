"""Command-line plumbing shared by the entry points: a run folder or a config + checkpoint."""
import os
import sys

from . import config as C

RUN_CONFIG = "config.yaml"
LAST_CHECKPOINT = os.path.join("checkpoints", "last.ckpt")


def add_checkpoint_args(parser):
    parser.add_argument("--run", help="run folder (uses its config.yaml and checkpoints/last.ckpt)")
    parser.add_argument("--config", help="YAML config (with --ckpt)")
    parser.add_argument("--ckpt", help="checkpoint file")


def parse_checkpoint_args(parser, argv=None):
    """-> (args, resolved config); unknown ``--key value`` pairs override the config."""
    args, rest = parser.parse_known_args(argv)
    if args.run:
        args.config = args.config or os.path.join(args.run, RUN_CONFIG)
        args.ckpt = args.ckpt or os.path.join(args.run, LAST_CHECKPOINT)
    if not args.config or not args.ckpt:
        parser.error("give --run, or --config and --ckpt")
    if not os.path.isfile(args.ckpt):
        sys.exit(f"checkpoint {args.ckpt} does not exist")
    try:
        return args, C.load_config(args.config, rest)
    except C.ConfigError as err:
        sys.exit(f"config error: {err}")
