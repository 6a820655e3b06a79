#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (base: Ubuntu 22.04),
# with this zip unpacked in /autograder/source. It installs:
#   - Python 3.11 and a virtual environment in /autograder/venv with the pinned dependencies
#     (requirements*.txt, written from pyproject.toml by `autograder gradescope`), torch and
#     torchvision as CPU-only wheels (no CUDA libraries: a smaller image, and Gradescope has no GPU);
#     this package itself is NOT installed into the venv: the venv must stay readable to the
#     student's uid, the graders must not be;
#   - bubblewrap (the sandbox) and setpriv (util-linux), for the isolation run_autograder picks;
#   - the offline PneumoniaMNIST stand-in in /autograder/data/medmnist (readable to the student).
# With NB10_PYTHON set (an existing interpreter with the dependencies: the local emulation in
# tests/test_gradescope.py), nothing is installed and only the last two steps run.
set -euo pipefail

SOURCE=/autograder/source
VENV=/autograder/venv
DATA=/autograder/data/medmnist

if [ -z "${NB10_PYTHON:-}" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv bubblewrap util-linux libseccomp2 \
        ca-certificates
    python3.11 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --no-cache-dir --upgrade pip
    # CPU-only torch first (PyTorch's own index), then the rest from PyPI: pip keeps the +cpu build,
    # which satisfies the same pins.
    "$VENV/bin/python" -m pip install --quiet --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        -r "$SOURCE/requirements-torch.txt"
    "$VENV/bin/python" -m pip install --quiet --no-cache-dir -r "$SOURCE/requirements.txt"
    PY="$VENV/bin/python"
else
    PY="$NB10_PYTHON"
fi

# The data stand-in, outside the source folder (which run_autograder makes unreadable to the student).
(cd "$SOURCE" && PYTHONPATH="$SOURCE" "$PY" -m autograder.sandboxed.standin setup --root "$DATA" --quiet)
chmod -R a+rX /autograder/data
# Graders, reference code and course files: behind a folder only root may enter (run_autograder does
# it again before each run; the files keep their modes, the sandbox copies its own modules from there).
chmod 700 "$SOURCE"
chmod 711 /autograder
