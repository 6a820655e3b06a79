"""Per-submission cgroups on this machine's real hierarchies: detection, the v2 rules (a leaf for
the grading process, controllers enabled top-down, one group per submission, cgroup.kill, events,
removal) and real sandboxed grading through the v1 and v2 paths, cold and warm."""

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import cgroups, sandbox
from autograder.evidence import parse
from autograder.sandbox import Limits

FAST = Limits(cell_seconds=8, submission_seconds=40)
HIERARCHY = cgroups.detect()
UNIFIED = HIERARCHY.unified
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="making cgroups needs root")
NEEDS_V2 = pytest.mark.skipif(UNIFIED is None or not os.access(UNIFIED, os.W_OK),
                              reason="this machine mounts no writable cgroup v2 hierarchy")


def stat_type(path) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True).stdout.strip()


@pytest.fixture
def cgroup_mode(monkeypatch):
    """Set NB10_CGROUP for this test; the once-per-process choice is made again, before and after."""
    def choose(mode: str) -> None:
        monkeypatch.setenv(cgroups.ENV, mode)
        cgroups._setup.cache_clear()
    yield choose
    monkeypatch.delenv(cgroups.ENV, raising=False)
    cgroups._setup.cache_clear()


@pytest.fixture
def test_group():
    """A fresh non-root group on the real v2 hierarchy, standing for a delegated systemd scope or a
    container's cgroup namespace; removed with everything below it."""
    group = UNIFIED / f"nb10-test-{secrets.token_hex(4)}"
    group.mkdir()
    yield group
    for folder in sorted(group.rglob("*"), key=lambda p: len(p.parts), reverse=True) + [group]:
        if folder.is_dir():
            cgroups._kill_listed(folder)
            cgroups._rmdir(folder, lambda: cgroups._kill_listed(folder))


def test_the_hierarchy_is_detected_from_the_file_system_types():
    kind = stat_type(cgroups.ROOT)
    if kind == "cgroup2fs":
        assert HIERARCHY.kind == "v2" and HIERARCHY.unified == cgroups.ROOT
    elif stat_type(cgroups.ROOT / "unified") == "cgroup2fs":
        assert HIERARCHY.kind == "hybrid" and HIERARCHY.unified == cgroups.ROOT / "unified"
    else:
        assert HIERARCHY.kind in ("v1", "none") and HIERARCHY.unified is None
    if HIERARCHY.kind == "hybrid":
        v1 = {name for name in ("memory", "pids", "cpu") if stat_type(cgroups.ROOT / name) == "cgroupfs"}
        assert set(HIERARCHY.v1) == v1
        # controllers bound to v1 are not offered by the unified hierarchy: the limits go through v1
        if v1 >= {"memory", "pids"}:
            assert HIERARCHY.choose() == "v1"


def test_the_choice_can_be_forced(cgroup_mode):
    cgroup_mode("off")
    assert HIERARCHY.choose() == "none"
    cgroup_mode("v2")
    assert HIERARCHY.choose() == ("v2" if UNIFIED else "none")


@ROOT_ONLY
@NEEDS_V2
def test_a_v2_group_is_made_joined_killed_through_cgroup_kill_and_removed(test_group):
    parent = cgroups.V2Parent(test_group, (), ("memory", "pids", "cpu"), False)
    group = cgroups.V2Group("nb10-sub", 1 << 30, 64, 1.0, parent)
    proc = subprocess.Popen(["sleep", "300"], preexec_fn=group.join)
    try:
        assert (group.folder / "cgroup.procs").read_text().split() == [str(proc.pid)]
        assert group.populated()
        assert f"0::/{group.folder.relative_to(UNIFIED)}" in Path(f"/proc/{proc.pid}/cgroup").read_text()
        group.kill_all()
        assert proc.wait(5) == -9  # SIGKILL, from cgroup.kill
        deadline = time.monotonic() + 5
        while group.populated() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not group.populated()  # cgroup.events says so
    finally:
        proc.kill()
        proc.wait()
    group.remove()
    assert not group.folder.exists()


LEAF_SCRIPT = """
import json, os, sys
from pathlib import Path
from autograder import cgroups
group, mount = Path(sys.argv[1]), Path(sys.argv[2])
(group / "cgroup.procs").write_text(str(os.getpid()))  # started in the delegated group itself
ready = cgroups.prepare_v2(mount, wanted=(sys.argv[3],), under_systemd=False)
sub = cgroups.V2Group("nb10-sub", 1 << 30, 64, 1.0, ready)
print(json.dumps({"moved": ready.moved, "parent": str(ready.path), "enabled": list(ready.controllers),
                  "own": Path("/proc/self/cgroup").read_text(), "files": sorted(os.listdir(sub.folder)),
                  "subtree": (group / "cgroup.subtree_control").read_text().split()}))
sub.remove()
"""


@pytest.fixture
def v2_controller():
    """A controller the v2 root offers, enabled for its children while the test runs."""
    offered = cgroups.controllers(UNIFIED)
    controller = next((c for c in ("memory", "pids", "cpu", "hugetlb", "io") if c in offered), None)
    if controller is None:
        pytest.skip(f"the v2 hierarchy offers no controller at all here ({offered})")
    control = UNIFIED / "cgroup.subtree_control"
    enabled_here = controller not in control.read_text().split()
    if enabled_here:
        control.write_text("+" + controller)
    yield controller
    if enabled_here:
        try:
            control.write_text("-" + controller)
        except OSError:  # another group below the root uses it by now
            pass


