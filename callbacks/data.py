"""Everything train.py checks before it touches a run folder, then the run's data: the
choices, the ignored settings, the device and ranks, the data and its evaluation sets."""
import sys
import time

from .checks import (UserError, check_choices, check_evaluation_sets, unreached_anneal,
                     warn_ignored)
from .resume import confirm


def load_data(args, hold, cfg, folder, resume_from):
    """-> (algorithm class, reference run or None, DataBundle, rank, world size);
    UserError in one line for any bad input. Before the data is built, rank 0 takes the run
    folder's lock (held in ``hold`` to the end) and decides again under it what the folder
    may be used for; a reference run is held against writers while this run reads it."""
    from datasets import build_data
    from datasets.readers import DatasetNotFoundError
    from sharpdro.atomic import describe_os_error
    from sharpdro.distributed import DistributedError, init_distributed
    from sharpdro.runtime import set_context

    from .run_folder import RunFolderError

    try:
        algorithm, reference = check_choices(cfg)
        warn_ignored(cfg)
        set_context(cfg.device_target, cfg.mode, cfg.device_id, seed=cfg.seed)
        rank, world = init_distributed(cfg.train.distributed)
        if reference is not None:  # no training may change it while it is read
            hold.enter_context(reference.read_lock())
        if rank == 0:  # only rank 0 writes, and holds the folder
            hold.enter_context(folder.lock("train.py"))
            confirm(args, cfg, folder, resume_from)
        t0 = time.time()
        data = build_data(cfg, rank, world)
        check_evaluation_sets(data)
    except (ValueError, DatasetNotFoundError, DistributedError, RunFolderError) as err:
        raise UserError(str(err)) from None
    except OSError as err:  # the cache folder: read-only, full
        raise UserError(describe_os_error(err)) from None
    print(describe(cfg, data, rank, world, time.time() - t0))
    unreached = unreached_anneal(cfg, data.steps_per_epoch)
    if unreached and rank == 0:
        print(f"warning: {unreached}", file=sys.stderr)
    return algorithm, reference, data, rank, world


def describe(cfg, data, rank, world, seconds):
    """The data line of train.py's output."""
    parallel = (f", rank {rank} of {world} ({cfg.train.batch_size // world} per rank)"
                if world > 1 else "")
    groups = (f"{cfg.data.corruption} at severities 0..{cfg.data.num_severity}"
              if cfg.data.groups == "severity" else f"groups {cfg.data.groups}: "
              + ", ".join(f"{n} ({c})" for n, c in zip(data.group_names, data.train_counts)))
    return (f"data: {cfg.data.dataset}, {groups}, {sum(data.train_counts)} training "
            f"images, {data.steps_per_epoch} steps/epoch ({seconds:.1f}s){parallel}")
