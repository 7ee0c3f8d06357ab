"""JTT and EIIL (SPEC section 5): label-free two-stage methods. Stage 1 trains an ERM
reference model; between the stages ``sharpdro.label_free`` turns its outputs on the
training images into JTT's error set (upweighted in the data) or EIIL's two inferred
groups. Stage 2's step is then plain ERM (JTT) or GroupDRO over the inferred groups (EIIL):
these cells are those steps, and take the stage options only so that one config section
describes the whole method. The stages themselves are run by the application (train.py);
in a script of your own: train ERM, compute the error set or environments with
``sharpdro.label_free``, then train this cell on the reweighted or regrouped data.
"""
from .erm import ERM
from .groupdro import GroupDRO
from .registry import ALGORITHMS


@ALGORITHMS.register("jtt")
class JTT(ERM):
    two_stage = True  # its training needs an ERM stage 1 first

    def __init__(self, network, optimizer, num_groups, world_size, *, first_epochs, upweight,
                 reference):
        super().__init__(network, optimizer, num_groups, world_size)


@ALGORITHMS.register("eiil")
class EIIL(GroupDRO):
    two_stage = True
    uses_group_labels = False  # its groups are inferred, the data's never read

    def __init__(self, network, optimizer, num_groups, world_size, *, first_epochs, eiil_steps,
                 eiil_lr, reference, eta, absent_groups):
        super().__init__(network, optimizer, num_groups, world_size, eta=eta,
                         absent_groups=absent_groups)
