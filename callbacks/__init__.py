"""The run layer: the run folder and small single-purpose ``mindspore.train.Callback``s
used by train.py, and the command-line plumbing of eval.py and export.py."""
from .checkpoint import Checkpointer, ExportBest
from .interrupt import Interrupt
from .evaluation import SeverityEval, evaluate_by_severity, format_table, markdown_table
from .progress import NanGuard, ProgressLogger, StopAtStep
from .replicas import AverageReplicas
from .run_folder import RunFolder
from .selection import SelectionLogger
from .state import RunState

__all__ = ["AverageReplicas", "Checkpointer", "ExportBest", "Interrupt", "NanGuard", "ProgressLogger", "RunFolder", "RunState",
           "SelectionLogger", "SeverityEval", "StopAtStep", "evaluate_by_severity", "format_table",
           "markdown_table"]
