"""Export a trained network (MindIR or ONNX), check the file against the network, and
load a MindIR for inference with a clear error when its input does not fit."""
import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading

import numpy as np

import mindspore as ms
from mindspore import nn

from .atomic import atomic_path

TOLERANCE = 1e-5
SUFFIX = {"MINDIR": ".mindir", "ONNX": ".onnx"}
# the file names mindspore.export accepts (mindspore._checkparam.check_file_name_by_regular):
# a path with a space, a non-ASCII letter, + or () is refused
MINDSPORE_FILE_NAME = re.compile(r"^[0-9a-zA-Z@_\-.:/\\]+$")


LINKS = "sharpdro-export-"  # + <pid>-<random>: the temporary folder of one link


def remove_dead_links():
    """The link folders of processes that died mid-export (kill -9), from the temporary
    folder."""
    from .atomic import _alive

    root = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            match = re.match(rf"^{LINKS}(\d+)-", name)
            if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)


@contextlib.contextmanager
def mindspore_safe_folder(folder, shown=None):
    """A path to ``folder`` that MindSpore's file-name rule (MINDSPORE_FILE_NAME) accepts:
    ``folder`` itself where it does, else a symbolic link to it in a fresh temporary folder
    (removed afterwards). mindspore.export resolves the link (os.path.realpath) after its
    check, so what it writes lands in ``folder``. ``shown``: the folder errors name."""
    folder = os.path.abspath(folder)
    if MINDSPORE_FILE_NAME.match(folder):
        yield folder
        return
    remove_dead_links()
    links = tempfile.mkdtemp(prefix=f"{LINKS}{os.getpid()}-")
    try:
        link = os.path.join(links, "folder")
        if not MINDSPORE_FILE_NAME.match(link):
            raise ValueError(f"MindSpore cannot export into {shown or folder} (its file names "
                             f"may hold only letters, digits and @ _ - . : /), nor through the "
                             f"temporary folder {links}: set TMPDIR to a folder whose path does")
        os.symlink(folder, link, target_is_directory=True)
        yield link
    finally:
        shutil.rmtree(links, ignore_errors=True)


@contextlib.contextmanager
def graph_dumps_in(folder):
    """MindSpore's compile-failure dump (rank_0/om/analyze_fail.ir, written to the working
    directory by default) goes under ``folder`` for the block (MS_OM_PATH, read at each
    failure)."""
    before = os.environ.get("MS_OM_PATH")
    os.environ["MS_OM_PATH"] = folder
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MS_OM_PATH", None)
        else:
            os.environ["MS_OM_PATH"] = before


@contextlib.contextmanager
def signals_held(signums=(signal.SIGINT, signal.SIGTERM)):
    """Ctrl-C and SIGTERM held back for the block and acted on at its end, as the handler
    before it would have (a Python handler is called: KeyboardInterrupt, train.py's
    Interrupt; the default action of SIGTERM becomes a KeyboardInterrupt, a clean stop).
    Two reasons: an interrupt raised inside MindSpore's graph compiler is reported as a
    compile failure (its stack printed, rank_0/om/analyze_fail.ir written); and the first
    run of a graph installs MindSpore's own SIGINT handler, which turns Ctrl-C into a
    SIGTERM that ends the process on the spot (no message, temporary files left). Held
    here, that SIGTERM is one more signal; the previous handlers are restored at the end
    (MindSpore's SIGINT handler with them). A second signal is acted on at once. Outside
    the main thread, where handlers cannot be set, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in signums}
    previous = {s: h for s, h in previous.items() if h is not None}  # None: set outside Python
    held = []

    def act(signum, frame):
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            raise KeyboardInterrupt(f"signal {signum}")

    def hold(signum, frame):
        held.append(signum)
        if len(held) > 1:
            act(signum, frame)

    for s in previous:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if held:
        act(held[0], None)


def export_and_verify(network, image_shape, base, file_format="MINDIR", batch_size=None,
                      check_batch=4, tolerance=TOLERANCE):
    """Write ``base`` + .mindir/.onnx for inputs N x C x H x W (``image_shape`` = C, H, W;
    ``batch_size`` None exports a dynamic batch dimension, MindIR only), reload it
    (``mindspore.load`` + ``nn.GraphCell``, or onnxruntime) and compare the logits with the
    network's on a random batch. The file is written under a temporary name and renamed
    only once it has passed, so an unverified file is never left at ``base``; the name
    given to MindSpore is a safe one (mindspore_safe_folder), so any ``base`` works.
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
    with atomic_path(path, tag="unverified") as tmp:
        private = os.path.dirname(tmp)  # atomic_path's own folder: only this export writes in it
        shown = os.path.dirname(os.path.abspath(path))
        with signals_held(), graph_dumps_in(os.path.join(private, "graphs")):
            want = network(ms.Tensor(sample)).asnumpy()
            with mindspore_safe_folder(private, shown) as safe:
                try:
                    ms.export(network, spec, file_name=os.path.join(safe, "export"),
                              file_format=file_format)
                except RuntimeError as err:  # an operator it cannot convert, say
                    reason = (str(err).strip().splitlines() or [repr(err)])[0].rstrip(".")
                    raise ValueError(f"MindSpore cannot export this network as {file_format}: "
                                     f"{reason}; nothing written") from None
            os.replace(os.path.join(private, "export" + SUFFIX[file_format]), tmp)
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
