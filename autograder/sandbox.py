"""Runs the untrusted side for one submission, isolated and resource-limited.

Two ways to start it, with the same isolation:

* **cold**: a fresh bubblewrap sandbox per submission, which imports torch and friends anew
  (seconds); works as root and, where user namespaces are allowed, as any user;
* **warm** (`WarmPool`, root only): a zygote per worker has imported everything once, and forks
  a child per submission that builds the same sandbox itself (``zygote.py``), in milliseconds.

The sandbox: new PID, network, IPC, UTS and mount namespaces (no network at all); a root file
system that shows only the system libraries, the Python installation, the virtual environment,
the sandbox-side modules and the data file; private size-limited tmpfs /tmp, home and /dev/shm.
Nothing of the course directory, the graders, the gradebook or other submissions is there. As
root, each submission runs under its own unprivileged uid with no capabilities.

Limits: address space, CPU time, processes, file size and open files by rlimit; memory, process
count and CPU of the whole submission by cgroup (v1 or v2, as detected: ``cgroups.py``) where the
machine allows making one; wall time
per cell (in the runner) and per submission (here: the sandbox is killed); output volume (here:
pipes are drained, what is over the cap is counted and dropped). When a run ends, its PID
namespace goes, and with it every process the submission started, daemons included.
"""

from __future__ import annotations

import atexit
import fcntl
import glob
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from autograder import cgroups
from autograder.sandboxed import standin
from autograder.sandboxed.layout import Device, Dev, Dir, Proc, ReadOnly, Step, Symlink, Tmpfs, bwrap_args, to_wire
from autograder.sandboxed.zygote import SETUP_ERROR, SETUP_FAILED, send_request

SANDBOX_HOME = "/home/student"
BUNDLE_MOUNT = "/grader"
BUNDLE_PACKAGE = "nb10_sandbox"
SANDBOXED = Path(__file__).resolve().parent / "sandboxed"  # the sandbox side: a package of its own
BUNDLE_FILES = tuple(sorted(p.name for p in SANDBOXED.glob("*.py")))
UNSAFE_FLAG = "--unsafe-no-sandbox"
# USER and LOGNAME: the sandbox has no /etc/passwd, and getpass.getuser() (which torch 2.11's
# import of torchvision calls, for its compile cache) reads them before the password database.
ENV = {"PATH": "/usr/bin:/bin", "HOME": SANDBOX_HOME, "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8",
       "MPLBACKEND": "Agg",
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
       "PYTHONHASHSEED": "0", "TMPDIR": "/tmp", "MPLCONFIGDIR": "/tmp/mpl", "CUDA_MODULE_LOADING": "LAZY",
       # torch.compile returns the model as it is: the same numbers, without compiling for longer than a
       # cell's limit (ResNet18 takes 20-45 s on a CPU)
       "TORCHDYNAMO_DISABLE": "1"}


class SandboxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Limits:
    submission_seconds: float = 180.0
    cell_seconds: float = 30.0
    address_space_bytes: int = 8 << 30
    memory_bytes: int = 4 << 30  # whole sandbox, where a memory cgroup can be made
    cpus: float = 2.0  # CPU time per wall second of the whole sandbox (cgroup v2 cpu.max): its two worlds
    cpu_seconds: int = 300
    processes: int = 256  # threads count too
    file_bytes: int = 64 << 20
    tmp_bytes: int = 256 << 20
    output_bytes: int = 256 << 10  # raw stdout/stderr kept
    evidence_bytes: int = 64 << 20  # per world
    gpu: bool = True  # submissions see this machine's GPU where it has one (GradingConfig.gpu)

    def rlimits(self) -> dict[str, int]:
        # CUDA reserves far more address space than it uses, so where the GPU is shown to the
        # sandbox, private writable memory (RLIMIT_DATA) is limited instead of address space.
        memory = "RLIMIT_DATA" if gpu_devices(self.gpu) else "RLIMIT_AS"
        return {memory: self.address_space_bytes, "RLIMIT_CPU": self.cpu_seconds,
                "RLIMIT_NPROC": self.processes, "RLIMIT_FSIZE": self.file_bytes, "RLIMIT_NOFILE": 1024,
                "RLIMIT_CORE": 0}


