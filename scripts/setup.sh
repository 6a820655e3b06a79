#!/usr/bin/env bash
# Sets up what `make demo` needs, and with --test what `make test` needs too; does nothing that
# is already done:
#   - the virtual environment .venv with this package and its dependencies (pyproject.toml);
#   - the offline stand-in for PneumoniaMNIST in .data/medmnist, and the hook that lets
#     medmnist find it (see autograder/sandboxed/standin.py);
#   - bubblewrap, the sandbox the graders run submissions in (the demo grades with it);
#   - with --test only: PostgreSQL, for the gradebook test, and Chromium, for the feedback-page
#     and report tests (the demo needs neither).
# System packages are Debian's, installed when run as root or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
FOR_TESTS=0
[ "${1:-}" = "--test" ] && FOR_TESTS=1
VENV=.venv
STAMP="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -e "$STAMP" ]; then
    echo "setup: installing dependencies into $VENV (first run: a few minutes, about 6 GB)"
    # (this machine's pip configuration warns about every missing local index folder: hide that)
    # (and setuptools warns on every editable install that a folder named like the package may shadow
    # it: this repository is that folder, on purpose; hide that one warning too)
    pip_install() { PYTHONWARNINGS="ignore:Editable installation" "$VENV/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; }
    pip_install --upgrade pip
    pip_install -e '.[test]'
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
fi

"$VENV/bin/python" -m autograder.sandboxed.standin setup --quiet

# System packages: bubblewrap (the sandbox) always; for the tests also PostgreSQL (the gradebook
# test) and Chromium (the feedback pages and the report are checked in a real headless browser).
need=""
command -v bwrap >/dev/null 2>&1 || need="$need bubblewrap"
if [ "$FOR_TESTS" = 1 ]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
    command -v chromium >/dev/null 2>&1 || need="$need chromium"
fi
if [ -n "$need" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing$need"
        apt-get install -y -qq $need >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq $need >/dev/null; }
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo apt-get install -y -qq $need >/dev/null
    else
        echo "setup: missing system packages:$need, and this user cannot install them." >&2
        echo "       Ask an administrator to run: apt-get install$need" >&2
    fi
fi
