"""The sandbox itself: what a submission can see, reach and leave behind."""

import os
import subprocess
import sys
import time

import pytest

from autograder import sandbox
from autograder.evidence import parse
from autograder.sandbox import Limits
from autograder.sandboxed.layout import Tmpfs

FAST = Limits(cell_seconds=8, submission_seconds=40)
BACKEND = {"pool": None}


@pytest.fixture(scope="module", params=["cold", "warm"], autouse=True)
def backend(request):
    """Every test here runs twice: a fresh bubblewrap sandbox, and a fork of a warm zygote."""
    if request.param == "cold":
        BACKEND["pool"] = None
        yield "cold"
        return
    if os.geteuid() != 0:
        pytest.skip("the warm sandbox needs root; this test runs as a normal user")
    BACKEND["pool"] = sandbox.WarmPool(1)
    yield "warm"
    BACKEND["pool"].close()
    BACKEND["pool"] = None


def run_cells(*sources, limits=FAST):
    plan = {"cells": [{"kind": "code", "source": s, "grade_id": None, "nb_index": i} for i, s in enumerate(sources)],
            "worlds": ["real"], "cell_seconds": limits.cell_seconds, "seed": 1}
    raw = sandbox.run(plan, limits, pool=BACKEND["pool"])
    world = parse(raw.streams["real"], raw.key, "real")
    return raw, world


def output(world, index):
    return world.cells[index]["output"]


def test_the_sandbox_reports_how_it_ran(backend):
    raw, world = run_cells("print('hello')")
    assert "hello" in output(world, 0)
    assert ("sandbox: warm (forked from a zygote)" in raw.notes) == (backend == "warm")


def test_the_submission_user_has_a_name_without_a_password_database():
    """torch 2.11 calls getpass.getuser() when torchvision is imported; with no /etc/passwd in the
    sandbox that raised KeyError for the submission's uid (seen on the GPU machine)."""
    raw, world = run_cells("import getpass, os; print(getpass.getuser(), os.path.exists('/etc/passwd'))")
    assert output(world, 0).split() == ["student", "False"], (output(world, 0), raw.stderr[-500:])


def test_the_sandbox_is_available_here():
    assert "bubblewrap" in sandbox.check_available()


@pytest.mark.slow
def test_a_submission_sees_no_course_files_gradebook_or_graders():
    raw, world = run_cells(
        "import os\n"
        "for p in ['/work/main/gradebook.db', '/work/main/autograder/graders', '/work/main/source', '/work/main/submitted',"
        " '/root', '/etc/passwd']:\n"
        "    print(p, os.path.exists(p))\n"
        "print(sorted(f for f in os.listdir('/grader/nb10_sandbox') if f.endswith('.py')))\n"
        "print('uid', os.getuid(), 'pid', os.getpid())\n")
    text = output(world, 0)
    assert "gradebook.db False" in text and "graders False" in text and "source False" in text
    assert "/etc/passwd False" in text
    # the sandbox side's own package (autograder/sandboxed/), nothing else of the grader
    assert "['__init__.py', 'core.py', 'layout.py', 'probe.py', 'runner.py', 'standin.py', 'student_side.py', 'zygote.py']" in text


@pytest.mark.slow
def test_a_submission_has_no_network():
    raw, world = run_cells(
        "import socket\n"
        "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=3); print('connected')\n"
        "except OSError as e:\n    print('refused', e.errno)\n")
    assert "refused" in output(world, 0) and "connected" not in output(world, 0)


@pytest.mark.slow
def test_a_daemon_started_with_setsid_is_gone_when_grading_ends():
    marker = f"nb10-daemon-{os.getpid()}"
    raw, world = run_cells(
        "import subprocess\n"
        f"subprocess.Popen(['setsid', 'sh', '-c', 'exec -a {marker} sleep 300'], start_new_session=True)\n"
        "print('started')\n")
    assert "started" in output(world, 0)
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert marker not in ps


@pytest.mark.slow
def test_a_cell_past_its_time_limit_stops_and_the_next_cell_still_runs():
    raw, world = run_cells("while True:\n    pass\n", "print('next cell ran')",
                           limits=Limits(cell_seconds=2, submission_seconds=40))
    assert world.cells[0]["status"] == "timeout"
    assert "next cell ran" in output(world, 1)


