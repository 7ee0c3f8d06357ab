import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)  # entry points and configs are addressed from the repository root
sys.path.insert(0, ROOT)

import sharpdro  # noqa: E402,F401  (process settings before mindspore loads)
import mindspore as ms  # noqa: E402
import pytest  # noqa: E402

MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}


@pytest.fixture(params=["graph", "pynative"])
def mode(request):
    """Run the test in graph and in PyNative mode."""
    ms.set_context(mode=MODES[request.param])
    yield request.param
    ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)
    yield "graph"
