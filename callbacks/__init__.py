"""Small single-purpose ``mindspore.train.Callback``s used by train.py."""
from .checkpoint import Checkpointer, ExportBest
from .evaluation import SeverityEval, evaluate_by_severity, format_table, markdown_table
from .progress import NanGuard, ProgressLogger, StopAtStep
from .selection import SelectionLogger
from .state import RunState

__all__ = ["Checkpointer", "ExportBest", "NanGuard", "ProgressLogger", "RunState",
           "SelectionLogger", "SeverityEval", "StopAtStep", "evaluate_by_severity", "format_table",
           "markdown_table"]
