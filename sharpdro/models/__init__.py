"""Models, one registry: wrn (WideResNet, depth/width configurable), small_cnn, resnet18,
resnet50. ``create_model(name, num_classes, in_channels, **options)``."""
from .registry import MODELS
from . import resnet, small_cnn, wrn  # noqa: F401  (registration)


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


__all__ = ["MODELS", "create_model", "create_model_from_config"]
