"""Small single-purpose ``mindspore.train.Callback``s used by train.py."""
from .checkpoint import EpochCheckpoint, save_train_state
from .evaluation import SeverityEval, evaluate_by_severity
from .progress import NanGuard, ProgressLogger

__all__ = ["EpochCheckpoint", "NanGuard", "ProgressLogger", "SeverityEval",
           "evaluate_by_severity", "save_train_state"]
