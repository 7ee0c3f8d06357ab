"""Train SharpDRO or a baseline.

    python train.py --config configs/quickstart.yaml [--section.key value ...]
    python train.py --resume runs/<name>            continue from its last checkpoint
    python train.py --config ... --overwrite        replace a finished run in the same folder

Overrides: --section.key value (or --key value when the key name is unique), see
sharpdro/config.py. The run folder (runs/<name>/ or --run_dir) is described in
callbacks/run_folder.py. Ctrl-C (or SIGTERM) stops cleanly: the partial epoch is dropped,
the last checkpoint stays, and the --resume command is printed. Two-stage methods (jtt,
eiil) and post-hoc ones (dfr --algorithm.reference RUN) run through the same command.
"""
import argparse
import contextlib
import logging
import sys
import time

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
from sharpdro import config as C
from callbacks.checks import UserError


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


def main(argv=None):
    from callbacks.fit import kept_checkpoint
    from sharpdro.atomic import describe_os_error

    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    args.folder = args.top = None  # the folders being written, for a failed run's message
    try:
        with contextlib.ExitStack() as hold:  # the run folder's lock, released on any exit
            return train(args, rest, hold)
    except UserError as err:
        sys.exit(f"error: {err}")
    except FloatingPointError as err:  # the NaN guards
        sys.exit(f"error: {err}. {kept_checkpoint(args.folder, args.top)} Try a lower "
                 "optim.lr or algorithm.rho.")
    except OSError as err:  # a full disk, a folder that became read-only
        sys.exit(f"error: {describe_os_error(err)}. {kept_checkpoint(args.folder, args.top)}")


def train(args, rest, hold):
    """``hold``: an ExitStack that keeps the run folder's lock until train() returns."""
    from callbacks import fit, post_hoc, stages
    from callbacks.data import load_data
    from callbacks.resume import resolve_run
    from sharpdro.algorithms import POST_HOC, TWO_STAGE

    cfg, folder, resume_from = resolve_run(args, rest)
    args.folder = args.top = folder
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.time()
    algorithm, reference, data, rank, world = load_data(args, hold, cfg, folder, resume_from)
    run = fit.Run(args, rest, hold, cfg, folder, rank, world, t0)
    if algorithm.kind == TWO_STAGE:
        return stages.train_two_stage(run, data, reference, resume_from)
    if algorithm.kind == POST_HOC:
        return post_hoc.train_post_hoc(run, data, algorithm, reference)
    return fit.fit(run, cfg, folder, data, resume_from)


if __name__ == "__main__":
    main()