@pytest.mark.slow
def test_a_loop_that_swallows_the_timeout_is_left_behind_and_the_next_cells_still_run():
    """The interrupt is an exception the loop catches (where it lands outside the try, the cell stops;
    where it cannot, the cell is given up on, left running on its own thread, and the next cells run
    on a new one); the run ends without waiting for the submission limit."""
    limits = Limits(cell_seconds=2, submission_seconds=40)
    started = time.monotonic()
    raw, world = run_cells("print('before')",
                           "while True:\n    try:\n        pass\n    except BaseException:\n        pass\n",
                           "print('after')", limits=limits)
    assert time.monotonic() - started < 30
    assert not raw.killed and world.done
    assert world.cells[1]["status"] == "timeout" and "ran longer than 2 s" in world.cells[1]["error"]["message"]
    assert "before" in output(world, 0) and "after" in output(world, 2)


@pytest.mark.slow
def test_a_notebook_that_keeps_every_cell_stuck_is_stopped_after_three():
    limits = Limits(cell_seconds=1, submission_seconds=60)
    # the interrupt lands on the inner loop's jump, inside the try, nearly every time
    loop = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass\n"
    raw, world = run_cells(loop, loop, loop, "print('never')", limits=limits)
    assert world.done and world.stopped and "could not be stopped" in world.stopped
    assert 3 not in world.cells


@pytest.mark.slow
def test_a_print_flood_is_capped_and_does_not_stop_grading():
    raw, world = run_cells("for _ in range(40):\n    print('x' * 1_000_000)\n",
                           "import os\nfor _ in range(40):\n    os.write(1, b'y' * 1_000_000)\n",
                           "print('after')")
    assert len(output(world, 0)) < 30_000 and "characters of output were dropped" in output(world, 0)
    assert len(raw.stdout) <= FAST.output_bytes
    assert "after" in output(world, 2)


@pytest.mark.slow
def test_memory_and_fork_bombs_fail_inside_the_sandbox():
    raw, world = run_cells(
        "try:\n    blob = bytearray(20 * 1024**3)\n    print('allocated')\nexcept MemoryError:\n    print('memory refused')\n",
        "import os\nn = 0\ntry:\n    while n < 2000:\n        if os.fork() == 0:\n            import time; time.sleep(20); os._exit(0)\n"
        "        n += 1\nexcept OSError:\n    print('fork refused after', n)\n",
        "print('still grading')")
    assert "memory refused" in output(world, 0)
    assert "fork refused" in output(world, 1)
    assert "still grading" in output(world, 2)


