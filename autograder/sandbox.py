"""Runs the untrusted side (``runner.py``) for one submission, isolated and resource-limited.

Isolation comes from bubblewrap: new PID, network, IPC and UTS namespaces (no network at all),
a root file system that shows only the system libraries, the Python installation, the
virtual environment, the three sandbox-side modules (copied to a private folder) and the data
file; a private /tmp and home on size-limited tmpfs. Nothing of the course directory, the
graders, the gradebook or other submissions is mounted. When started as root, the submission
runs under its own unprivileged uid with no capabilities, so the process limit holds.

Limits: address space, CPU time, processes, file size and open files by rlimit; memory and
process count of the whole sandbox by cgroup where the machine allows it; wall time per cell
(in the runner) and per submission (here: the sandbox is killed); output volume (here: the
pipes are drained and what is over the cap is counted and dropped). When the run ends, the
sandbox's PID namespace goes with it, and every process it started (daemons included) is killed.
"""

from __future__ import annotations

import os
import resource
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from autograder import standin

SANDBOX_HOME = "/home/student"
BUNDLE_MOUNT = "/grader"
BUNDLE_PACKAGE = "nb10_sandbox"
BUNDLE_FILES = ("runner.py", "probe.py", "standin.py")
UNSAFE_FLAG = "--unsafe-no-sandbox"


class SandboxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Limits:
    submission_seconds: float = 180.0
    cell_seconds: float = 30.0
    address_space_bytes: int = 8 << 30
    memory_bytes: int = 4 << 30  # whole sandbox, where a memory cgroup can be made
    cpu_seconds: int = 300
    processes: int = 256  # threads count too
    file_bytes: int = 64 << 20
    tmp_bytes: int = 256 << 20
    output_bytes: int = 256 << 10  # raw stdout/stderr kept
    evidence_bytes: int = 64 << 20  # per world


@dataclass
class RawRun:
    streams: dict[str, bytes]
    stdout: bytes
    stderr: bytes
    returncode: int | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    killed: str | None = None  # why the sandbox was killed, if it was
    nonce: str = ""


@lru_cache(maxsize=1)
def bundle_dir() -> Path:
    """A private folder holding only the sandbox-side modules, as package nb10_sandbox."""
    root = Path(tempfile.mkdtemp(prefix="nb10-sandbox-"))
    package = root / BUNDLE_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    here = Path(__file__).parent
    for name in BUNDLE_FILES:
        shutil.copy2(here / name, package / name)
    os.chmod(root, 0o755)
    return root


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/alternatives", "/etc/fonts"):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
    made: set[str] = set()
    for prefix in sorted(prefixes):
        if prefix.startswith("/usr"):
            continue
        # bwrap makes missing parent folders private (0700): make them traversable first
        for parent in reversed(Path(prefix).parents[:-1]):
            if str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", prefix, prefix]
    return args


def data_binds() -> tuple[list[str], str | None, list[str]]:
    """Bind arguments for the PneumoniaMNIST file, the stand-in root to activate, and notes."""
    root = standin.configured_root()
    target = f"{SANDBOX_HOME}/.medmnist"
    if root is not None:
        if not standin.is_current(root):
            raise SandboxUnavailable(
                f"{standin.ENV}={root} holds no intact stand-in. Run `python -m autograder.standin setup`, "
                f"or set {standin.ENV} empty to use the real data set from ~/.medmnist.")
        return (["--dir", target, "--ro-bind", str(root / standin.FILENAME), f"{target}/{standin.FILENAME}",
                 "--ro-bind", str(root / standin.SIDECAR), f"{target}/{standin.SIDECAR}"], target,
                ["data: synthetic PneumoniaMNIST stand-in"])
    real = Path.home() / ".medmnist" / standin.FILENAME
    if real.exists():
        return ["--dir", target, "--ro-bind", str(real), f"{target}/{standin.FILENAME}"], None, [f"data: {real}"]
    return ["--dir", target], None, [
        f"data: no {standin.FILENAME} is available to the sandbox (neither {standin.ENV} nor {real}); "
        "cells that load PneumoniaMNIST will fail"]


def _bwrap_command(limits: Limits, uid: int | None, extra_binds: list[str]) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so submissions cannot be isolated. Install it with "
            f"`apt-get install bubblewrap` (or run `make setup` as root). To grade anyway on a machine you "
            f"trust with every submission, pass {UNSAFE_FLAG} (no isolation at all).")
    cmd = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
           "--die-with-parent", "--new-session"]
    if uid is None:
        cmd.append("--unshare-user")
    cmd += _system_binds()
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm",
            "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", SANDBOX_HOME,
            "--ro-bind", str(bundle_dir()), BUNDLE_MOUNT, *extra_binds, "--chdir", SANDBOX_HOME]
    if uid is not None:
        cmd += ["--", shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}",
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return cmd


def _runner_argv() -> list[str]:
    return [sys.executable, "-I", "-c",
            f"import sys; sys.path.insert(0, {BUNDLE_MOUNT!r}); from {BUNDLE_PACKAGE}.runner import main; main()"]


def _unsafe_runner_argv() -> list[str]:
    return [sys.executable, "-I", "-c",
            f"import sys; sys.path.insert(0, {str(bundle_dir())!r}); from {BUNDLE_PACKAGE}.runner import main; main()"]