@dataclass(repr=False)
class RawRun:
    streams: dict[str, bytes]
    stdout: bytes
    stderr: bytes
    returncode: int | None
    seconds: float
    notes: list[str] = field(default_factory=list)
    killed: str | None = None  # why the sandbox was killed, if it was
    key: str = ""  # hex; signs the evidence (HMAC-SHA256): only the sandbox's grader side holds it
    peak_memory: int | None = None  # bytes, from the memory cgroup where there is one
    oom_kills: int | None = None  # processes the kernel's OOM killer ended at the memory cgroup's limit
    quiet: dict[str, float] = field(default_factory=dict)  # per world: seconds without evidence when it ended

    def __repr__(self) -> str:
        return f"<RawRun exit {self.returncode}, {self.seconds:.2f} s, killed {self.killed!r}>"


GPU_ENV = "NB10_GPU"  # "off" hides this machine's GPU from submissions
GPU_SYS_ENV = "NB10_GPU_SYS"  # "1" also shows /sys read-only, for drivers that need it
GPU_PASSED_ENV = ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES")


@lru_cache(maxsize=1)
def gpu_devices(allowed: bool = True) -> tuple[str, ...]:
    """The NVIDIA device files a submission is given: all of them where this machine has a GPU,
    none where it has not, where the grading settings say gpu = "off" (`allowed` False) or where
    the grading machine's operator set NB10_GPU=off."""
    if not allowed or os.environ.get(GPU_ENV, "").strip().lower() in ("0", "off", "no", "false") or not os.path.exists("/dev/nvidiactl"):
        return ()
    return tuple(sorted(glob.glob("/dev/nvidia*")))


def sandbox_env(gpu: bool = True) -> dict[str, str]:
    """The sandbox's whole environment; on a GPU machine, the driver's library path too."""
    env = dict(ENV)
    if gpu_devices(gpu):
        env.update({name: os.environ[name] for name in GPU_PASSED_ENV if os.environ.get(name)})
    return env


def _gpu_steps(gpu: bool = True) -> list[Step]:
    """Layout steps that show the GPU: its device files, and driver library folders outside /usr."""
    devices = gpu_devices(gpu)
    if not devices:
        return []
    steps: list[Step] = [Device(path, path) for path in devices]
    for folder in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        if folder.startswith("/") and os.path.isdir(folder) and not folder.startswith("/usr/"):
            steps.append(ReadOnly(folder, folder))
    if os.environ.get(GPU_SYS_ENV) == "1":
        steps.append(ReadOnly("/sys", "/sys"))
    return steps


def gpu_note(gpu: bool = True) -> str | None:
    devices = gpu_devices(gpu)
    if not devices:
        return None
    return (f"gpu: shown to the submission ({len(devices)} NVIDIA device files); memory limited by RLIMIT_DATA "
            "instead of address space; GPU memory itself is not limited")


