"""Models, one registry: wrn (WideResNet, depth/width configurable), small_cnn, resnet18,
resnet50. ``create_model(name, num_classes, in_channels, **options)``."""
from ..registry import import_all
from .registry import MODELS

import_all((__name__, __path__))  # every model file registers itself


def create_model(name, num_classes, in_channels=3, **options):
    """A built-in network (wrn, small_cnn, resnet18, resnet50) taking N x in_channels x H x W."""
    builder = MODELS.get(name)
    unknown = set(options) - set(MODELS.options(name))
    if unknown:
        raise ValueError(f"model {name!r} takes options {list(MODELS.options(name))}, "
                         f"not {sorted(unknown)}")
    if int(num_classes) < 1 or int(in_channels) < 1:
        raise ValueError(f"num_classes and in_channels must be >= 1, got {num_classes}, {in_channels}")
    return builder(int(num_classes), int(in_channels), **options)


def create_model_from_config(model_cfg, num_classes, in_channels):
    """Build from a config's ``model`` section, passing only the options the model declares."""
    name = model_cfg["name"]
    return create_model(name, num_classes, in_channels, **MODELS.select_options(name, model_cfg))


def model_head(name):
    """The attribute path of the model's classifier layer (None where it cannot be told apart)."""
    return MODELS.trait(name, "head")


def in_head(name, head):
    """Whether parameter or cell ``name`` belongs to the head at attribute path ``head``."""
    return head is not None and (name == head or name.startswith(head + "."))


def published_checkpoint(name):
    """The path of the published ImageNet weights of model ``name`` (mindcv's, downloaded
    into its cache on first use); ValueError where there are none or they cannot be had."""
    arch = MODELS.trait(name, "published")
    if not arch:
        have = [n for n in MODELS.names() if MODELS.trait(n, "published")]
        raise ValueError(f"model.pretrained: there are no published weights for {name} (mindcv "
                         f"publishes {', '.join(have)}); start from a file with model.checkpoint")
    from .resnet import published_weights

    return published_weights(arch)


__all__ = ["MODELS", "create_model", "create_model_from_config", "model_head", "in_head",
           "published_checkpoint"]
