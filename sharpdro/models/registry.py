"""The model registry: name -> builder(num_classes, in_channels, **options)."""
from ..registry import Registry

MODELS = Registry("model")