def test_without_bubblewrap_grading_refuses_with_a_message_that_says_what_to_do(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap.*--unsafe-no-sandbox"):
        sandbox._bwrap_command(Limits(), None, [])


def test_the_sandbox_modules_folder_is_removed_when_the_grading_process_exits():
    import subprocess
    import sys
    from pathlib import Path

    code = "from autograder import sandbox; print(sandbox.bundle_dir())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    folder = Path(proc.stdout.strip())
    assert proc.returncode == 0 and folder.name.startswith("nb10-sandbox-"), proc.stderr
    assert not folder.exists()


def test_a_warm_sandbox_that_fails_mid_request_is_dropped_and_the_submission_runs_cold():
    import socket

    from autograder import engine
    from autograder.course import COURSE

    pool, sock = sandbox.WarmPool(1), None
    try:
        assert pool.wait_ready()
        proc, sock = pool.acquire()  # the zygote process stays alive; only its socket is swapped
        dead, gone = socket.socketpair()
        gone.close()  # the "zygote" at the other end of this socket is gone
        pool.release((proc, dead))
        nb = (COURSE.source() / "notebook10.ipynb").read_bytes()
        sub = engine.run_submission("x", nb, seed=1, limits=Limits(), pool=pool, assignment="notebook10")
        assert "the warm sandbox failed; this submission ran in a fresh bubblewrap sandbox" in sub.raw.notes
        assert sub.world("real").done
        with pytest.raises(sandbox.SandboxUnavailable):
            pool.acquire()  # none left: later submissions go cold at once instead of waiting
    finally:
        pool.close()
        if sock is not None:
            sock.close()


def _installed_copy_is_hidden(monkeypatch, shown_at=None):
    """A fake installed engine and plug-ins in the venv's site-packages; the notebook lists and reads
    them where the sandbox shows the venv (`shown_at`: the venv's own path, or another path to it)."""
    import shutil
    import sysconfig
    from pathlib import Path

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    fake = site / "nb10_masking_test_root"
    secrets = {fake / "autograder" / "reference.py": "SECRET = 'the engine'\n",
               fake / "assignments" / "notebook10" / "reference.py": "SECRET = 'the reference answers'\n"}
    seen = fake
    if shown_at is not None:
        seen = Path(shown_at) / fake.relative_to(os.path.realpath(sys.prefix))
    try:
        for path, text in secrets.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        monkeypatch.setattr(sandbox, "grader_package_dir", lambda: fake / "autograder")
        code = "import os\n" + "".join(
            f"print(sorted(os.listdir({str(seen / top)!r})))\n"
            f"try:\n    print(open({str(seen / p.relative_to(fake))!r}).read())\nexcept OSError as exc:\n    print(type(exc).__name__)\n"
            for top, p in zip(("autograder", "assignments"), secrets))
        raw, world = run_cells(code)
        shown = output(world, 0)
        assert shown.count("[]") == 2 and shown.count("FileNotFoundError") == 2, shown
        assert "the engine" not in shown and "the reference answers" not in shown, shown
        steps = sandbox.layout(FAST, [])
        for top in ("autograder", "assignments"):
            assert Tmpfs(str(fake / top), 4096, "0755") in steps
            assert Tmpfs(str(seen / top), 4096, "0755") in steps
    finally:
        shutil.rmtree(fake, ignore_errors=True)


def test_an_installed_copy_of_the_grader_in_the_venv_is_hidden_from_the_submission(monkeypatch):
    """A Dask worker installs this package into its venv (`pip install .`), which the sandbox shows:
    the engine and, beside it, the assignment plug-ins (graders, reference code) would be readable
    there. The sandbox masks both packages."""
    _installed_copy_is_hidden(monkeypatch)


def test_the_installed_copy_is_hidden_where_a_symlink_shows_the_venv_too(tmp_path, monkeypatch):
    """A venv reached through a symlink (`/opt/venv -> /data/venv`: sys.prefix is the link) is shown
    at both paths; the masks cover the package at both, not only at the resolved one."""
    link = tmp_path / "linked-venv"
    link.symlink_to(os.path.realpath(sys.prefix))
    monkeypatch.setattr(sys, "prefix", str(link))
    _installed_copy_is_hidden(monkeypatch, shown_at=link)


def test_the_process_is_hardened_against_its_own_notebook():
    """Non-dumpable (its memory is not open to it through /proc) and under the seccomp filter: no
    new user namespace, no ptrace."""
    raw, world = run_cells(
        "try:\n    open('/proc/self/mem', 'rb')\n    print('mem opened')\nexcept OSError as e:\n    print('mem refused', e.errno)\n",
        "import subprocess\nr = subprocess.run(['unshare', '-Ur', 'true'], capture_output=True, text=True)\n"
        "print('unshare exit', r.returncode, r.stderr.strip()[-80:])\n",
        "import subprocess\nr = subprocess.run(['python3', '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)\n"
        "print('a child process still runs', r.returncode)\n")
    assert "mem refused 13" in output(world, 0), output(world, 0)
    assert "unshare exit 1" in output(world, 1) and "Operation not permitted" in output(world, 1), output(world, 1)
    assert "a child process still runs 0" in output(world, 2), output(world, 2)
    assert not any("hardening" in n for n in world.notes), world.notes


def test_the_layout_is_one_list_of_typed_steps_for_both_launchers():
    """The cold launcher's bubblewrap arguments and the zygote's steps come from the same typed
    list; a step crosses the wire as a plain list and arrives as the same step; a step the zygote
    does not know, or one with a field too many, is refused rather than guessed at."""
    from autograder.sandboxed import layout as fs

    steps = sandbox.layout(FAST, [fs.ReadOnly("/etc/hostname", "/home/student/.medmnist/x")])
    assert fs.from_wire(fs.to_wire(steps)) == steps
    assert all(type(step) in fs.STEPS.values() for step in steps)
    args = fs.bwrap_args(steps)
    assert args[:3] == ["--ro-bind", "/usr", "/usr"] and ["--proc", "/proc"] == args[args.index("--proc"):][:2]
    assert args.count("--ro-bind") == sum(isinstance(s, fs.ReadOnly) for s in steps)
    with pytest.raises(ValueError, match="unknown layout step 'bind'"):
        fs.from_wire([["bind", "/", "/"]])
    with pytest.raises(ValueError, match="'ro-bind'"):
        fs.from_wire([["ro-bind", "/", "/", "rw"]])
