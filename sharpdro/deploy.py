"""Export a trained network (MindIR or ONNX), check the file against the network, and
load a MindIR for inference with a clear error when its input does not fit."""
import os

import numpy as np

import mindspore as ms
from mindspore import nn

from .atomic import atomic_path

TOLERANCE = 1e-5
SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx"}


def export_and_verify(network, image_shape, base, file_format="MINDIR", batch_size=None,
                      check_batch=4, tolerance=TOLERANCE):
    """Write ``base`` + .mindir/.onnx for inputs N x C x H x W (``image_shape`` = C, H, W;
    ``batch_size`` None exports a dynamic batch dimension, MindIR only), reload it
    (``mindspore.load`` + ``nn.GraphCell``, or onnxruntime) and compare the logits with the
    network's on a random batch. The file is written under a temporary name and renamed
    only once it has passed, so an unverified file is never left at ``base``.
    Returns (path, largest difference); raises ValueError beyond ``tolerance``."""
    if file_format not in SUFFIX:
        raise ValueError(f"format must be one of {list(SUFFIX)}, got {file_format!r}")
    if file_format == "ONNX" and batch_size is None:
        raise ValueError("MindSpore exports ONNX with a fixed batch size only: give one "
                         "(export.py --batch_size N)")
    network.set_train(False)
    shape = (batch_size or check_batch,) + tuple(image_shape)
    sample = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    spec = (ms.Tensor(sample) if batch_size else
            ms.Tensor(shape=[None] + list(image_shape), dtype=ms.float32))
    os.makedirs(os.path.dirname(os.path.abspath(base)), exist_ok=True)
    path = base + SUFFIX[file_format]
    want = network(ms.Tensor(sample)).asnumpy()
    with atomic_path(path, tag="unverified") as tmp:
        ms.export(network, spec, file_name=tmp[:-len(SUFFIX[file_format])], file_format=file_format)
        got = load_predictor(tmp, image_shape)(sample)
        diff = float(np.abs(got - want).max())
        if not diff <= tolerance:  # NaN fails too
            raise ValueError(f"exported model {path} differs from the network by {diff} > "
                             f"{tolerance}; nothing written")
    return path, diff


def load_predictor(path, image_shape):
    """``predict(images) -> logits`` for an exported .mindir or .onnx file."""
    if path.endswith(SUFFIX["ONNX"]):
        return onnx_predictor(path)
    return mindir_predictor(path, image_shape)


def onnx_predictor(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda images: session.run(None, {name: np.ascontiguousarray(images, np.float32)})[0]


def mindir_input_shape(path):
    """The first input's shape stored in a MindIR file (-1 for a dynamic dimension)."""
    from mindspore.train import mind_ir_pb2

    model = mind_ir_pb2.ModelProto()
    with open(path, "rb") as f:
        model.ParseFromString(f.read())
    return tuple(int(d) for d in model.graph.input[0].tensor[0].dims)


def mindir_predictor(path, image_shape):
    """``predict(images) -> logits`` (NumPy in and out) for the MindIR at ``path``.
    A file exported with a fixed batch size gets batches of exactly that size (the last one
    padded). ValueError if the file is not a MindIR or if its input does not take images of
    ``image_shape`` (C, H, W)."""
    if not os.path.isfile(path):
        raise ValueError(f"MindIR file {path} does not exist")
    try:
        stored = mindir_input_shape(path)
    except Exception as err:  # protobuf raises its own DecodeError
        raise ValueError(f"{path} is not a readable MindIR file: {err}") from None
    fits = len(stored) == len(image_shape) + 1 and all(
        s in (-1, want) for s, want in zip(stored[1:], image_shape))
    if not fits:
        raise ValueError(f"MindIR {path} takes input {stored}, but the data gives images "
                         f"N x {' x '.join(map(str, image_shape))}")
    cell = nn.GraphCell(ms.load(path))
    batch = stored[0]

    def predict(images):
        if batch <= 0 or len(images) == batch:
            return cell(ms.Tensor(images)).asnumpy()
        out = []
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            padded = np.concatenate([chunk, np.zeros((batch - len(chunk),) + chunk.shape[1:],
                                                     chunk.dtype)])
            out.append(cell(ms.Tensor(padded)).asnumpy()[:len(chunk)])
        return np.concatenate(out)

    return predict