class _Cgroup:
    """A v1 memory + pids cgroup for one sandbox, where this machine lets us make one."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.dirs: list[Path] = []
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            _, controllers, path = line.split(":", 2)
            for controller, files in (("memory", {"memory.limit_in_bytes": limits.memory_bytes}),
                                      ("pids", {"pids.max": limits.processes})):
                if controller not in controllers.split(","):
                    continue
                folder = Path("/sys/fs/cgroup") / controller / path.lstrip("/") / name
                try:
                    folder.mkdir(exist_ok=True)
                    for fname, value in files.items():
                        (folder / fname).write_text(str(value))
                    self.dirs.append(folder)
                except OSError:
                    continue

    def join(self) -> None:  # in the child, before exec
        for folder in self.dirs:
            try:
                (folder / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                pass

    @property
    def note(self) -> str:
        return ("cgroup limits: " + ", ".join(d.parts[4] for d in self.dirs)
                if self.dirs else "cgroup limits: not available here (rlimits only)")

    def remove(self) -> None:
        for folder in self.dirs:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)


@lru_cache(maxsize=1)
def check_available() -> str:
    """Run an empty sandbox once; say what is wrong and what to do when that fails."""
    uid = 61999 if os.geteuid() == 0 else None
    cmd = _bwrap_command(Limits(), uid, []) + ["/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        hint = ("this machine does not allow unprivileged user namespaces (Ubuntu 23.10+ blocks them by default): "
                "run the grader as root, or allow them with `sysctl kernel.apparmor_restrict_unprivileged_userns=0`"
                if uid is None else "bubblewrap could not set up the namespaces")
        raise SandboxUnavailable(f"the sandbox does not start ({proc.stderr.strip()[:300]}): {hint}. "
                                 f"To grade without isolation on a machine you trust, pass {UNSAFE_FLAG}.")
    return "privileged bubblewrap, one unprivileged uid per submission" if uid is not None else \
        "unprivileged bubblewrap (user namespace)"


def run(plan: dict, limits: Limits = Limits(), *, slot: int | None = None, unsafe: bool = False) -> RawRun:
    """Run the runner on `plan`; return what came back. Never raises for the submission's sake."""
    notes: list[str] = []
    binds, standin_root, data_notes = data_binds()
    notes += data_notes
    plan = dict(plan, standin=standin_root, nonce=plan.get("nonce") or secrets.token_hex(16))
    worlds = plan["worlds"]
    pipes = [os.pipe() for _ in worlds]
    plan["fds"] = [w for _, w in pipes]
    uid = None
    if unsafe:
        notes.append("WARNING: graded WITHOUT the sandbox (--unsafe-no-sandbox)")
        cmd = _unsafe_runner_argv()
        if plan["standin"]:
            plan["standin"] = str(standin.configured_root())
    else:
        check_available()
        uid = 61000 + (slot if slot is not None else os.getpid() % 900)
        cmd = _bwrap_command(limits, uid if os.geteuid() == 0 else None, binds) + _runner_argv()
    cgroup = _Cgroup(f"nb10-{uid or os.getpid()}-{secrets.token_hex(3)}", limits)
    notes.append(cgroup.note)

    def limit_child() -> None:
        cgroup.join()
        for res, value in ((resource.RLIMIT_AS, limits.address_space_bytes),
                           (resource.RLIMIT_CPU, limits.cpu_seconds),
                           (resource.RLIMIT_NPROC, limits.processes),
                           (resource.RLIMIT_FSIZE, limits.file_bytes),
                           (resource.RLIMIT_NOFILE, 1024),
                           (resource.RLIMIT_CORE, 0)):
            resource.setrlimit(res, (value, value))

    env = {"PATH": "/usr/bin:/bin", "HOME": SANDBOX_HOME, "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0", "TMPDIR": "/tmp", "MPLCONFIGDIR": "/tmp/mpl", "CUDA_MODULE_LOADING": "LAZY"}
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            pass_fds=plan["fds"], env=env, preexec_fn=limit_child, start_new_session=True)
    for _, w in pipes:
        os.close(w)
    import json

    try:
        proc.stdin.write(json.dumps(plan).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass
    streams = {w: bytearray() for w in worlds}
    outs = {"stdout": bytearray(), "stderr": bytearray()}
    dropped = {"stdout": 0, "stderr": 0}
    sel = selectors.DefaultSelector()
    for world, (r, _) in zip(worlds, pipes):
        sel.register(r, selectors.EVENT_READ, ("world", world))
    sel.register(proc.stdout, selectors.EVENT_READ, ("out", "stdout"))
    sel.register(proc.stderr, selectors.EVENT_READ, ("out", "stderr"))
    killed = None
    deadline = started + limits.submission_seconds
    open_count = len(worlds) + 2
    while open_count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            killed = f"the notebook ran past the {limits.submission_seconds:.0f} s limit for a whole submission"
            break
        for key, _ in sel.select(timeout=min(remaining, 1.0)):
            fd = key.fd if isinstance(key.fileobj, int) else key.fileobj.fileno()
            chunk = os.read(fd, 1 << 16)
            kind, name = key.data
            if not chunk:
                sel.unregister(key.fileobj)
                open_count -= 1
                continue
            if kind == "world":
                streams[name] += chunk
                if len(streams[name]) > limits.evidence_bytes:
                    killed = "the notebook flooded the grader's evidence channel"
            elif len(outs[name]) < limits.output_bytes:
                outs[name] += chunk
            else:
                dropped[name] += len(chunk)
        if killed:
            break
    if killed or proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        returncode = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        returncode = None
        notes.append("the sandbox did not exit after SIGKILL")
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    for r, _ in pipes:
        os.close(r)
    proc.stdout.close()
    proc.stderr.close()
    cgroup.remove()
    for name, n in dropped.items():
        if n:
            notes.append(f"{n} bytes of raw {name} over the {limits.output_bytes} byte cap were dropped")
    return RawRun({w: bytes(s) for w, s in streams.items()}, bytes(outs["stdout"]), bytes(outs["stderr"]),
                  returncode, time.monotonic() - started, notes, killed, plan["nonce"])
