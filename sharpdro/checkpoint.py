"""Loading trained weights into a bare network, with clear errors for a mismatch."""
import mindspore as ms


def load_network_weights(network, ckpt_path):
    """Load the network's parameters from a train-state or plain checkpoint.

    Raises ValueError naming parameters that are missing or whose shapes differ.
    """
    saved = ms.load_checkpoint(ckpt_path)
    problems = []
    for p in network.get_parameters():
        if p.name not in saved:
            problems.append(f"{p.name}: missing from checkpoint")
        elif tuple(saved[p.name].shape) != tuple(p.shape):
            problems.append(f"{p.name}: checkpoint {tuple(saved[p.name].shape)} vs model {tuple(p.shape)}")
    if problems:
        shown = "\n  ".join(problems[:20]) + ("\n  ..." if len(problems) > 20 else "")
        raise ValueError(f"checkpoint {ckpt_path} does not fit the model "
                         f"({len(problems)} parameters):\n  {shown}")
    ms.load_param_into_net(network, {p.name: saved[p.name] for p in network.get_parameters()},
                           strict_load=True)
    return saved


def create_trained_model(model_cfg, num_classes, in_channels, ckpt_path):
    """The config's model with the checkpoint's weights, in inference mode."""
    from .models import create_model_from_config

    network = create_model_from_config(model_cfg, num_classes, in_channels)
    load_network_weights(network, ckpt_path)
    network.set_train(False)
    return network
