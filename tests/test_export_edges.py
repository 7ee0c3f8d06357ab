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
