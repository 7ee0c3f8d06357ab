"""ResNet-18/50 from mindcv (the maintained successor of mindvision, which no longer
imports on MindSpore 2.x). ImageNet stem (7x7 stride 2 + max-pool): meant for 64 px and up.
"""
from .registry import MODELS


def _mindcv(arch, num_classes, in_channels):
    from mindcv.models import create_model  # imported lazily: mindcv is slow to import

    return create_model(arch, num_classes=num_classes, in_channels=in_channels, pretrained=False)


@MODELS.register("resnet18")
def resnet18(num_classes, in_channels=3):
    return _mindcv("resnet18", num_classes, in_channels)


@MODELS.register("resnet50")
def resnet50(num_classes, in_channels=3):
    return _mindcv("resnet50", num_classes, in_channels)
