#!/usr/bin/env bash
# The CUDA checks, for real, on a machine with an NVIDIA GPU and a CUDA build of PyTorch.
#
#   bash scripts/gpu_check.sh        # from the repository root; `make test-gpu` in a set-up checkout
#
# On a bare GPU machine with no network (like the device machines this project was checked on),
# put the wheels of what is missing (medmnist, IPython, nbformat and their pure-Python needs) and
# the bubblewrap .deb in .whl/ first: they are installed from there. For an image that already has
# torch, torchvision, numpy, pandas, scikit-learn, pytest and friends (Python 3.12), that was:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     --platform any -d .whl asttokens executing fastjsonschema fire ipython ipython-pygments-lexers jedi \
#     jsonschema jsonschema-specifications jupyter-core matplotlib-inline medmnist==3.0.2 nbformat parso \
#     pexpect platformdirs prompt-toolkit ptyprocess pure-eval referencing rpds-py stack-data termcolor \
#     traitlets wcwidth pyseccomp
#   (cd .whl && apt-get download bubblewrap libcap2 libselinux1 libpcre2-8-0)
# Then it says what the
# machine has, checks that CUDA works inside the same sandbox submissions run in, and runs
# tests/test_gpu.py. The log goes to $OUT/gpu-check.log (OUT defaults to ./test-artifacts).
set -u
OUT=${OUT:-test-artifacts}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
PY=${PYTHON:-python3}

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
grep PRETTY_NAME /etc/os-release; echo "uid $(id -u), $(nproc) cores, LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
ls -d /dev/nvidia*
"$PY" -c "import sys, torch, torchvision; print('python', sys.version.split()[0], 'torch', torch.__version__,
'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())"

if ! "$PY" -c "import medmnist, IPython, nbformat" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    echo "== installing the wheels in .whl/"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl || exit 1
fi
if ! command -v bwrap >/dev/null && ls .whl/*.deb >/dev/null 2>&1; then
    echo "== unpacking bubblewrap from .whl/ into /tmp/bw"
    for deb in .whl/*.deb; do dpkg -x "$deb" /tmp/bw; done
    mkdir -p /tmp/bw/bin
    if ldd /tmp/bw/usr/bin/bwrap | grep -q "not found"; then  # its libraries come along, for bwrap alone
        printf '#!/bin/sh\nexec /lib64/ld-linux-x86-64.so.2 --library-path /tmp/bw/lib/x86_64-linux-gnu /tmp/bw/usr/bin/bwrap "$@"\n' \
            >/tmp/bw/bin/bwrap
        chmod +x /tmp/bw/bin/bwrap
    else
        ln -sf /tmp/bw/usr/bin/bwrap /tmp/bw/bin/bwrap
    fi
    export PATH=/tmp/bw/bin:$PATH
fi
bwrap --version || { echo "bubblewrap is missing: install it (apt-get install bubblewrap)"; exit 1; }

echo "== CUDA inside the submission sandbox"
cat >/tmp/nb10_cuda_in_sandbox.py <<'EOF'
import os, resource, subprocess, sys
from autograder import sandbox
code = "import torch; x = torch.ones(1000, device='cuda'); print('cuda in sandbox:', torch.cuda.get_device_name(0), x.sum().item())"
limits = sandbox.Limits()
def rlimits():
    for name, value in limits.rlimits().items():
        resource.setrlimit(getattr(resource, name), (value, value))
cmd = sandbox._bwrap_command(limits, 61999 if os.geteuid() == 0 else None, []) + [sys.executable, "-I", "-c", code]
proc = subprocess.run(cmd, env=sandbox.sandbox_env(), preexec_fn=rlimits, capture_output=True, text=True, timeout=180)
print(proc.stdout.strip(), proc.stderr.strip()[-1500:], "exit", proc.returncode)
sys.exit(proc.returncode)
EOF
if PYTHONPATH=. "$PY" /tmp/nb10_cuda_in_sandbox.py; then
    echo "CUDA works in the sandbox without /sys"
elif NB10_GPU_SYS=1 PYTHONPATH=. "$PY" /tmp/nb10_cuda_in_sandbox.py; then
    echo "CUDA needs /sys in the sandbox here: NB10_GPU_SYS=1"; export NB10_GPU_SYS=1
else
    echo "CUDA does not work inside the sandbox"
fi

echo "== the solution notebook graded on the GPU, world by world"
cat >/tmp/nb10_solution_on_gpu.py <<'EOF'
import os, time
from pathlib import Path
from autograder import engine
from autograder.sandboxed import standin
from autograder.course import COURSE, NOTEBOOK
from autograder.sandbox import Limits
os.environ.setdefault(standin.ENV, str(COURSE.data_dir))
if not standin.is_current(Path(os.environ[standin.ENV])):
    standin.write(Path(os.environ[standin.ENV]))
started = time.monotonic()
sub = engine.run_submission("source", (COURSE.source() / NOTEBOOK).read_bytes(), seed=3, assignment="notebook10", limits=Limits(cell_seconds=60))
raw = sub.raw
print(f"{time.monotonic() - started:.1f} s; exit {raw.returncode}; killed {raw.killed}; notes {raw.notes}")
print("stderr:", raw.stderr.decode(errors="replace")[-3000:])
for name, world in sub.worlds.items():
    print(f"{name}: mode {world.mode}, cuda {world.cuda}, GPU warm-up {world.gpu_warm_up_seconds} s, done {world.done}, "
          f"problem {world.problem}")
    for index, cell in sorted(world.cells.items()):
        error = cell.get("error") or {}
        print(f"  cell {index}: {cell['status']} {cell['seconds']} s {error.get('type', '')} {str(error.get('message', ''))[:300]}")
    print("  device probe:", world.probes.get("device"))
EOF
PYTHONPATH=. PYTHONUNBUFFERED=1 timeout 150 "$PY" /tmp/nb10_solution_on_gpu.py

echo "== tests/test_gpu.py"
PYTHONUNBUFFERED=1 timeout "${GPU_TEST_SECONDS:-420}" "$PY" -m pytest tests/test_gpu.py -v -rA --tb=short \
    -p no:cacheprovider --durations=0 ${PYTEST_ARGS:-}
echo "pytest exit $?"
