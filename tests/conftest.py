import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)  # entry points and configs are addressed from the repository root
sys.path.insert(0, ROOT)

from sharpdro.runtime import configure_process  # noqa: E402
configure_process()  # before MindSpore loads (sharpdro/runtime.py)
import mindspore as ms  # noqa: E402
import datasets  # noqa: E402,F401  (the readers' options join the config schema)
import pytest  # noqa: E402

MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}


@pytest.fixture(params=["graph", "pynative"])
def mode(request):
    """Run the test in graph and in PyNative mode."""
    ms.set_context(mode=MODES[request.param])
    yield request.param
    ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A data cache folder shared by one test module's runs (a module may define its own)."""
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)
    yield "graph"


# Tests that start msrun (two MindSpore processes) take minutes: marked slow, so that
# `pytest -m "not slow"` is the quick loop while working (the full suite runs in CI).
MSRUN_FIXTURES = {"ranks", "msrun_run"}


def pytest_collection_modifyitems(items):
    for item in items:
        if MSRUN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
