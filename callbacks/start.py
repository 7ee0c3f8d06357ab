"""Where a run's weights start: the config's ``model.checkpoint`` or ``model.pretrained``, and
``model.freeze`` (the library's load_start_weights and freeze_backbone do the work)."""
from sharpdro.finetune import freeze_backbone, load_start_weights
from sharpdro.models import MODELS, model_head, published_checkpoint


def start_from_config(network, model_cfg, load=True):
    """The config's start and freeze applied to a freshly built ``network``. Returns the
    LoadReport, or None when the network starts from its random initialisation (or
    ``load`` is False: a resumed run, whose weights come from its own checkpoint).
    ValueError for any bad input."""
    name = model_cfg["name"]
    head = model_head(name)
    if model_cfg["freeze"] == "backbone" and head is None:
        raise ValueError(f"model.freeze backbone: model {name} registers no head (classifier "
                         "layer), so its backbone cannot be told apart")
    path = model_cfg["checkpoint"] if load else None
    if load and model_cfg["pretrained"]:
        path = published_checkpoint(name)
    report = None
    if path:
        options = {"name": name, **MODELS.select_options(name, model_cfg)}
        report = load_start_weights(network, path, head, options)
    if model_cfg["freeze"] == "backbone":
        freeze_backbone(network, head)
    return report