@ROOT_ONLY
@NEEDS_V2
def test_a_grading_process_in_a_delegated_group_moves_to_a_leaf_before_enabling_controllers(v2_controller,
                                                                                            test_group):
    """The no-internal-processes rule, for real: enabling a controller for the children of a group that
    holds the grading process answers EBUSY; the process moves into nb10-grader and enables it then.
    Here memory, pids and cpu are bound to v1, so the rule is exercised with the one controller the
    unified hierarchy offers (hugetlb on the development machine)."""
    controller = v2_controller
    proc = subprocess.run([sys.executable, "-c", LEAF_SCRIPT, str(test_group), str(UNIFIED), controller],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["moved"] and seen["parent"] == str(test_group) and seen["enabled"] == [controller]
    assert f"0::/{test_group.name}/{cgroups.LEAF}" in seen["own"]
    assert controller in seen["subtree"]
    assert any(name.startswith(controller + ".") for name in seen["files"]), seen["files"]
    assert not (test_group / "nb10-sub").exists()


@ROOT_ONLY
@NEEDS_V2
def test_a_systemd_scope_must_be_delegated(test_group):
    scope = test_group / "grading.scope"
    scope.mkdir()
    refusal = cgroups.systemd_refusal(scope, UNIFIED, under_systemd=True)
    assert refusal and "systemd-run --scope -p Delegate=yes" in refusal
    os.setxattr(scope, "trusted.delegate", b"1")  # what systemd writes on a unit started with Delegate=yes
    assert cgroups.systemd_refusal(scope, UNIFIED, under_systemd=True) is None
    assert cgroups.systemd_refusal(test_group, UNIFIED, under_systemd=False) is None


def run_cells(*sources, limits=FAST, pool=None):
    plan = {"cells": [{"kind": "code", "source": s, "grade_id": None, "nb_index": i} for i, s in enumerate(sources)],
            "worlds": ["real"], "cell_seconds": limits.cell_seconds, "seed": 1}
    raw = sandbox.run(plan, limits, pool=pool)
    return raw, parse(raw.streams["real"], raw.key, "real")


@pytest.fixture(params=["cold", "warm"])
def pool(request):
    if request.param == "cold":
        yield None
        return
    pool = sandbox.WarmPool(1)
    assert pool.wait_ready()
    yield pool
    pool.close()


def watch_groups(folder: Path, found: dict, stop: threading.Event) -> None:
    """From outside the sandbox: the submission's group and the processes in it, while it runs."""
    while not stop.is_set():
        for group in folder.glob("nb10-6*"):  # nb10-<uid>-<hex>, uids from 61000
            try:
                procs = (group / "cgroup.procs").read_text().split()
            except OSError:
                continue
            if procs:
                found[group.name] = max(found.get(group.name, 0), len(procs))
        time.sleep(0.05)


@ROOT_ONLY
@NEEDS_V2
def test_sandboxed_grading_runs_in_a_v2_group_of_its_own(cgroup_mode, pool):
    """The whole v2 path under real grading, cold and warm (the zygote's child joins the group):
    the group is made, holds the submission's processes while it runs, and is gone afterwards."""
    cgroup_mode("v2")
    found: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_groups, args=(UNIFIED, found, stop))
    watcher.start()
    try:
        raw, world = run_cells("import subprocess, time\n"
                               "p = subprocess.Popen(['sleep', '60'])\ntime.sleep(1.0)\nprint('ok')")
    finally:
        stop.set()
        watcher.join()
    assert "ok" in world.cells[0]["output"], raw.stderr[-500:]
    note = next(n for n in raw.notes if n.startswith("cgroup"))
    assert note.startswith("cgroups (v2):"), raw.notes
    assert found and max(found.values()) >= 2, found  # the notebook's process and its sleep, at least
    assert not any((UNIFIED / name).exists() for name in found)
    if "memory" in cgroups.controllers(UNIFIED):  # a v2 machine with controllers: the figures come back
        assert raw.peak_memory and raw.peak_memory > 0 and raw.oom_kills == 0
        assert "memory.max" in note and "pids.max" in note and "cpu.max" in note


@ROOT_ONLY
def test_a_memory_hog_is_ended_by_the_oom_killer_and_the_result_says_so(pool):
    """On whichever hierarchy this machine's choice uses (v1 here, v2 where the controllers are there)."""
    limits = Limits(cell_seconds=20, submission_seconds=60, memory_bytes=1 << 30)
    raw, world = run_cells("print('before')", "blob = b'x' * (3 << 30)\nprint('allocated')", limits=limits, pool=pool)
    if not any(n.startswith("cgroups (") for n in raw.notes) or raw.oom_kills is None:
        pytest.skip(f"no memory cgroup here: {raw.notes}")
    assert raw.oom_kills >= 1, raw.notes
    assert any("OOM killer ended" in n and "1 GiB limit" in n for n in raw.notes), raw.notes
    assert raw.peak_memory and raw.peak_memory <= (1 << 30) + (1 << 20)
    assert "allocated" not in world.cells.get(1, {}).get("output", "")


def test_without_cgroups_the_reason_is_said_once_and_recorded_in_every_result(cgroup_mode, caplog):
    cgroup_mode("off")
    with caplog.at_level("WARNING", logger="autograder.cgroups"):
        first, _ = run_cells("print(1)")
        second, _ = run_cells("print(2)")
    expected = f"{cgroups.UNAVAILABLE}: {cgroups.ENV}=off"
    assert expected in first.notes and expected in second.notes
    assert [r.getMessage() for r in caplog.records].count(f"{cgroups.UNAVAILABLE}: {cgroups.ENV}=off; "
                                                          "every result records it") == 1
