"""Export a trained network: python export.py --run runs/<name> [--format MINDIR|ONNX]

Writes the file, reloads it, and checks its logits against the network on a batch; fails
if they differ by more than 1e-5.
"""
import argparse
import os
import sys

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from sharpdro.cli import add_checkpoint_args, parse_checkpoint_args
from sharpdro.runtime import set_context

TOLERANCE = 1e-5


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    add_checkpoint_args(parser)
    parser.add_argument("--format", default="MINDIR", choices=["MINDIR", "ONNX"])
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--file", help="output path without extension (default: <run>/model)")
    args, cfg = parse_checkpoint_args(parser, argv)
    set_context(cfg.device_target, "graph", cfg.device_id)

    import numpy as np
    import mindspore as ms
    from mindspore import nn

    from datasets import build_data
    from sharpdro.checkpoint import create_trained_model

    data = build_data(cfg)
    try:
        net = create_trained_model(cfg.model, data.num_classes, data.in_channels, args.ckpt)
    except ValueError as err:  # a checkpoint of another model: name the parameters
        sys.exit(str(err))
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
