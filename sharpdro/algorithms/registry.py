"""The algorithm registry: name -> train-one-step cell class. Each algorithm's options are
the names of its table in ``sharpdro/hparams.py``; the registry takes them from there."""
from ..hparams import HPARAMS
from ..registry import Registry


class AlgorithmRegistry(Registry):
    def register(self, name):
        """Register a cell class; its options are its table in HPARAMS, never given here."""
        if name not in HPARAMS:
            raise ValueError(f"algorithm {name!r} has no hyperparameter table in sharpdro/hparams.py")
        return super().register(name, tuple(HPARAMS[name]))


ALGORITHMS = AlgorithmRegistry("algorithm")