@lru_cache(maxsize=1)
def bundle_dir() -> Path:
    """A private folder holding only the sandbox-side modules, as package nb10_sandbox: made
    once per process, removed when the process exits."""
    root = Path(tempfile.mkdtemp(prefix="nb10-sandbox-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    package = root / BUNDLE_PACKAGE
    package.mkdir()
    for name in BUNDLE_FILES:
        shutil.copy2(SANDBOXED / name, package / name)
    for plugin in _sandbox_plugins():  # each assignment's sandbox side, as nb10_sandbox.plugins.ID
        folder = package / "plugins" / plugin.id
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
        (folder / "__init__.py").write_text("")
        for name in plugin.sandbox_files:
            shutil.copy2(plugin.folder / name, folder / Path(name).name)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    os.chmod(root, 0o755)
    return root


def _sandbox_plugins() -> list:
    """The assignment plug-ins with a sandbox side (their SANDBOX files), of this repository and of
    the course directory this process runs in."""
    from autograder import plugins
    from autograder.course import course_here

    return [p for p in plugins.loadable(course_here()) if p.sandbox_files]


CLONE_NEWUSER = 0x10000000
PR_SET_DUMPABLE = 4
DENIED_SYSCALLS = ("ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open", "keyctl", "add_key",
                   "request_key", "mount", "umount2", "pivot_root", "setns", "unshare", "kexec_load",
                   "kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
                   "name_to_handle_at", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
                   "fsopen", "fsmount", "fsconfig", "move_mount", "open_tree", "mount_setattr", "chroot", "acct",
                   "swapon", "swapoff", "quotactl", "lookup_dcookie", "vmsplice")


@lru_cache(maxsize=1)
def seccomp_program() -> str | None:
    """The seccomp filter every sandboxed process installs on itself (runner.harden), as hex BPF,
    built here with libseccomp (pyseccomp): EPERM for new user namespaces (clone with
    CLONE_NEWUSER, unshare), setns, ptrace, process_vm_readv/writev, bpf, perf_event_open, the
    keyring calls, mounts, module loading, io_uring, userfaultfd and prctl(PR_SET_DUMPABLE);
    ENOSYS for clone3, whose flags a filter cannot read (libc then falls back to clone). None
    where libseccomp is missing; the results then say so."""
    try:
        import errno

        import pyseccomp as seccomp
    except Exception:
        return None
    refuse = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(refuse, name)
        except Exception:  # not a system call on this architecture or kernel
            pass
    rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(refuse, "prctl", seccomp.Arg(0, seccomp.EQ, PR_SET_DUMPABLE))
    with tempfile.TemporaryFile() as f:
        rules.export_bpf(f)
        f.seek(0)
        return f.read().hex()


def _data_layout() -> tuple[list[Step], str | None, list[str]]:
    """Layout steps for the PneumoniaMNIST file, the stand-in root to activate, and notes."""
    root = standin.configured_root()
    target = f"{SANDBOX_HOME}/.medmnist"
    steps: list[Step] = [Dir(target, "0755")]
    if root is not None:
        if not standin.is_current(root):
            raise SandboxUnavailable(
                f"{standin.ENV}={root} holds no intact stand-in. Run `python -m autograder.sandboxed.standin setup`, "
                f"or set {standin.ENV} empty to use the real data set from ~/.medmnist.")
        steps += [ReadOnly(str(root / standin.FILENAME), f"{target}/{standin.FILENAME}"),
                  ReadOnly(str(root / standin.SIDECAR), f"{target}/{standin.SIDECAR}")]
        return steps, target, ["data: synthetic PneumoniaMNIST stand-in"]
    real = Path.home() / ".medmnist" / standin.FILENAME
    if real.exists():
        return steps + [ReadOnly(str(real), f"{target}/{standin.FILENAME}")], None, [f"data: {real}"]
    return steps, None, [f"data: no {standin.FILENAME} is available to the sandbox (neither {standin.ENV} nor "
                         f"{real}); cells that load PneumoniaMNIST will fail"]


def layout(limits: Limits, data_steps: list[Step]) -> list[Step]:
    """The sandbox's file system, as typed steps both launchers carry out in order (sandboxed/layout.py)."""
    steps: list[Step] = [ReadOnly("/usr", "/usr")]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            steps.append(Symlink(os.readlink(top), top))
        elif os.path.isdir(top):
            steps.append(ReadOnly(top, top))
    for path in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/alternatives", "/etc/fonts"):
        if os.path.exists(path):
            steps.append(ReadOnly(path, path))
    mounts: list[Step] = [Proc("/proc"), Dev("/dev"), Tmpfs("/dev/shm", limits.tmp_bytes, "1777"),
                          Tmpfs("/tmp", limits.tmp_bytes, "1777"), Tmpfs(SANDBOX_HOME, limits.tmp_bytes, "1777")]
    steps += mounts
    # The Python installation and the venv come after the tmpfs mounts, so that a checkout
    # under /tmp (or a home folder) is mounted on top of them rather than hidden by them.
    made = {step.path for step in mounts}
    for prefix in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}):
        if prefix.startswith("/usr"):
            continue
        for parent in reversed(Path(prefix).parents[:-1]):  # traversable parents (bwrap makes them 0700)
            if str(parent) not in made:
                made.add(str(parent))
                steps.append(Dir(str(parent), "0755"))
        steps.append(ReadOnly(prefix, prefix))
    steps += [ReadOnly(str(bundle_dir()), BUNDLE_MOUNT), *data_steps, *_gpu_steps(limits.gpu)]
    steps += _masks([step for step in steps if isinstance(step, ReadOnly)])
    return steps


def grader_package_dir() -> Path:
    return Path(__file__).resolve().parent


def _masks(shown: list[ReadOnly]) -> list[Step]:
    """An empty folder over this package, and over the assignment plug-ins beside it, wherever a
    mounted folder shows them: a non-editable install (a Dask worker's `pip install .`) puts the
    engine, the graders and the reference code in the venv's site-packages, which the sandbox shows.
    The sandbox needs none of it (its modules are the bundle's). A folder can be shown at more than
    one path (a venv reached through a symlink is mounted at the link and at the folder it names),
    so each mount whose source holds a package gets its own mask."""
    from autograder.plugins import PACKAGE

    package = grader_package_dir()
    masks: list[Step] = []
    for hidden in (package, package.parent / PACKAGE):
        if not hidden.is_dir():
            continue
        hidden = hidden.resolve()
        for step in shown:
            if step.target == BUNDLE_MOUNT:
                continue
            source = Path(os.path.realpath(step.source))
            if hidden == source or source in hidden.parents:
                mask = Tmpfs(str(Path(step.target) / hidden.relative_to(source)), 4096, "0755")
                if mask not in masks:
                    masks.append(mask)
    return masks


