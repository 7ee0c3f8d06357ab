"""Rerun the commands whose output the README (and docs/) quote, and write their output in.

    .venv/bin/python benchmarks/readme_outputs.py [--only NAME ...] [--check]

In README.md and docs/*.md, an output block is marked by a comment on the line before it:

    <!-- output: NAME -->
    ```
    ...
    ```

and NAME is one of OUTPUTS below: the commands the README shows just above the block,
and which lines of their output it quotes. The script runs them from the repository root
(with this interpreter) and replaces each marked block; ``--check`` only reports the blocks
that differ (exit 1 if any). Times and seconds differ from machine to machine; the rest
(accuracies, counts, file names) must come out the same on the same software.
"""
import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")


def documents():
    """The files that may quote outputs: README.md and docs/*.md."""
    docs = os.path.join(ROOT, "docs")
    return [README] + sorted(os.path.join(docs, n) for n in os.listdir(docs) if n.endswith(".md"))
MARK = re.compile(r"^<!-- output: (\w+) -->\n```\n(.*?)```\n", re.S | re.M)


def run(*args):
    """stdout of ``python args...`` in the repository root; stops on failure."""
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def between(text, first, last):
    """The lines from the first that starts with ``first`` to the first after it that
    starts with ``last`` (both kept)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(last))
    return lines[start:end + 1]


def quickstart():
    # README: train.py --config configs/quickstart.yaml (--overwrite: replace an earlier run)
    text = run("train.py", "--config", "configs/quickstart.yaml", "--overwrite")
    lines = [line for line in text.splitlines() if not line.startswith("warning")]
    progress = [i for i, line in enumerate(lines) if line.startswith("epoch ")]
    if len(progress) > 2:  # the first and the last progress line
        lines = lines[:progress[0] + 1] + ["..."] + lines[progress[-1]:]
    return lines


def benchmark():
    # README: the CIFAR-10-C layout from 2000 Fashion-MNIST test images, then eval.py on it
    folder = "/tmp/fmnist-c"
    run("-m", "datasets.benchmark", "--config", "runs/quickstart/config.yaml", "--out", folder,
        "--num", "2000")
    text = run("eval.py", "--run", "runs/quickstart", "--benchmark", folder)
    return between(text, "corruption ", "mean accuracy")


def tune_lines(text):
    """tune.py's output with the per-run progress lines of each rung cut to the first and
    the last (warnings left out: they go to stderr and the candidates' logs)."""
    lines = [line for line in text.splitlines() if line and not line.startswith("warning")]
    out, run = [], []
    for line in lines + [""]:
        if line.startswith("["):
            run.append(line)
            continue
        out += run if len(run) <= 2 else [run[0], "...", run[-1]]
        run = []
        out.append(line)
    return out[:-1]


def tune():
    # README: tune.py on the worked example (data/fmnist_own from datasets.write_example);
    # trains 35 runs, 12-14 minutes on 2 CPU cores
    import shutil

    shutil.rmtree(os.path.join(ROOT, "runs", "own_csv_given-tune"), ignore_errors=True)
    return tune_lines(run("tune.py", "--config", "configs/own_csv_given.yaml"))


OUTPUTS = {"quickstart": quickstart, "benchmark": benchmark, "tune": tune}  # in this order


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(OUTPUTS))
    parser.add_argument("--check", action="store_true", help="report differences, write nothing")
    args = parser.parse_args(argv)
    texts = {}
    for path in documents():
        with open(path) as f:
            texts[path] = f.read()
    marked = [m.group(1) for text in texts.values() for m in MARK.finditer(text)]
    unknown = [name for name in marked if name not in OUTPUTS]
    if unknown:
        sys.exit(f"the documents mark outputs this script does not know: {unknown}")
    fresh, differ = {}, []
    for name in args.only or [n for n in OUTPUTS if n in marked]:
        print(f"running {name} ...", flush=True)
        fresh[name] = "\n".join(OUTPUTS[name]()) + "\n"

    def replace(match):
        name, old = match.group(1), match.group(2)
        if name not in fresh or fresh[name] == old:
            return match.group(0)
        differ.append(name)
        return f"<!-- output: {name} -->\n```\n{fresh[name]}```\n"

    updated = {path: MARK.sub(replace, text) for path, text in texts.items()}
    print(f"differ from the documents: {', '.join(differ) or 'none'}")
    if args.check:
        return 1 if differ else 0
    from sharpdro.atomic import atomic_path

    for path, text in updated.items():
        if text != texts[path]:
            with atomic_path(path) as tmp, open(tmp, "w") as f:
                f.write(text)
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
