"""A warm fork server for the sandbox (runs next to student code; never runs any itself).

Importing torch, torchvision, medmnist and IPython costs seconds per process; forking a process
that already holds them costs milliseconds. The zygote is started once per worker, imports all
that and the sandbox-side modules (nothing of the trusted grader), then serves requests on a
Unix socket: each request carries a plan, the file-system layout and the pipes to write to.

For each request it forks a child that builds the same isolation a fresh bubblewrap sandbox
would, then runs the submission:

1. the child is forked into a new PID namespace, whose PID 1 it is (the zygote unshares the PID
   namespace for its next child only, and takes its own back after the fork): when it exits,
   every process the submission started dies with it;
2. it joins the submission's cgroups (v1: memory, pids, cpu; v2: its one group), makes itself a
   session leader, and unshares cgroup, mount, network, IPC and UTS namespaces;
3. builds a new root on tmpfs from the layout (read-only binds of the system, the Python
   installation, the venv, the data file; fresh tmpfs /tmp, home and /dev/shm; minimal /dev;
   /proc of the new namespace), pivots into it and detaches the old root;
4. sets the rlimits, drops to the submission's own uid (no capabilities, no_new_privs), closes
   every inherited descriptor but its pipes, and hands the plan to runner.run_plan.

Requires root (as the privileged bubblewrap path does); elsewhere the engine uses bubblewrap
per submission instead.
"""

from __future__ import annotations

import array
import ctypes
import json
import os
import platform
import resource
import socket
import struct
import sys

from . import layout, runner

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP = 0x00020000, 0x04000000, 0x08000000, 0x02000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 24, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine())
MAX_FDS = 16
SCRATCH = "/run/nb10-sandbox"  # an empty folder each child mounts its own tmpfs on
SETUP_FAILED, SETUP_ERROR = 70, "zygote: the sandbox could not be built:"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


_mount = layout.mount


def _pivot(root: str) -> None:
    old = root + "/.old-root"
    os.mkdir(old)
    _check(_libc.syscall(SYS_PIVOT_ROOT, root.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old-root", MNT_DETACH), "umount old root")
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _drop_bounding_set() -> None:
    """Clear the capability bounding set, as bubblewrap's path does (setpriv --bounding-set=-all):
    nothing exec'd later can regain a capability."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() not in (22,):  # EINVAL: no such cap
            raise OSError(ctypes.get_errno(), f"prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(ctypes.get_errno())}")


def _limit(limits: dict, uid: int) -> None:
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    _drop_bounding_set()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to another uid: every capability goes
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # if the process waiting outside is killed, PID 1 (and so the whole namespace) dies too;
    # set after setresuid, which clears it
    _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "pdeathsig")


def _sandboxed_child(request: dict, fds: list[int], pid_namespace_error: OSError | None) -> None:
    """In the forked child, PID 1 of its own PID namespace: isolate, then run the plan. Never returns."""
    code = SETUP_FAILED
    try:
        os.dup2(fds[1], 2)  # a failure to build the sandbox is reported on the submission's stderr
        if pid_namespace_error is not None:
            raise pid_namespace_error
        os.setsid()
        for procs in request["cgroups"]:  # v1: one per controller; v2: the submission's one group
            with open(procs, "w") as f:
                f.write("0")  # this process
        # its group is the root of what it can see of the cgroup tree, as bubblewrap's --unshare-cgroup-try
        # does; kernels without cgroup namespaces (before 4.6) go on without
        if _libc.unshare(CLONE_NEWCGROUP) != 0 and ctypes.get_errno() != 22:
            _check(-1, "unshare cgroup namespace")
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
        _mount(None, "/", None, MS_REC | MS_PRIVATE)
        _mount("tmpfs", SCRATCH, "tmpfs", 0, "size=1m,mode=755")  # in this mount namespace only
        root = SCRATCH + "/root"
        os.mkdir(root)
        _mount("tmpfs", root, "tmpfs", 0, "size=4m,mode=755")
        layout.build_root(layout.from_wire(request["layout"]), root)
        _pivot(root)
        stdout, stderr, *world_fds = fds
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        keep = {0, 1, 2, *world_fds}
        for fd in range(3, 1024):
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        _limit(request["rlimits"], request["uid"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        plan = dict(request["plan"], fds=world_fds)
        # PID 1 of a namespace ignores the signals its own processes send it (a notebook's
        # os.kill(os.getpid(), SIGSEGV) would do nothing), so the notebook runs as PID 2 and
        # PID 1 only waits for it, as bubblewrap's init does.
        child = os.fork()
        if child:
            for fd in world_fds:
                os.close(fd)
            while True:
                pid, status = os.waitpid(-1, 0)
                if pid == child:
                    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
        code = 0
    except BaseException as exc:  # the sandbox could not be built: say so on the submission's stderr
        try:
            os.write(2, f"{SETUP_ERROR} {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
        os._exit(code)
    runner.run_plan(plan)  # never returns


def _recv(sock: socket.socket) -> tuple[dict, list[int]] | None:
    header = sock.recv(4, socket.MSG_WAITALL)
    if len(header) < 4:
        return None
    (size,) = struct.unpack("!I", header)
    fds = array.array("i")
    msg, ancdata, _, _ = sock.recvmsg(size, socket.CMSG_LEN(MAX_FDS * fds.itemsize), socket.MSG_WAITALL)
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    while len(msg) < size:
        msg += sock.recv(size - len(msg), socket.MSG_WAITALL)
    return json.loads(msg), list(fds)


def send_request(sock: socket.socket, request: dict, fds: list[int]) -> None:
    body = json.dumps(request).encode()
    sock.sendall(struct.pack("!I", len(body)))
    socket.send_fds(sock, [body], fds)


def serve(fd: int, warm: bool = True) -> None:
    """Warm up, then fork one isolated child per request; report its pid and exit status.

    A request {"clone": true} with a socket forks a second zygote, already warm, serving on it:
    a pool of N workers imports everything once, not N times."""
    if warm:
        runner.warm_up()
        os.makedirs(SCRATCH, mode=0o755, exist_ok=True)
    sock = socket.socket(fileno=fd)
    own_pid_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    sock.sendall(b"READY\n")
    while True:
        received = _recv(sock)
        if received is None:
            return
        request, fds = received
        if request.get("clone"):
            if os.fork() == 0:
                sock.close()
                serve(fds[0], warm=False)
                os._exit(0)
            os.close(fds[0])
            continue
        runner.prepare(request["plan"])
        try:  # the next child is PID 1 of a new PID namespace
            _check(_libc.unshare(CLONE_NEWPID), "unshare PID namespace")
            error = None
        except OSError as exc:
            error = exc
        pid = os.fork()
        if pid == 0:
            sock.close()
            _sandboxed_child(request, fds, error)
        # later children (clones of this zygote, the next submission's) start in this namespace again
        _check(_libc.setns(own_pid_namespace, CLONE_NEWPID), "setns back to the zygote's PID namespace")
        for f in fds:
            os.close(f)
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        sock.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
