"""Export a trained network for deployment.

    python export.py --run runs/<name> [--format MINDIR|ONNX] [--batch_size N]
    python export.py --config <yaml> --ckpt <file> [--file out/model]

The input shape (C x H x W) comes from the config's data; the batch dimension is dynamic
unless --batch_size is given. After writing, the file is reloaded (mindspore.load +
nn.GraphCell, or onnxruntime) and its logits are compared with the network's on a batch;
the largest difference is printed and the export fails beyond 1e-5.
"""
import argparse
import os
import sys

import sharpdro  # noqa: F401  (process settings before mindspore loads)
from sharpdro.cli import add_checkpoint_args, parse_checkpoint_args
from sharpdro.runtime import set_context


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_checkpoint_args(parser)
    parser.add_argument("--format", default="MINDIR", choices=["MINDIR", "ONNX"])
    parser.add_argument("--batch_size", type=int, default=None,
                        help="fixed batch size (default: dynamic)")
    parser.add_argument("--file", help="output path without extension (default: beside the "
                                       "checkpoints folder, 'model')")
    args, cfg = parse_checkpoint_args(parser, argv)
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch_size must be at least 1")
    set_context(cfg.device_target, "graph", cfg.device_id)

    from datasets import build_data
    from datasets.readers import DatasetNotFoundError
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.deploy import export_and_verify

    try:
        data = build_data(cfg)
        net = create_trained_model(cfg.model, data.num_classes, data.in_channels, args.ckpt)
        base = args.file or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(args.ckpt))),
                                         "model")
        image_shape = (data.in_channels, data.image_size, data.image_size)
        path, diff = export_and_verify(net, image_shape, base, args.format, args.batch_size)
    except (ValueError, DatasetNotFoundError) as err:
        sys.exit(f"error: {err}")
    batch = args.batch_size or "dynamic"
    print(f"exported {path}: input {batch} x {' x '.join(map(str, image_shape))}, largest logit "
          f"difference after reload {diff:.2e}")
    return path


if __name__ == "__main__":
    main()
