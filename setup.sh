#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with requirements.txt.
# Re-running reuses the environment and installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -c "import mindspore, numpy; print('mindspore', mindspore.__version__, '| numpy', numpy.__version__)"