def _bwrap_command(limits: Limits, uid: int | None, data_steps: list[Step]) -> list[str]:
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
    cmd += bwrap_args(layout(limits, data_steps)) + ["--chdir", SANDBOX_HOME]
    if uid is not None:
        cmd += ["--", shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}",
                "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return cmd


def _python_argv(bundle: str, call: str) -> list[str]:
    return [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {bundle!r}); from {BUNDLE_PACKAGE} import "
                                        f"{call.split('.')[0]}; {call}"]


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


@dataclass
class _Started:
    kill: Callable[[], None]
    wait: Callable[[float], int | None]


class WarmPool:
    """Zygotes (one per worker) that fork a freshly isolated child per submission. Root only.

    Starting one takes seconds (it imports torch and friends), so the pool starts it and
    returns at once: the caller warms up its own side meanwhile, on another core, and the first
    `acquire` waits until a zygote is ready. A zygote that could not start makes `acquire`
    raise SandboxUnavailable, and the engine falls back to the cold sandbox."""

    def __init__(self, workers: int) -> None:
        if os.geteuid() != 0:
            raise SandboxUnavailable("the warm sandbox needs root; use the cold (bubblewrap) path")
        self._free: list[tuple[subprocess.Popen, socket.socket]] = []
        self._lock = threading.Condition()
        self._failure: str | None = None
        self._closed = False
        self._live = 0  # zygotes started and not discarded
        self.workers = workers
        first = self._spawn()
        self._procs = [first[0]]
        self._starting = threading.Thread(target=self._finish_start, args=(first, workers), daemon=True,
                                          name="zygote-start")
        self._starting.start()

    @staticmethod
    def _spawn() -> tuple[subprocess.Popen, socket.socket]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(sandbox_env(), HOME=os.environ.get("HOME", "/root"))
        proc = subprocess.Popen(_python_argv(str(bundle_dir()), f"zygote.serve({theirs.fileno()})"),
                                pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        return proc, ours

    @staticmethod
    def _await_ready(proc: subprocess.Popen, sock: socket.socket) -> None:
        if sock.makefile("rb").readline() != b"READY\n":
            proc.kill()
            raise SandboxUnavailable("the warm sandbox (zygote) did not start")

    def _finish_start(self, first: tuple[subprocess.Popen, socket.socket], workers: int) -> None:
        """Wait for the first zygote; then fork the others from it (warm at once, in
        milliseconds). None is handed out before all are made: the clone requests go over the
        first zygote's socket, which a submission must not be using at the same time."""
        started = []
        try:
            self._await_ready(*first)
            started.append(first)
            for _ in range(workers - 1):
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                send_request(first[1], {"clone": True}, [theirs.fileno()])
                theirs.close()
                if ours.makefile("rb").readline() != b"READY\n":
                    raise SandboxUnavailable("a warm sandbox (zygote) could not be cloned")
                started.append((first[0], ours))
        except (OSError, SandboxUnavailable) as exc:
            failure = str(exc) or type(exc).__name__
        else:
            failure = None
        with self._lock:
            if not started:  # with no zygote at all, every request goes cold
                self._failure = failure
            self._live += len(started)
            self._free.extend(started)
            self._lock.notify_all()

    def discard(self, zygote: tuple[subprocess.Popen, socket.socket]) -> None:
        """A zygote that failed in the middle of a request is not used again; once none is left,
        `acquire` raises and every later submission runs in a fresh bubblewrap sandbox."""
        zygote[1].close()
        with self._lock:
            self._live -= 1
            if self._live <= 0:
                self._failure = "every warm sandbox (zygote) failed"
            self._lock.notify_all()

    def wait_ready(self) -> bool:
        """Block until the pool has finished starting; whether a zygote is ready."""
        self._starting.join()
        return self._failure is None

    def acquire(self) -> tuple[subprocess.Popen, socket.socket]:
        with self._lock:
            while not self._free:
                if self._failure or self._closed:
                    raise SandboxUnavailable(self._failure or "the warm sandbox pool is closed")
                self._lock.wait()
            proc, sock = self._free.pop()
        if proc.poll() is not None:  # a zygote that died is replaced
            sock.close()
            proc, sock = self._spawn()
            self._await_ready(proc, sock)
            with self._lock:
                self._procs.append(proc)
        return proc, sock

    def release(self, zygote: tuple[subprocess.Popen, socket.socket]) -> None:
        with self._lock:
            self._free.append(zygote)
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for _, sock in self._free:
                sock.close()  # a zygote, or a clone, exits when its socket closes
            self._free.clear()
            procs = list(self._procs)
            self._lock.notify_all()
        for proc in procs:  # a zygote still starting is stopped too; its start thread then ends
            proc.kill()
            proc.wait()
        self._starting.join()
        with self._lock:  # a clone handed out while closing
            for _, sock in self._free:
                sock.close()
            self._free.clear()


def warm_pool(workers: int, unsafe: bool = False) -> WarmPool | None:
    """Zygotes for `workers` parallel submissions, where this machine allows them (root)."""
    if unsafe or os.geteuid() != 0:
        return None
    try:
        return WarmPool(workers)
    except SandboxUnavailable:
        return None


UID_BASE, UID_COUNT = 61000, 4000
LEASE_DIR = Path("/run/nb10-uids") if os.path.isdir("/run") else Path(tempfile.gettempdir()) / "nb10-uids"


@contextmanager
def _uid_lease(hint: int = 0):
    """A uid no other sandbox on this machine is using now (any grading process): each one gets
    its own process-count limit and cannot signal another's processes. Held by a file lock."""
    LEASE_DIR.mkdir(mode=0o700, exist_ok=True)
    for k in range(UID_COUNT):
        uid = UID_BASE + (hint + k) % UID_COUNT
        fd = os.open(LEASE_DIR / str(uid), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)  # closing releases the lock
        return
    raise SandboxUnavailable(f"all {UID_COUNT} sandbox uids are in use on this machine")


def run(plan: dict, limits: Limits = Limits(), *, slot: int | None = None, unsafe: bool = False,
        pool: WarmPool | None = None) -> RawRun:
    """Run the runner on `plan`; return what came back. Never raises for the submission's sake."""
    with _uid_lease(slot if slot is not None else os.getpid()) as uid:
        return _run(plan, limits, uid, unsafe, pool)


def _run(plan: dict, limits: Limits, uid: int, unsafe: bool, pool: WarmPool | None) -> RawRun:
    notes: list[str] = []
    data_steps, standin_root, data_notes = _data_layout()
    notes += data_notes
    plan = dict(plan, standin=standin_root, key=plan.get("key") or secrets.token_hex(32), seccomp=seccomp_program(),
                pid_namespace=not unsafe)
    worlds = plan["worlds"]
    pipes = {name: os.pipe() for name in ["stdout", "stderr", *worlds]}
    cgroup = cgroups.for_submission(f"nb10-{uid}-{secrets.token_hex(3)}", limits.memory_bytes, limits.processes,
                                    limits.cpus)
    notes.append(cgroup.note)
    if gpu_note(limits.gpu):
        notes.append(gpu_note(limits.gpu))
    world_w = [pipes[w][1] for w in worlds]
    started = time.monotonic()
    zygote = None
    try:
        if pool is not None and not unsafe:
            zygote = pool.acquire()
            try:
                launched = _launch_warm(zygote, plan, limits, uid, cgroup, data_steps, pipes, world_w)
            except (OSError, ValueError, KeyError) as exc:  # the zygote died, or answered nonsense
                pool.discard(zygote)
                cgroup.remove()
                for name in pipes:
                    os.close(pipes[name][0])
                raise SandboxUnavailable(f"a warm sandbox failed ({type(exc).__name__}: {exc})") from None
            notes.append("sandbox: warm (forked from a zygote)")
        else:
            launched = _launch_cold(plan, limits, uid, cgroup, data_steps, pipes, world_w, unsafe, notes)
    finally:
        for name in pipes:
            os.close(pipes[name][1])
    streams, outs, dropped, killed, quiet = _collect(pipes, worlds, limits, started)
    launched.kill()  # whatever the submission left running goes, finished or not
    cgroup.kill_all()
    returncode = launched.wait(30)
    if zygote is not None:
        pool.release(zygote)
    for name in pipes:
        os.close(pipes[name][0])
    peak, oom_kills = cgroup.peak_memory(), cgroup.oom_kills()
    cgroup.remove()
    if oom_kills:
        notes.append(f"memory: the kernel's OOM killer ended {oom_kills} process(es) of the submission at its "
                     f"{limits.memory_bytes / (1 << 30):g} GiB limit")
    # The warm sandbox could not be built: grade this one cold. Only before any evidence came: the
    # first frame is written before any notebook code runs, so a notebook that prints the setup
    # error and exits with its status is not believed (and is graded on what it did).
    if zygote is not None and returncode == SETUP_FAILED and SETUP_ERROR.encode() in outs["stderr"] \
            and not any(streams.values()):
        raise SandboxUnavailable(outs["stderr"].decode(errors="replace").strip())
    for name, n in dropped.items():
        if n:
            notes.append(f"{n} bytes of raw {name} over the {limits.output_bytes} byte cap were dropped")
    return RawRun(streams, outs["stdout"], outs["stderr"], returncode, time.monotonic() - started, notes, killed,
                  plan["key"], peak, oom_kills, quiet)


def _launch_cold(plan, limits, uid, cgroup, data_steps, pipes, world_w, unsafe, notes) -> _Started:
    plan = dict(plan, fds=world_w)
    if unsafe:
        notes.append("WARNING: graded WITHOUT the sandbox (--unsafe-no-sandbox)")
        cmd = _python_argv(str(bundle_dir()), "runner.main()")
        if plan["standin"]:
            plan["standin"] = str(standin.configured_root())
    else:
        check_available()
        cmd = _bwrap_command(limits, uid if os.geteuid() == 0 else None, data_steps) + \
            _python_argv(BUNDLE_MOUNT, "runner.main()")

    def limit_child() -> None:
        cgroup.join()
        import resource

        for name, value in limits.rlimits().items():
            resource.setrlimit(getattr(resource, name), (value, value))

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=pipes["stdout"][1], stderr=pipes["stderr"][1],
                            pass_fds=world_w, env=sandbox_env(limits.gpu), preexec_fn=limit_child, start_new_session=True)
    try:
        proc.stdin.write(json.dumps(plan).encode())
        proc.stdin.close()
    except BrokenPipeError:
        pass

    def kill() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(timeout: float) -> int | None:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    return _Started(kill, wait)


