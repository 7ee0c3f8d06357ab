"""ResNet-18/50 from mindcv (the maintained successor of mindvision, which no longer
imports on MindSpore 2.x). ImageNet stem (7x7 stride 2 + max-pool): meant for 64 px and up.
"""
from .registry import MODELS


def _mindcv(arch, num_classes, in_channels):
    from mindcv.models import create_model  # imported lazily: mindcv is slow to import

    return create_model(arch, num_classes=num_classes, in_channels=in_channels, pretrained=False)


@MODELS.register("resnet18", head="classifier", published="resnet18")
def resnet18(num_classes, in_channels=3):
    return _mindcv("resnet18", num_classes, in_channels)


@MODELS.register("resnet50", head="classifier", published="resnet50")
def resnet50(num_classes, in_channels=3):
    return _mindcv("resnet50", num_classes, in_channels)


def published_weights(arch):
    """The path of mindcv's published ImageNet checkpoint of ``arch``, downloaded into
    mindcv's cache on first use (mindcv's own downloader and cache folder). ValueError in
    one line when it cannot be had (offline), naming the file to fetch by hand."""
    import os

    from mindcv.models.resnet import default_cfgs
    from mindcv.models.helpers import get_checkpoint_download_root
    from mindcv.utils.download import DownLoad

    url = default_cfgs[arch]["url"]
    root = os.path.expanduser(get_checkpoint_download_root())
    path = os.path.join(root, os.path.basename(url))
    if os.path.isfile(path) and os.path.getsize(path) > 0:
        return path
    try:
        os.makedirs(root, exist_ok=True)
        DownLoad().download_url(url, path=root)
    except Exception as err:  # URLError, OSError, ssl errors: all mean "not here"
        if os.path.isfile(path):  # mindcv opens the file before the request: no stub stays
            os.remove(path)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"model.pretrained: cannot download mindcv's {arch} weights ({reason}); "
                         f"download {url} on a machine with network and pass "
                         "--model.checkpoint PATH") from None
    return path
