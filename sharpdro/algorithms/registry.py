"""The algorithm registry: name -> train-one-step cell class."""
from ..registry import Registry

ALGORITHMS = Registry("algorithm")
