"""The container: its build file, and its entrypoint run directly (this machine has no container
engine that can build: no daemon, and no registry for a base image). The entrypoint's three jobs
run for real: `check`, `autograde` on a class (sandboxed, and without bubblewrap: refused unless
asked), and a Dask `worker` that grades in the same sandbox as a local run."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import assignment, sandbox, scaleout
from autograder.evidence import parse
from tests.conftest import make_class

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = REPO / "scripts" / "container-entrypoint.sh"
VENV_BIN = Path(sys.executable).parent
BASH = shutil.which("bash")
CORRECT = "correct/correct_solution_as_released_success_score_full.ipynb"


def entrypoint(*args, path=None, cwd=None, extra_env=None, **kwargs):
    env = dict(assignment.tool_env(), PATH=path or f"{VENV_BIN}:{os.environ['PATH']}", **(extra_env or {}))
    env.pop(sandbox.cgroups.ENV, None)
    return subprocess.run([BASH, str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          **kwargs)


def test_the_dockerfile_copies_files_that_exist_and_runs_the_entrypoint():
    text = (REPO / "Dockerfile").read_text()
    copies = re.findall(r"^COPY (.+) (\S+)$", text, re.M)
    assert copies, "no COPY line"
    for sources, _ in copies:
        for source in sources.split():
            assert (REPO / source).exists(), source
    dest = dict((src, dst) for src, dst in copies)["scripts/container-entrypoint.sh"]
    assert f'ENTRYPOINT ["{dest}"]' in text
    assert os.access(ENTRYPOINT, os.X_OK)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "submitted" in ignored and "gradebook.db" in ignored


def test_check_says_which_sandbox_and_which_cgroups_this_machine_allows():
    run = entrypoint("check", timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("sandbox: ") and "bubblewrap" in run.stdout
    assert re.search(r"^cgroup: (v1|v2|hybrid|none) hierarchy; ", run.stdout, re.M), run.stdout


def test_a_worker_without_a_scheduler_address_says_what_to_give():
    run = entrypoint("worker", timeout=60)
    assert run.returncode == 2 and "tcp://scheduler:8786" in run.stderr


@pytest.mark.slow
def test_autograde_through_the_entrypoint_grades_a_class_in_the_sandbox(tmp_path):
    course = make_class(tmp_path, {"alice": CORRECT})
    run = entrypoint("autograde", "notebook10", "--workers", "1", cwd=course.root, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert sum(assignment.gradebook_scores(course)["alice"].values()) == 10
    results = json.loads(next(course.root.glob("autograded/alice/notebook10/*.results.json")).read_text())
    notes = " ".join(results["extra_data"]["notes"])
    assert "cgroups (" in notes or "cgroup limits: not available here" in notes
    assert "WITHOUT the sandbox" not in notes


@pytest.mark.slow
def test_without_bubblewrap_autograde_refuses_unless_unsafe_grading_is_asked_for(tmp_path):
    """PATH without /usr/bin: bubblewrap is not found, as in a container image built without it."""
    course = make_class(tmp_path, {"alice": CORRECT})
    refused = entrypoint("autograde", "notebook10", path=str(VENV_BIN), cwd=course.root, timeout=120)
    assert refused.returncode == 3
    assert "apt-get install bubblewrap" in refused.stderr and "NB10_UNSAFE_NO_SANDBOX=1" in refused.stderr
    assert not list(course.root.glob("autograded/*"))
    unsafe = entrypoint("autograde", "notebook10", "--workers", "1", path=str(VENV_BIN), cwd=course.root,
                        extra_env={"NB10_UNSAFE_NO_SANDBOX": "1"}, timeout=600)
    assert unsafe.returncode == 0, unsafe.stdout[-2000:] + unsafe.stderr[-2000:]
    results = json.loads(next(course.root.glob("autograded/alice/notebook10/*.results.json")).read_text())
    assert any("WITHOUT the sandbox" in n for n in results["extra_data"]["notes"])


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.slow
def test_a_dask_worker_started_by_the_entrypoint_grades_with_the_same_isolation_as_a_local_run(tmp_path):
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    env = dict(assignment.tool_env(), PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    scheduler = subprocess.Popen([str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen([BASH, str(ENTRYPOINT), "worker", address], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=env, start_new_session=True, cwd=REPO)
        plan = {"cells": [{"kind": "code", "source": "import os\nprint('uid', os.getuid(), 'pid', os.getpid())",
                           "grade_id": None, "nb_index": 0}],
                "worlds": ["real"], "cell_seconds": 20, "seed": 1}
        limits = sandbox.Limits(cell_seconds=20, submission_seconds=120)
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=120)
            remote = client.submit(scaleout.sandbox_run_on_worker, plan, limits, False, pure=False).result(timeout=300)
        local = sandbox.run(plan, limits)
        text = parse(remote.streams["real"], remote.key, "real").cells[0]["output"]
        uid, pid = text.split()[1], text.split()[3]
        assert int(uid) >= sandbox.UID_BASE and pid == "2", text  # its own uid, its own PID namespace
        assert "sandbox: warm (forked from a zygote)" in remote.notes  # as a local `autograder autograde` as root
        cgroup_note = [n for n in local.notes if n.startswith("cgroup")]
        assert cgroup_note and cgroup_note == [n for n in remote.notes if n.startswith("cgroup")]
    finally:
        if worker is not None:
            stop(worker)
        stop(scheduler)


def test_the_kubernetes_worker_spec_parses_and_runs_the_entrypoints_worker_privileged():
    """Checked with a YAML parser only: no Kubernetes cluster is reachable from here."""
    import yaml

    docs = list(yaml.safe_load_all((REPO / "deploy" / "dask-workers.yaml").read_text()))
    assert [d["kind"] for d in docs] == ["Service", "Deployment", "Deployment"]
    service, scheduler, workers = docs
    port = service["spec"]["ports"][0]["port"]
    worker = workers["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"] == ["worker", f"tcp://{service['metadata']['name']}:{port}"]
    assert worker["securityContext"]["privileged"] is True
    assert workers["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert scheduler["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["dask", "scheduler"]
