"""export_and_verify and train.py's export at their edges (issue 32): a run folder whose path
MindSpore's file-name rule refuses, and Ctrl-C inside an export."""
import os
import signal

import pytest

import eval as eval_entry
import export as export_entry
import train as train_entry
from helpers import tiny

UNSAFE = "run dir ü+(1)"  # a space, a non-ASCII letter, + and (): all refused by ms.export


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def unsafe_run(tmp_path_factory, cache):
    """A tiny run trained into a folder whose path MindSpore's export refuses."""
    path = str(tmp_path_factory.mktemp("runs") / UNSAFE)
    train_entry.main(tiny(cache, path))
    return path


def small_network(channels=1, size=4, classes=3):
    from mindspore import nn

    return nn.SequentialCell(nn.Flatten(), nn.Dense(channels * size * size, classes))


def left_over(folder):
    """Hidden temporary entries (atomic_path's private folders) left in ``folder``."""
    return [n for n in os.listdir(folder) if n.startswith(".") and n != ".lock"]


# item 9: the folder's name

def test_a_run_in_a_folder_mindspore_refuses_finishes_and_exports(unsafe_run, tmp_path):
    """train.py into 'run dir ü+(1)' ends with done and model.mindir (it used to fail at the
    export, after training); export.py writes MindIR and ONNX there, under a refused file
    name too, and eval.py --mindir reads them."""
    assert os.path.isfile(os.path.join(unsafe_run, "done"))
    assert os.path.isfile(os.path.join(unsafe_run, "model.mindir"))
    assert left_over(unsafe_run) == []
    onnx = export_entry.main(["--run", unsafe_run, "--format", "ONNX"])
    named = export_entry.main(["--run", unsafe_run, "--file", os.path.join(unsafe_run, "my model (2)")])
    assert os.path.isfile(onnx) and os.path.basename(named) == "my model (2).mindir"
    assert left_over(os.path.dirname(onnx)) == [] and left_over(unsafe_run) == []
    table = eval_entry.main(["--run", unsafe_run, "--mindir", named, "--out", str(tmp_path / "t")])
    assert 0 <= table["mean_acc"] <= 1


def test_export_and_verify_into_a_refused_path_leaves_no_link_behind(tmp_path, graph_mode, monkeypatch):
    import tempfile

    from sharpdro.deploy import MINDSPORE_FILE_NAME, export_and_verify

    links = tmp_path / "tmp"
    links.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(links))
    folder = tmp_path / "a b" / "ü+(x)"
    assert not MINDSPORE_FILE_NAME.match(str(folder))
    for fmt, batch in (("MINDIR", None), ("ONNX", 2)):
        path, diff = export_and_verify(small_network(), (1, 4, 4), str(folder / "m (1)"), fmt, batch)
        assert os.path.isfile(path) and diff <= 1e-5
    assert sorted(os.listdir(folder)) == ["m (1).mindir", "m (1).onnx"]
    assert os.listdir(links) == []  # the symbolic link's folder is removed


# item 14: Ctrl-C inside an export

def _interrupt_inside_the_compiler(monkeypatch, times):
    """SIGINT sent to this process from inside MindSpore's graph parser, ``times`` times."""
    from mindspore.graph._parse import parser as ms_parser

    parse, sent = ms_parser.Parser.parse, []

    def parse_with_a_signal(self, *args, **kwargs):
        while len(sent) < times:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGINT)
        return parse(self, *args, **kwargs)

    monkeypatch.setattr(ms_parser.Parser, "parse", parse_with_a_signal)


@pytest.mark.parametrize("times", [1, 2])
def test_ctrl_c_inside_an_export_leaves_nothing_in_the_working_directory(tmp_path, graph_mode,
                                                                        monkeypatch, times, capfd):
    """Ctrl-C in the graph compiler used to be reported by MindSpore as a compile failure
    (its stack on stderr, rank_0/om/analyze_fail.ir in the working directory). Once: held
    to the end of the export step, then a KeyboardInterrupt and no file. Twice: at once,
    and MindSpore's dump goes to the export's own temporary folder, removed with it."""
    from sharpdro.deploy import export_and_verify

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    handler = signal.getsignal(signal.SIGINT)
    _interrupt_inside_the_compiler(monkeypatch, times)
    with pytest.raises(KeyboardInterrupt):
        export_and_verify(small_network(classes=4 + times), (1, 4, 4), str(tmp_path / "out" / "m"), "ONNX", 1)
    assert os.listdir(cwd) == []
    assert os.listdir(tmp_path / "out") == []
    if times == 1:
        assert "analyze_fail" not in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is handler  # restored


def test_an_interrupted_checkpoint_read_is_an_interrupt_not_a_corrupt_file(tmp_path, monkeypatch):
    """MindSpore's checkpoint reader turns a KeyboardInterrupt into ValueError("may not have
    permission"); read_checkpoint gives the interrupt back (it used to say "truncated or
    corrupt?")."""
    import mindspore as ms
    from mindspore.train import serialization

    from sharpdro.checkpoint import read_checkpoint

    path = str(tmp_path / "w.ckpt")
    ms.save_checkpoint(small_network(), path)
    assert len(read_checkpoint(path)) == 2

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization._ckpt_fs, "open", interrupted)  # inside its try: except BaseException
    with pytest.raises(KeyboardInterrupt):
        read_checkpoint(path)


