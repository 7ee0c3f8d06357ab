"""Build the cache of corrupted arrays ahead of training and print the per-severity counts.

    python -m datasets.prepare --config configs/<name>.yaml [--key value ...]
"""
import argparse
import logging
import sys

import sharpdro  # noqa: F401  (process settings)
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
    print(f"{cfg.data.dataset} / {cfg.data.corruption} ({cfg.data.corruption_table} constants), "
          f"seed {cfg.seed}, cache {cfg.data.cache_dir}")
    print("severity        " + " ".join(f"{s:>7}" for s in range(len(arrays.train_counts))))
    print("train           " + " ".join(f"{n:7d}" for n in arrays.train_counts))
    print("val (each)      " + " ".join(f"{len(arrays.val[s][1]):7d}" for s in arrays.val))
    print("test (each)     " + " ".join(f"{len(arrays.test[s][1]):7d}" for s in arrays.test))
    return arrays


if __name__ == "__main__":
    main()
