#!/usr/bin/env bash
# Set up a fresh machine: a virtual environment in .venv with requirements.txt, and
# Fashion-MNIST (the quickstart's data) from Debian's dataset-fashion-mnist package where
# apt is available. Re-running reuses the environment and installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
FASHION=/usr/share/datasets/fashion-mnist
if [ ! -f "$FASHION/train-images-idx3-ubyte.gz" ] && command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
    echo "installing dataset-fashion-mnist (apt) ..."
    if ! { $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
           || { $SUDO apt-get update -q >/dev/null 2>&1 \
                && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }; }; then
        echo "warning: could not install dataset-fashion-mnist; put the four Fashion-MNIST idx" \
             "files in ./data (see README) to run the quickstart" >&2
    fi
fi
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install --quiet -r requirements.txt
# the published corruption code and its frost photographs (see requirements.txt)
.venv/bin/python -m pip install --quiet --no-deps imagecorruptions==1.1.2
.venv/bin/python -c "import mindspore, numpy; print('mindspore', mindspore.__version__, '| numpy', numpy.__version__)"
