"""Build the cache of corrupted arrays ahead of training and print the per-severity counts.

    python -m datasets.prepare --config configs/<name>.yaml [--key value ...]
"""
import argparse
import logging
import sys

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
from sharpdro import config as C


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config")
    args, rest = parser.parse_known_args(argv)
    try:
        cfg = C.load_config(args.config, rest)
    except C.ConfigError as err:
        sys.exit(f"config error: {err}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from datasets.build import prepare_arrays

    arrays = prepare_arrays(cfg)
    d = cfg.data
    groups = (f"{d.corruption} ({d.corruption_table} constants)" if d.groups == "severity"
              else f"groups: {d.groups}")
    print(f"{d.dataset} / {groups}, seed {cfg.seed}, cache {d.cache_dir}")
    print(f"images per {arrays.group_kind}")
    print("  train  " + ", ".join(f"{n}: {c}" for n, c in zip(arrays.group_names, arrays.train_counts)))
    for split, sets in (("val", arrays.val), ("test", arrays.test)):  # evaluation sets by name
        print(f"  {split:<6} " + ", ".join(f"{n}: {len(y)}" for n, (_, y) in sets.items()))
    return arrays


if __name__ == "__main__":
    main()
