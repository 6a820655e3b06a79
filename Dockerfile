# One image for `autograder autograde` and for the Dask workers of its scale-out
# (README, "Containers and Kubernetes"). Build from the repository root:
#
#   docker build -t nb10-autograder .                    # torch from the CPU-only index (small)
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t nb10-autograder:cuda .
#
# Run (the course directory, with submitted/, mounted at /course):
#
#   docker run --rm --privileged -v "$PWD":/course nb10-autograder autograde notebook10 --workers 4
#   docker run --rm --privileged nb10-autograder worker tcp://scheduler:8786
#   docker run --rm nb10-autograder check                # what isolation this container allows
#
# --privileged gives bubblewrap the namespaces it makes (CAP_SYS_ADMIN, no seccomp/AppArmor
# filter on unshare and mount) and a writable cgroupfs for the per-submission cgroups (v2: in the
# container's own cgroup namespace, which the grader splits into a leaf for itself first).
FROM python:3.11-slim-bookworm

# bubblewrap: the sandbox; util-linux: setpriv (drops to the submission's uid); libseccomp2: the
# seccomp filter (pyseccomp); procps: ps for the operator
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap util-linux libseccomp2 procps \
    && rm -rf /var/lib/apt/lists/*

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    MEDMNIST_STANDIN=/opt/nb10-data

# The venv is outside the repository copy: the sandbox shows the venv to submissions, never
# /opt/nb10 (the graders and the reference code stay out of their sight; an editable install
# keeps them there rather than in site-packages).
RUN python -m venv /opt/venv
WORKDIR /opt/nb10
COPY pyproject.toml README.md ./
COPY autograder ./autograder
COPY assignments ./assignments
RUN pip install --extra-index-url "$TORCH_INDEX" -e . \
    && python -m autograder.sandboxed.standin setup --root /opt/nb10-data
COPY nbgrader_config.py ./
COPY source ./source
COPY release ./release
COPY scripts/container-entrypoint.sh /usr/local/bin/nb10-entrypoint

# /course: the instructor's course directory (nbgrader_config.py, source/, submitted/, gradebook.db)
WORKDIR /course
ENTRYPOINT ["/usr/local/bin/nb10-entrypoint"]
CMD ["check"]
