"""The three kinds of method, and what each declares (``kind`` on its registered class).

- ``ONE_STAGE``: a train-step cell (``TrainStep``) that ``mindspore.Model`` trains.
- ``TWO_STAGE`` (jtt, eiil): stage 1 trains ERM; between the stages the class's
  ``between_stages`` turns the stage-1 model's outputs on the training images into an
  :class:`Inferred` (new repeats or new groups of the training images); stage 2 trains the
  class's own cell on the data changed so.
- ``POST_HOC`` (dfr): no train step. The class's ``refit`` turns the features of a finished
  run's network into a new classifier head (a :class:`HeadFit`).

Options a cell does not take (stage 1's length, the reference run, the refit's draws) are
``stage`` Fields in ``sharpdro/hparams.py``: ``create_train_step`` never hands them to a cell,
and the application that runs the stages reads them. No MindSpore here.
"""
from dataclasses import dataclass, field

import numpy as np

ONE_STAGE, TWO_STAGE, POST_HOC = "one_stage", "two_stage", "post_hoc"
KINDS = (ONE_STAGE, TWO_STAGE, POST_HOC)


@dataclass
class Inferred:
    """What a two-stage method infers between its stages, per training image (in order)."""
    marked: np.ndarray  # 0/1: the set the inference found (JTT's error set, EIIL's env1)
    marked_as: str  # that set in words, for the table against the data's own groups
    repeats: np.ndarray = None  # times each image appears per epoch of stage 2
    groups: np.ndarray = None  # stage 2's group of each image (group_names index it)
    group_names: tuple = ()
    columns: dict = field(default_factory=dict)  # per-image values worth keeping (a CSV)
    lines: list = field(default_factory=list)  # the summary; "warning: ..." lines too


@dataclass
class HeadFit:
    """A post-hoc method's new head for the raw features: logits = features @ weight.T + bias."""
    weight: np.ndarray  # classes x features
    bias: np.ndarray
    score: float = None  # what chose it: its worst-group accuracy on the selection data
    record: dict = field(default_factory=dict)  # JSON-able: what was chosen and why
    lines: list = field(default_factory=list)  # the summary


class PostHoc:
    """Base of the post-hoc methods: a class with ``refit``, not a cell."""
    kind = POST_HOC
    uses_group_labels = True

    @staticmethod
    def refit(pool, select, num_classes, seed, options):
        """``pool``, ``select``: (features, labels, groups) to fit on and to choose on."""
        raise NotImplementedError
