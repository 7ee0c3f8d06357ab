"""Start from trained weights: load a checkpoint into a network by name and shape, freeze the
backbone, and find the head.

The *head* is the classifier layer a model registers (``MODELS.register(..., head="fc")``,
an attribute path of the network); everything else is the *backbone*.
"""
import json
import os
from dataclasses import dataclass, field

from mindspore import nn

from .atomic import file_sha256
from .checkpoint import STATE_KEY, load_matching, read_checkpoint
from .models import in_head


def get_head(network, head):
    """The head cell at attribute path ``head``; ValueError if there is none."""
    cell = network
    for part in (head or "").split("."):
        cell = getattr(cell, part, None) if part else None
        if cell is None:
            raise ValueError(f"the network has no head {head!r} (its classifier layer)")
    if not isinstance(cell, nn.Dense):
        raise ValueError(f"the head {head!r} is a {type(cell).__name__}, not a Dense layer")
    return cell


@dataclass
class LoadReport:
    """What ``load_start_weights`` did, for the log and the run folder."""
    path: str
    sha256: str
    loaded: list = field(default_factory=list)
    reinitialised: list = field(default_factory=list)  # the head, for another class count
    adapted: list = field(default_factory=list)  # colour stem summed for grey input
    skipped: list = field(default_factory=list)  # in the file, not in the model
    trained_with: dict = field(default_factory=dict)  # model section, for our own checkpoints

    def summary(self):
        parts = [f"{len(self.loaded)} parameters loaded"]
        if self.adapted:
            parts.append(f"{len(self.adapted)} adapted to grey input ({', '.join(self.adapted)}: "
                         "the colour weights summed, as if the grey image were repeated to 3 "
                         "channels)")
        if self.reinitialised:
            parts.append(f"{len(self.reinitialised)} re-initialised ({', '.join(self.reinitialised)}"
                         ": another class count)")
        parts.append(f"{len(self.skipped)} entries of the file skipped (not in the model, "
                     "e.g. optimizer state)")
        return (f"start weights {self.path} (sha256 {self.sha256[:16]}...): "
                + ", ".join(parts))

    def to_json(self):
        return {"path": os.path.abspath(self.path), "sha256": self.sha256,
                "loaded": len(self.loaded), "reinitialised": self.reinitialised,
                "adapted": self.adapted, "skipped": len(self.skipped),
                "skipped_names": self.skipped[:50], "trained_with": self.trained_with}


def _trained_with(saved):
    """The model section our training checkpoints record (None for other files)."""
    if STATE_KEY not in saved:
        return None
    try:
        text = json.loads(str(saved[STATE_KEY]))["config"]
        import yaml

        return dict(yaml.safe_load(text).get("model") or {})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def load_start_weights(network, path, head=None, model_options=None):
    """Initialise ``network`` from the checkpoint at ``path``, matching parameters by name
    and shape (``sharpdro.checkpoint.load_matching`` in mode "start"):

    - The head (attribute path ``head``) is left as initialised where the file's head has
      another class count (or the file has none).
    - A 4-D weight stored for 3 input channels where the network takes 1 (grey images on
      a colour checkpoint) is summed over the channels: the network computes what the
      checkpoint's does on the grey image repeated to 3 channels.
    - Any other parameter that is missing or of another shape is an error listing the
      first few names: a checkpoint of another architecture never loads half-silently.
    - ``model_options`` (e.g. {"name": "wrn", "depth": 28}): where the file is one of our
      training checkpoints, its recorded model must agree on these keys.

    Returns a :class:`LoadReport`. Raises ValueError for a missing, truncated or
    non-checkpoint file and for every mismatch; the network is untouched then.
    """
    saved = read_checkpoint(path)
    trained_with = _trained_with(saved)
    if trained_with is not None and model_options:
        differ = [f"{k} {trained_with.get(k)!r} there, {v!r} here" for k, v in model_options.items()
                  if k in trained_with and trained_with[k] != v]
        if differ:
            raise ValueError(f"{path} was trained with another model ({'; '.join(differ)})")
    match = load_matching(network, saved, path, "start", head)
    return LoadReport(path, file_sha256(path), trained_with=trained_with or {}, **vars(match))


def freeze_backbone(network, head):
    """Train only the head: every other parameter stops requiring gradients (so optimizers
    built from ``trainable_params()`` leave it alone, and the sharpness perturbation, which
    covers the optimizer's parameters, does too), and every BatchNorm outside the head
    normalises with its moving statistics and never updates them. Returns the number of
    frozen parameters."""
    get_head(network, head)
    frozen = 0
    for name, cell in network.cells_and_names():
        if isinstance(cell, nn.layer.normalization._BatchNorm) and not in_head(name, head):
            cell.use_batch_statistics = False  # read in construct: inference-mode statistics
    for p in network.get_parameters():
        if not in_head(p.name, head):
            p.requires_grad = False
            frozen += 1
    return frozen


def split_head(network, head):
    """Replace the head by an identity, so that ``network`` returns the head's input (the
    features); returns the head cell. The network is changed in place."""
    cell = get_head(network, head)
    *path, last = head.split(".")
    parent = network
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, last, nn.Identity())
    return cell
