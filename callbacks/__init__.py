"""The run layer: the run folder and small single-purpose ``mindspore.train.Callback``s
used by train.py and what it computes (checks, resume, fit, stages, post_hoc, start, data);
the command-line plumbing of eval.py and export.py (entry) and what eval.py's modes do
(accuracy, predict, photon_sweep, benchmark_report)."""
import datasets  # noqa: F401  (the readers' options join the config schema on import)

from .checkpoint import Checkpointer
from .interrupt import Interrupt
from .evaluation import SeverityEval, evaluate_by_severity, format_table, markdown_table
from .progress import NanGuard, ProgressLogger, StopAtStep
from .replicas import AverageReplicas
from .run_folder import RunFolder
from .selection_log import SelectionLogger
from .state import RunState
from .training import RunEnd, create_callbacks, finish_run

__all__ = ["AverageReplicas", "Checkpointer", "Interrupt", "NanGuard", "ProgressLogger", "RunFolder", "RunState",
           "RunEnd", "SelectionLogger", "SeverityEval", "StopAtStep", "create_callbacks",
           "evaluate_by_severity", "finish_run", "format_table", "markdown_table"]
