"""Post-hoc methods (protocol.py): they train no step; each refits the classifier head of a
finished run's network on that network's features. DFR (Kirichenko et al., ICLR 2023) is
the one here; the application runs it with ``train.py --algorithm.name dfr
--algorithm.reference RUN``."""
from .. import dfr
from .protocol import HeadFit, PostHoc
from .registry import ALGORITHMS


@ALGORITHMS.register("dfr")
class DFR(PostHoc):
    @staticmethod
    def refit(pool, select, num_classes, seed, options):
        """The DFR head (sharpdro/dfr.py) from the pool (training images and one half of
        validation) and the selection half (the other), each (features, labels, groups)."""
        result = dfr.dfr_fit(pool, select, num_classes, seed, draws=options["draws"])
        record = {"grid": result.grid, "selection_worst_acc": result.scores,
                  "picked_C": result.picked, "draws": options["draws"],
                  "draw_size": result.draw_size, "solver": result.solver}
        lines = [f"dfr: C {result.picked} picked on the selection half's worst group from "
                 + ", ".join(f"{c}: {100 * s:.1f} %" for c, s in result.scores.items())]
        if len(result.grid) > len(dfr.C_GRID):
            lines.append(f"dfr: the grid was extended to {result.grid[len(dfr.C_GRID):]} "
                         "(the pick was on its edge)")
        slow = [c for c, s in result.solver.items() if not s["converged"]]
        if slow:
            lines.append(f"warning: the solver stopped at its {dfr.MAX_ITER} iteration cap "
                         f"without converging for C {', '.join(slow)}")
        return HeadFit(result.weight, result.bias, result.scores[result.picked], record, lines)
