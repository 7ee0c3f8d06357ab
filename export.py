"""Export a trained network: python export.py --run runs/<name> [--format MINDIR|ONNX]

Writes the file, reloads it, and checks its logits against the network on a batch; fails
if they differ by more than 1e-5.
"""
import argparse
import os
import sys

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from sharpdro import config as C
from sharpdro.runtime import set_context

TOLERANCE = 1e-5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", help="run folder (uses its config.yaml and checkpoints/last.ckpt)")
    parser.add_argument("--config")
    parser.add_argument("--ckpt")
    parser.add_argument("--format", default="MINDIR", choices=["MINDIR", "ONNX"])
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--file", help="output path without extension (default: <run>/model)")
    args, rest = parser.parse_known_args(argv)
    if args.run:
        args.config = args.config or os.path.join(args.run, "config.yaml")
        args.ckpt = args.ckpt or os.path.join(args.run, "checkpoints", "last.ckpt")
    if not args.config or not args.ckpt:
        parser.error("give --run, or --config and --ckpt")
    cfg = C.load_config(args.config, rest)
    set_context(cfg.device_target, "graph", cfg.device_id)

    import numpy as np
    import mindspore as ms
    from mindspore import nn

    from datasets import build_data
    from sharpdro.checkpoint import load_network_weights
    from sharpdro.models import create_model_from_config

    data = build_data(cfg)
    net = create_model_from_config(cfg.model, data.num_classes, data.in_channels)
    try:
        load_network_weights(net, args.ckpt)
    except ValueError as err:
        sys.exit(str(err))
    net.set_train(False)
    shape = (args.batch_size, data.in_channels, data.image_size, data.image_size)
    sample = ms.Tensor(np.random.default_rng(0).normal(size=shape).astype(np.float32))
    base = args.file or os.path.join(os.path.dirname(os.path.dirname(args.ckpt)), "model")
    ms.export(net, sample, file_name=base, file_format=args.format)
    path = base + (".mindir" if args.format == "MINDIR" else ".onnx")
    want = net(sample).asnumpy()
    if args.format == "MINDIR":
        got = nn.GraphCell(ms.load(path))(sample).asnumpy()
    else:
        import onnxruntime  # optional dependency, only for ONNX
        session = onnxruntime.InferenceSession(path)
        got = session.run(None, {session.get_inputs()[0].name: sample.asnumpy()})[0]
    diff = float(np.abs(got - want).max())
    print(f"exported {path}: input {shape}, largest logit difference after reload {diff:.2e}")
    if diff > TOLERANCE:
        sys.exit(f"exported model differs from the network by {diff} > {TOLERANCE}")
    return path


if __name__ == "__main__":
    main()
