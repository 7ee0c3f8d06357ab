"""The methods, one registry: the train-one-step cells erm, groupdro, sam, sharpdro,
sharpdro_agnostic, irm, vrex, cvar; the two-stage jtt, eiil; the post-hoc dfr (protocol.py).

``create_train_step(name, network, optimizer, num_groups, **hparams)`` builds one. The
hyperparameters' defaults, ranges and docs are the algorithm's table in
``sharpdro/hparams.py``; a name the algorithm does not take is an error, so a typo never
silently changes nothing.
"""
from .. import hparams as H
from .base import SCRATCH_PREFIX, TrainStep, reads_group_column
from ..registry import import_all
from .protocol import KINDS, ONE_STAGE, POST_HOC, TWO_STAGE, HeadFit, Inferred
from .registry import ALGORITHMS

import_all((__name__, __path__), skip=("base", "registry", "protocol"))  # every cell file registers itself


def create_train_step(name, network, optimizer, num_groups=None, world_size=1,
                      group_counts=None, seed=0, **hparams):
    """A train-one-step cell for ``mindspore.Model``: algorithm ``name`` over ``network``,
    stepping ``optimizer``, with ``num_groups`` group weights (the data's group column
    holds 0..num_groups-1; optional for the algorithms that never read it, erm, sam, cvar
    and sharpdro_agnostic, whose cells also take (image, label) data); ``hparams`` as in
    ``sharpdro/hparams.py`` (rho, eta, ...). ``world_size`` > 1: data parallel over that many
    ranks (communication initialised, each rank fed its slice of every global batch).
    ``group_counts``: the training images per group, which the ``adjustment`` option of
    groupdro and sharpdro needs (other algorithms ignore them). ``seed``: the run's seed,
    which seeds the draws of sharpdro's ``pass2_rule: sample`` (others ignore it)."""
    cls = ALGORITHMS.get(name)
    if cls.kind == POST_HOC:
        raise ValueError(f"{name} is post-hoc: it trains no step; it refits the head of a "
                         "finished run (algorithm.reference)")
    if num_groups is None:
        if reads_group_column(cls):
            raise ValueError(f"{name} reads the data's group column: give num_groups (its "
                             "ids are 0..num_groups-1)")
        num_groups = 1
    options = H.step_options(H.resolve(name, hparams))
    if "adjustment" in options:
        options["group_counts"] = group_counts
    if "pass2_rule" in options:
        options["seed"] = seed
    return cls(network, optimizer, num_groups, world_size, **options)


def create_train_step_from_config(algorithm_cfg, network, optimizer, num_groups, world_size=1,
                                  group_counts=None, seed=0):
    """Build from a config's ``algorithm`` section, passing only the options it declares."""
    name = algorithm_cfg["name"]
    options = ALGORITHMS.select_options(name, algorithm_cfg)
    return create_train_step(name, network, optimizer, num_groups, world_size, group_counts,
                             seed, **options)


__all__ = ["ALGORITHMS", "TrainStep", "create_train_step",
           "create_train_step_from_config", "SCRATCH_PREFIX", "KINDS", "ONE_STAGE", "TWO_STAGE",
           "POST_HOC", "HeadFit", "Inferred"]
