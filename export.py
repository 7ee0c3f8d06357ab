"""Export a trained network for deployment.

    python export.py --run runs/<name> [--format MINDIR|ONNX] [--batch_size N]
    python export.py --config <yaml> --ckpt <file> [--file out/model]

The input shape (C x H x W) comes from the run's data.json (else the config's data). The batch dimension is dynamic
for MindIR unless --batch_size is given; ONNX needs a fixed one (default 1). The file goes
to the run folder's exports/model_<checkpoint>_batch<N|dynamic>.<mindir|onnx> (or --file
PATH, without extension); an existing file is kept unless --overwrite is given (train.py's
own model.mindir is never touched). After writing, the file is reloaded (mindspore.load +
nn.GraphCell, or onnxruntime) and its logits are compared with the network's on a batch;
the largest difference is printed, and beyond 1e-5 the export fails and leaves no file.
"""
import argparse
import os
import sys

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
from callbacks.entry import (add_checkpoint_args, describe_checkpoint, entry_point, image_shape,
                           input_contract, output_base, parse_checkpoint_args, set_device,
                           stopped_cleanly)
from sharpdro.deploy import SUFFIX

MAX_BATCH = 65536  # the export is checked on one batch of that size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_checkpoint_args(parser)
    parser.add_argument("--format", default="MINDIR", choices=list(SUFFIX))
    parser.add_argument("--batch_size", type=int, default=None,
                        help="fixed batch size (default: dynamic for MindIR, 1 for ONNX)")
    parser.add_argument("--file", help="output path without extension (default: the run "
                                       "folder's exports/model_<checkpoint>_batch<N|dynamic>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args, cfg = parse_checkpoint_args(parser, argv)
    if args.batch_size is not None and not 1 <= args.batch_size <= MAX_BATCH:
        parser.error(f"--batch_size must be from 1 to {MAX_BATCH}")
    if args.format == "ONNX" and args.batch_size is None:
        args.batch_size = 1
        print("ONNX: MindSpore exports a fixed batch size only; using --batch_size 1")
    path = output_base(args) + SUFFIX[args.format]
    with entry_point("export.py", path):
        return export(args, cfg, path)


def export(args, cfg, path):
    if os.path.exists(path) and not args.overwrite:
        sys.exit(f"{path} exists; pass --overwrite to replace it, or --file for another name")
    set_device(cfg, "graph")

    from datasets.readers import DatasetNotFoundError
    from sharpdro.checkpoint import create_trained_model
    from sharpdro.deploy import export_and_verify

    print(f"exporting {describe_checkpoint(args.ckpt)}", flush=True)
    try:
        info = input_contract(args, cfg)  # the run's data.json: no data is read or built
        net = create_trained_model(cfg.model, len(info["class_names"]), info["channels"], args.ckpt)
        shape = image_shape(info)
        path, diff = export_and_verify(net, shape, path[:-len(SUFFIX[args.format])],
                                       args.format, args.batch_size)
    except (ValueError, DatasetNotFoundError) as err:
        sys.exit(f"error: {err}")
    except MemoryError:
        sys.exit(f"error: not enough memory to check the export on a batch of {args.batch_size} "
                 "(a smaller --batch_size)")
    batch = args.batch_size or "dynamic"
    print(f"exported {path}: input {batch} x {' x '.join(map(str, shape))}, largest logit "
          f"difference after reload {diff:.2e}")
    return path


if __name__ == "__main__":
    with stopped_cleanly("export.py"):  # Ctrl-C while the config is read, too
        main()