CHILD = """
import os, signal, sys, time
sys.path.insert(0, {root!r})
signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the parent ignores
from sharpdro.runtime import configure_process
configure_process()
import mindspore as ms
import numpy as np
from mindspore import nn
from callbacks.entry import entry_point
from sharpdro import deploy
ms.set_context(mode=ms.GRAPH_MODE)
with entry_point("export.py"):
{body}
"""


def run_child(body, cwd):
    """``body`` (indented 4) run in a fresh Python inside entry_point -> (exit code, stderr
    lines that are not MindSpore's WARNINGs)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", CHILD.format(root=root, body=body)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    return done.returncode, [ln for ln in done.stderr.splitlines() if ln.strip() and "WARNING" not in ln]


def test_ctrl_c_after_mindspore_took_sigint_is_one_line(tmp_path):
    """A graph's first run installs MindSpore's SIGINT handler, which turns Ctrl-C into a
    SIGTERM: eval.py and export.py used to end on the spot (exit -15, nothing said)."""
    code, err = run_child("""
    nn.Dense(3, 2)(ms.Tensor(np.zeros((1, 3), np.float32)))  # MindSpore's handler from here on
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)
    print("not stopped")""", str(tmp_path))
    assert code == 130 and err == ["export.py interrupted; no result was written"]


def test_ctrl_c_during_an_exports_reload_writes_nothing_and_is_one_line(tmp_path):
    """Ctrl-C after the reloaded model's first run (MindSpore's handler installed): held to
    the end of the export step, then one line; no file, no temporary folder (it used to be
    SIGTERM: exit -15 with the private folder left beside the target)."""
    out = tmp_path / "out"
    code, err = run_child(f"""
    load = deploy.load_predictor
    def load_then_interrupt(path, shape):
        predict = load(path, shape)
        def run(x):
            logits = predict(x)
            os.kill(os.getpid(), signal.SIGINT)
            return logits
        return run
    deploy.load_predictor = load_then_interrupt
    net = nn.SequentialCell(nn.Flatten(), nn.Dense(16, 3))
    deploy.export_and_verify(net, (1, 4, 4), {str(out / "m")!r})""", str(tmp_path))
    assert code == 130 and err == ["export.py interrupted; no result was written"]
    assert os.listdir(out) == [] and sorted(os.listdir(tmp_path)) == ["out"]


def test_an_operator_mindspore_cannot_export_is_one_line(tmp_path, graph_mode, monkeypatch):
    """ONNX export of resnet18 raises RuntimeError("Can not find key InplaceAddExt in convert
    map ...") with a C++ stack: export.py used to print a traceback; now one line."""
    import mindspore as ms

    from sharpdro.deploy import export_and_verify

    def unsupported(*args, **kwargs):
        raise RuntimeError("Can not find key InplaceAddExt in convert map. Exporting InplaceAddExt "
                           "operator is not yet supported.\n\n---\n- C++ Call Stack:\n---\nonnx_exporter.cc")

    monkeypatch.setattr(ms, "export", unsupported)
    with pytest.raises(ValueError, match=r"^MindSpore cannot export this network as ONNX: Can not find "
                                         r"key InplaceAddExt .* not yet supported; nothing written$"):
        export_and_verify(small_network(), (1, 4, 4), str(tmp_path / "m"), "ONNX", 1)
    assert os.listdir(tmp_path) == []


def test_no_safe_name_anywhere_is_one_line_naming_the_folder(tmp_path, graph_mode, monkeypatch):
    """A refused folder and a refused TMPDIR: ValueError naming the target's folder (not a
    temporary one of ours) and TMPDIR, nothing left in either."""
    import tempfile

    from sharpdro.deploy import export_and_verify

    links = tmp_path / "t mp"
    links.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(links))
    folder = tmp_path / "a b"
    with pytest.raises(ValueError, match=rf"cannot export into {folder} .*set TMPDIR"):
        export_and_verify(small_network(), (1, 4, 4), str(folder / "m"))
    assert os.listdir(folder) == [] and os.listdir(links) == []


@pytest.mark.parametrize("batch", ["0", "65537", "100000000"])
def test_export_batch_size_out_of_range_is_one_line(unsafe_run, batch, capsys):
    """--batch_size 100000000 used to be a MemoryError traceback (the check's batch)."""
    with pytest.raises(SystemExit) as info:
        export_entry.main(["--run", unsafe_run, "--batch_size", batch])
    assert info.value.code == 2 and "--batch_size must be from 1 to 65536" in capsys.readouterr().err


def test_a_killed_exports_link_folder_is_removed_by_the_next(tmp_path, graph_mode, monkeypatch):
    """kill -9 mid-export leaves the symbolic link's folder in TMPDIR: the next export into
    a refused folder removes it (a live process's is kept)."""
    import subprocess
    import sys
    import tempfile

    from sharpdro.deploy import LINKS, export_and_verify

    links = tmp_path / "tmp"
    links.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(links))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (links / f"{LINKS}{dead}-abc").mkdir()
    (links / f"{LINKS}{dead}-abc" / "folder").symlink_to(tmp_path / "gone")
    (links / f"{LINKS}1-live").mkdir()  # pid 1 is alive
    export_and_verify(small_network(), (1, 4, 4), str(tmp_path / "a b" / "m"))
    assert os.listdir(links) == [f"{LINKS}1-live"]
