#!/usr/bin/env bash
# The container's entrypoint (Dockerfile). One image, three jobs:
#
#   check                        what isolation this container allows (sandbox, cgroups), exit 0 or 3
#   autograde ASSIGNMENT [ARGS]  `autograder autograde` in the course directory mounted at the working folder
#   worker SCHEDULER [ARGS]      a Dask worker for `autograder autograde --scheduler SCHEDULER`
#   anything else                run as given (`autograder grade ...`, `bash`, ...)
#
# Before autograde and worker it checks that the sandbox starts here: bubblewrap needs user
# namespaces or root with CAP_SYS_ADMIN (docker run --privileged, or --cap-add SYS_ADMIN with the
# default seccomp and AppArmor profiles relaxed). Where it does not, it stops with exit status 3
# and the sandbox's own message, unless NB10_UNSAFE_NO_SANDBOX=1, which grades WITHOUT isolation
# (autograde passes --unsafe-no-sandbox; each result carries the warning). A worker never grades
# without the sandbox unless the client asked for it (autograde --unsafe-no-sandbox).
set -euo pipefail

PYTHON=${NB10_PYTHON:-python}

preflight() {  # prints the isolation; returns 3 where the sandbox cannot start
    "$PYTHON" - <<'EOF'
import sys
from autograder import cgroups, sandbox
try:
    print("sandbox:", sandbox.check_available())
except sandbox.SandboxUnavailable as exc:
    print("sandbox: NOT AVAILABLE:", exc, file=sys.stderr)
    print(cgroups.describe())
    sys.exit(3)
print(cgroups.describe())
EOF
}

unsafe() { [ "${NB10_UNSAFE_NO_SANDBOX:-0}" = 1 ]; }

job=${1:-check}
[ $# -gt 0 ] && shift
case "$job" in
    check)
        preflight
        ;;
    autograde)
        if ! preflight; then
            unsafe || { echo "entrypoint: no sandbox here; see docs (docker run --privileged), or set NB10_UNSAFE_NO_SANDBOX=1 on a machine you trust with every submission" >&2; exit 3; }
            set -- "$@" --unsafe-no-sandbox
        fi
        exec autograder autograde "$@"
        ;;
    worker)
        if [ $# -lt 1 ]; then
            echo "entrypoint: worker needs the scheduler's address, e.g. worker tcp://scheduler:8786" >&2
            exit 2
        fi
        if ! preflight; then
            unsafe || { echo "entrypoint: no sandbox here, so this worker would refuse every submission; see docs (docker run --privileged)" >&2; exit 3; }
        fi
        # one thread per worker process: each process keeps one warm zygote and grades one submission at a time
        exec dask worker "$@" --nthreads 1 --nworkers "${NB10_WORKERS:-1}" --no-dashboard
        ;;
    *)
        exec "$job" "$@"
        ;;
esac