def _launch_warm(zygote, plan, limits, uid, cgroup, data_steps, pipes, world_w) -> _Started:
    _, sock = zygote
    request = {"plan": plan, "layout": to_wire(layout(limits, data_steps)), "rlimits": limits.rlimits(), "uid": uid,
               "cgroups": cgroup.procs_files, "env": sandbox_env(limits.gpu), "cwd": SANDBOX_HOME}
    send_request(sock, request, [pipes["stdout"][1], pipes["stderr"][1], *world_w])
    reader = sock.makefile("rb")
    pid = json.loads(reader.readline())["pid"]
    state: dict = {}

    def kill() -> None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(timeout: float) -> int | None:
        if "exit" not in state:
            line = reader.readline()
            state["exit"] = json.loads(line)["exit"] if line else None
        return state["exit"]

    return _Started(kill, wait)


RAN_PAST = "the notebook ran past the"


def _collect(pipes: dict, worlds: list[str], limits: Limits, started: float):
    streams = {w: bytearray() for w in worlds}
    outs = {"stdout": bytearray(), "stderr": bytearray()}
    dropped = {"stdout": 0, "stderr": 0}
    sel = selectors.DefaultSelector()
    for name, (r, _) in pipes.items():
        sel.register(r, selectors.EVENT_READ, name)
    killed = None
    deadline = started + limits.submission_seconds
    last = {w: started for w in worlds}  # when each world's evidence last grew
    open_count = len(pipes)
    while open_count and not killed:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            killed = f"{RAN_PAST} {limits.submission_seconds:.0f} s limit for a whole submission"
            break
        for key, _ in sel.select(timeout=min(remaining, 1.0)):
            chunk = os.read(key.fd, 1 << 16)
            name = key.data
            if not chunk:
                sel.unregister(key.fd)
                open_count -= 1
            elif name in streams:
                streams[name] += chunk
                last[name] = time.monotonic()
                if len(streams[name]) > limits.evidence_bytes:
                    killed = "the notebook flooded the grader's evidence channel"
            else:
                room = max(0, limits.output_bytes - len(outs[name]))
                outs[name] += chunk[:room]
                dropped[name] += max(0, len(chunk) - room)
    sel.close()
    now = time.monotonic()
    return ({w: bytes(s) for w, s in streams.items()}, {k: bytes(v) for k, v in outs.items()}, dropped, killed,
            {w: round(now - t, 3) for w, t in last.items()})
