"""The entry points wire, never compute (docs/layout.md): no function in them is longer than
40 lines, counted from its ``def`` to the last line of its body. Read with ``ast``: nothing
is imported or run."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = ("train.py", "eval.py", "export.py", "tune.py")
MAX_LINES = 40


def long_functions(path, limit=MAX_LINES):
    """[(name, first line, lines)] of the functions in ``path`` longer than ``limit`` lines."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return [(node.name, node.lineno, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_no_function_of_an_entry_point_is_longer_than_40_lines(name):
    found = long_functions(os.path.join(ROOT, name))
    assert found == [], f"{name}: " + ", ".join(
        f"{fn} (line {line}) is {n} lines" for fn, line, n in found)


def test_the_count_runs_from_def_to_the_last_line_of_the_body(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES - 1))
    path = tmp_path / "f.py"
    path.write_text(f"def fits():\n{body}\n\n\ndef too_long():\n{body}\n    return x0\n")
    assert long_functions(str(path)) == [("too_long", MAX_LINES + 3, MAX_LINES + 1)]


def test_train_py_is_a_short_straight_line():
    with open(os.path.join(ROOT, "train.py")) as f:
        assert len(f.read().splitlines()) <= 120


APPLICATION = {"datasets", "callbacks", "train", "eval", "export", "benchmarks", "examples"}


def imported_roots(path):
    """The top-level names of every absolute import in ``path`` (read with ast)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package,forbidden", [
    ("sharpdro", APPLICATION),  # the pip library: nothing of the application
    ("datasets", APPLICATION - {"datasets"}),  # the data layer knows nothing about training
])
def test_the_layers_import_only_downwards(package, forbidden):
    bad = []
    for folder, _, files in os.walk(os.path.join(ROOT, package)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                bad += [f"{os.path.relpath(path, ROOT)} imports {root}"
                        for root in sorted(imported_roots(path) & forbidden)]
    assert bad == []
