"""Choose the method and its main setting on your own validation set.

    python tune.py --config C [--methods sharpdro,sharpdro+balanced,erm,...] [--budget N]
                   [--halving ETA] [--key value ...]

Every method (an algorithm name, optionally +balanced: data.sampler group_balanced, or
+option=value: another option fixed, e.g. sharpdro+pass2_fraction=0.5) over the
grid of its main option (declared beside its Field in sharpdro/hparams.py; erm: one run),
each a normal train.py run folder under <output_root>/<name>-tune/<method>/<option>=<value>/
trained in its own process: finished runs are skipped and interrupted ones resumed, so an
interrupted sweep is run again with the same command. --halving ETA stops the weaker
candidates early (successive halving on epochs: the best 1/ETA go on at each rung). The
pick: worst-group validation accuracy at each run's selected epoch (ties: mean), or
overall validation accuracy without groups (data.groups none and validation without
groups; label-free methods only), with the candidates validation cannot tell from it (one
standard error). Writes tuned.yaml (for train.py --config tuned.yaml --seed S), report.md
and tune.png there.
--key value: config overrides as in train.py, for every run.
"""
import argparse
import sys

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config file of your data")
    parser.add_argument("--methods", help="comma-separated methods (default with groups: erm "
                        "and the methods that use them, with their declared variants; without: "
                        "the label-free ones; docs/tune.md)")
    parser.add_argument("--budget", type=int, help="at most this many runs in all: each grid "
                        "trimmed to its middle values")
    parser.add_argument("--halving", type=int, default=2, metavar="ETA",
                        help="stop early by successive halving: at epochs train.epochs / "
                        "ETA^k (evaluation epochs) only the best 1/ETA of the candidates go "
                        "on (default 2); 0: train every candidate to the end")
    return parser.parse_known_args(argv)


def main(argv=None):
    from callbacks.checks import UserError
    from callbacks.tune import tune

    argv = sys.argv[1:] if argv is None else argv
    args, overrides = parse_args(argv)
    try:
        return tune(args, overrides, "python tune.py " + " ".join(argv))
    except UserError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
