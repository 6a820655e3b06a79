#!/usr/bin/env bash
# Red team 2 on a GPU device machine: the forging cases and the correct notebook, both doors.
# Needs .whl/ (the wheels and bubblewrap .deb of scripts/gpu_check.sh) and .whl/medmnist/ (the stand-in).
set -u
OUT=${OUT:-test-artifacts}; mkdir -p "$OUT"
exec > >(tee "$OUT/redteam2-gpu.log") 2>&1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; echo "uid $(id -u), $(nproc) cores"
python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if ! python3 -c "import medmnist, IPython, nbformat" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl 2>&1 | tail -2 \
        || python3 -m pip install -q --break-system-packages --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl 2>&1 | tail -2
fi
if ! command -v bwrap >/dev/null; then
    for deb in .whl/*.deb; do dpkg -x "$deb" /tmp/bw; done
    mkdir -p /tmp/bw/bin
    if ldd /tmp/bw/usr/bin/bwrap | grep -q "not found"; then
        printf '#!/bin/sh\nexec /lib64/ld-linux-x86-64.so.2 --library-path /tmp/bw/lib/x86_64-linux-gnu /tmp/bw/usr/bin/bwrap "$@"\n' >/tmp/bw/bin/bwrap
        chmod +x /tmp/bw/bin/bwrap
    else
        ln -sf /tmp/bw/usr/bin/bwrap /tmp/bw/bin/bwrap
    fi
    export PATH=/tmp/bw/bin:$PATH
fi
bwrap --version
export PYTHONPATH=$PWD MEDMNIST_STANDIN=$PWD/.whl/medmnist
H=tests/submissions/hostile
CASES="$H/hostile_stride_tricks_steal_hmac_key_forge_whole_stream_score_blank_release.ipynb
$H/hostile_gc_callback_runs_on_grader_thread_sends_forged_frames_score_blank_release.ipynb
$H/hostile_exact_tensor_python_dispatch_runs_on_grader_thread_score_blank_release.ipynb
tests/submissions/correct/correct_solution_as_released_success_score_full.ipynb
tests/submissions/bugs/bug_blank_release_as_received_score_zero.ipynb"
for door in ${DOORS:-cold warm}; do
    timeout ${STEP:-200} python3 scripts/redteam2_measure.py $door $CASES --json "$OUT/gpu_$door.json" 2>&1 | grep -v "^   FAIL"
done
