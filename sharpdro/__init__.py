"""SharpDRO: worst-case sharpness minimisation for photon-limited corruptions (MindSpore).

The public API, for a user's own MindSpore script (each name is imported on first use, so
``import sharpdro`` loads nothing and changes nothing in the process):

- ``create_train_step(name, network, optimizer, num_groups, **hparams)``: a train-one-step
  cell (erm, groupdro, sam, sharpdro, sharpdro_agnostic) for ``mindspore.Model``
  (``num_groups`` optional for the label-free ones, which also take (image, label) data);
- ``create_optimizer(params, lr, momentum, weight_decay, decay_bn_bias)``: SGD with momentum
  as the method expects it;
- ``create_model(name, num_classes, in_channels, **options)``: the built-in networks;
- ``GroupEvalCell(network)``: (image, label, group) -> (loss, logits, label, group);
- ``GroupAccuracy(num_groups, group_names=None)``: per-group, mean and worst-group accuracy;
- ``GroupWeightMonitor(cell, every, csv_path, group_names)``: logs the group weights (a
  label-free step: its group losses and selection);
- ``TrainingGuard(cell)``: stops the training with one error on group ids outside
  0..num_groups-1 or a loss or group weights that are not finite;
- ``load_start_weights(network, path, head)``, ``freeze_backbone(network, head)``: start
  from a checkpoint, train only the head;
- ``configure_process()``: optional CPU settings, before MindSpore is imported.
"""
import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "create_train_step": "sharpdro.algorithms",
    "create_optimizer": "sharpdro.optim",
    "create_model": "sharpdro.models",
    "GroupEvalCell": "sharpdro.metrics",
    "GroupAccuracy": "sharpdro.metrics",
    "GroupWeightMonitor": "sharpdro.monitor",
    "TrainingGuard": "sharpdro.monitor",
    "configure_process": "sharpdro.runtime",
    "load_start_weights": "sharpdro.finetune",
    "freeze_backbone": "sharpdro.finetune",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # the next access is a plain attribute
        return value
    raise AttributeError(f"module 'sharpdro' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
