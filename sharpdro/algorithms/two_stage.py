"""JTT and EIIL (SPEC section 5): label-free two-stage methods (protocol.py). Stage 1 trains
an ERM reference model; ``between_stages`` turns its outputs on the training images into
JTT's error set (upweighted in the data) or EIIL's two inferred groups, with
``sharpdro.label_free``. Stage 2's step is then plain ERM (JTT) or GroupDRO over the
inferred groups (EIIL): these cells are those steps. The application (train.py) runs the
stages; in a script of your own: train ERM, call ``between_stages`` on its logits, then
train this cell on the reweighted or regrouped data.
"""
import numpy as np

from .. import label_free
from .erm import ERM
from .groupdro import GroupDRO
from .protocol import TWO_STAGE, Inferred
from .registry import ALGORITHMS

ENVIRONMENTS = ("env0", "env1")  # EIIL's inferred groups


@ALGORITHMS.register("jtt")
class JTT(ERM):
    kind = TWO_STAGE

    @staticmethod
    def between_stages(logits, labels, seed, options):
        """The error set of the stage-1 model, each of its images repeated ``upweight``
        times per epoch of stage 2."""
        error_set = label_free.jtt_error_set(logits, labels).astype(np.int64)
        n, chosen, upweight = len(labels), int(error_set.sum()), options["upweight"]
        lines = [f"jtt: error set of the stage-1 model: {chosen} of {n} training images "
                 f"({100 * chosen / n:.1f} %), each counted {upweight} times per epoch of "
                 "stage 2"]
        if chosen in (0, n):
            lines.append(f"warning: the error set holds {'none' if chosen == 0 else 'all'} of "
                         f"the {n} training images, so stage 2 is plain ERM; train stage 1 "
                         "longer or shorter (algorithm.first_epochs)")
        return Inferred(error_set, "in the error set",
                        repeats=label_free.jtt_repeats(error_set, upweight),
                        columns={"in_error_set": error_set}, lines=lines)


@ALGORITHMS.register("eiil")
class EIIL(GroupDRO):
    kind = TWO_STAGE
    uses_group_labels = False  # its groups are inferred, the data's never read

    @staticmethod
    def between_stages(logits, labels, seed, options):
        """Two environments that maximise the stage-1 model's IRMv1 penalty: stage 2's
        groups."""
        d = label_free.irm_terms(logits, labels)
        env, q, objective = label_free.eiil_environments(d, options["eiil_steps"],
                                                         options["eiil_lr"], seed)
        counts = np.bincount(env, minlength=2)
        lines = [f"eiil: inferred environments of the stage-1 model: {ENVIRONMENTS[0]} "
                 f"{counts[0]}, {ENVIRONMENTS[1]} {counts[1]} images (IRMv1 penalty of the "
                 f"split {objective:.4g})"]
        if counts.min() == 0:
            lines.append(f"warning: EIIL put all {len(labels)} training images in one "
                         "environment, so stage 2 is GroupDRO over one group (plain ERM); "
                         "try other algorithm.eiil_steps / eiil_lr or a longer stage 1")
        return Inferred(env, f"in {ENVIRONMENTS[1]}", groups=env, group_names=ENVIRONMENTS,
                        columns={"environment": env, "q": np.round(q, 6)}, lines=lines)
