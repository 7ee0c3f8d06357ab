"""Train-one-step cells, one registry: erm, groupdro, sam, sharpdro, sharpdro_agnostic.

``create_train_step(name, network, optimizer, num_groups, **options)`` builds one; options
an algorithm does not declare are an error, so a typo never silently changes nothing.
"""
from .base import (EvalCell, TrainStep, GROUP_WEIGHTS, LAST_GROUP_COUNT, LAST_GROUP_LOSS,
                   SCRATCH_PREFIX)
from .registry import ALGORITHMS
from . import erm, groupdro, sam, sharpdro, sharpdro_agnostic  # noqa: F401  (registration)


def create_train_step(name, network, optimizer, num_groups, **options):
    cls = ALGORITHMS.get(name)
    unknown = set(options) - set(ALGORITHMS.options(name))
    if unknown:
        raise ValueError(f"algorithm {name!r} takes options {list(ALGORITHMS.options(name))}, "
                         f"not {sorted(unknown)}")
    return cls(network, optimizer, num_groups, **options)


def create_train_step_from_config(algorithm_cfg, network, optimizer, num_groups):
    """Build from a config's ``algorithm`` section, passing only the options it declares."""
    name = algorithm_cfg["name"]
    options = ALGORITHMS.select_options(name, algorithm_cfg)
    return create_train_step(name, network, optimizer, num_groups, **options)


__all__ = ["ALGORITHMS", "EvalCell", "TrainStep", "create_train_step",
           "create_train_step_from_config", "GROUP_WEIGHTS", "LAST_GROUP_LOSS",
           "LAST_GROUP_COUNT", "SCRATCH_PREFIX"]
