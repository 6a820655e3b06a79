"""Per-submission control groups: memory, process count and CPU of a whole submission.

Which hierarchy is used is found out, not configured (`detect`):

* **v2** (unified): `/sys/fs/cgroup` is a cgroup2 file system (statfs magic), or on a hybrid
  machine the cgroup2 mount at `/sys/fs/cgroup/unified` offers memory and pids itself;
* **v1**: per-controller hierarchies under `/sys/fs/cgroup/<controller>` (a v1-only machine, or a
  hybrid one whose controllers are bound to v1, as on the 2-core development machine);
* **none**: neither is there or writable; grading then relies on rlimits alone, says so once
  on stderr and records it in every result.

`NB10_CGROUP=v1|v2|off` overrides the choice (v2 on a hybrid machine uses its unified
hierarchy even where it holds no controllers: groups, moves, `cgroup.kill` and events work, the
limits are left to rlimits and the results say which controllers were missing).

On v2 (the rules, as ioi/isolate 2.x and google/nsjail `--use_cgroupv2` follow them): controllers
are enabled top-down through `cgroup.subtree_control`, and a non-root group may enable them for
its children only while it holds no process itself. So the grading process works in the group it
was started in (a systemd scope started with `Delegate=yes`, or a container's own cgroup
namespace), moves the processes of that group into a leaf `nb10-grader` when enabling answers
EBUSY, enables `+memory +pids +cpu`, and makes one child group per submission beside the leaf:
`memory.max`, `memory.swap.max=0`, `pids.max`, `cpu.max`. When the submission ends its group
reports `memory.peak` and `memory.events`'s `oom_kill`, is emptied with `cgroup.kill` and removed.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
ENV = "NB10_CGROUP"  # auto (default), v1, v2 or off
LEAF = "nb10-grader"  # where the grading process's group puts its own processes on v2
CONTROLLERS = ("memory", "pids", "cpu")
CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC = 0x63677270, 0x27E0EB, 0x01021994
CPU_PERIOD_US = 100_000
UNAVAILABLE = "cgroup limits: not available here (rlimits only)"

log = logging.getLogger("autograder.cgroups")
_libc = ctypes.CDLL(None, use_errno=True)


def fs_magic(path: Path) -> int | None:
    """The file system type (statfs f_type) of `path`; None where it cannot be read."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on x86_64 and aarch64
    if _libc.statfs(str(path).encode(), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


@dataclass(frozen=True)
class Hierarchy:
    """What this machine mounts: `kind` is v2, hybrid, v1 or none; `unified` the cgroup2 mount."""

    kind: str
    unified: Path | None
    v1: tuple[str, ...]  # controllers bound to v1 hierarchies

    def choose(self) -> str:
        """v1 or v2 (or none) for the limits, by what holds memory and pids here."""
        forced = os.environ.get(ENV, "auto").strip().lower()
        if forced in ("off", "none", "0", "no"):
            return "none"
        if forced == "v2":
            return "v2" if self.unified else "none"
        if forced == "v1":
            return "v1" if self.v1 else "none"
        if self.kind == "v2":
            return "v2"
        if self.kind == "hybrid" and {"memory", "pids"} <= set(controllers(self.unified)):
            return "v2"
        return "v1" if self.v1 else "none"


def controllers(group: Path | None) -> list[str]:
    try:
        return (group / "cgroup.controllers").read_text().split() if group else []
    except OSError:
        return []


def detect(root: Path = ROOT) -> Hierarchy:
    magic = fs_magic(root)
    if magic == CGROUP2_SUPER_MAGIC:
        return Hierarchy("v2", root, ())
    if magic is None:
        return Hierarchy("none", None, ())
    unified = root / "unified"
    unified_ok = fs_magic(unified) == CGROUP2_SUPER_MAGIC
    v1: list[str] = []
    try:
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.is_symlink() and fs_magic(entry) == CGROUP_SUPER_MAGIC:
                v1 += [name for name in entry.name.split(",") if name in CONTROLLERS and name not in v1]
    except OSError:
        pass
    if v1:
        return Hierarchy("hybrid" if unified_ok else "v1", unified if unified_ok else None, tuple(v1))
    return Hierarchy("v2" if unified_ok else "none", unified if unified_ok else None, ())


def own_group(mount: Path, proc_cgroup: str = "/proc/self/cgroup") -> Path | None:
    """This process's v2 group (the `0::` line), as a folder under `mount`."""
    try:
        for line in Path(proc_cgroup).read_text().splitlines():
            if line.startswith("0::"):
                return mount / line[3:].strip().lstrip("/")
    except OSError:
        pass
    return None


def systemd_refusal(parent: Path, mount: Path, under_systemd: bool | None = None) -> str | None:
    """Why we must not make groups under `parent`: systemd manages it and did not delegate it.
    systemd marks a unit started with Delegate=yes with the xattr trusted.delegate (or user.delegate)."""
    if under_systemd is None:
        under_systemd = os.path.isdir("/run/systemd/system")
    if not under_systemd:
        return None
    group = parent
    while group != mount and mount in group.parents:
        if group.name.endswith((".scope", ".service")):
            for attr in ("trusted.delegate", "user.delegate"):
                try:
                    if os.getxattr(group, attr) == b"1":
                        return None
                except OSError:
                    pass
            break
        group = group.parent
    rel = "/" + str(parent.relative_to(mount)) if parent != mount else "/"
    return (f"the grading process's cgroup {rel} belongs to systemd and is not delegated to it: start it with "
            "`systemd-run --scope -p Delegate=yes autograder ...` (or a unit with Delegate=yes)")


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


@dataclass(frozen=True)
class V2Parent:
    """The group submissions' groups are made in, and the controllers enabled for them."""

    path: Path
    controllers: tuple[str, ...]
    missing: tuple[str, ...]
    moved: bool  # the grading process's group was split into a leaf first


def prepare_v2(mount: Path, wanted: tuple[str, ...] = CONTROLLERS, under_systemd: bool | None = None) -> V2Parent:
    """Make the grading process's v2 group ready to hold one child group per submission; raise
    OSError saying why where it cannot (read-only cgroupfs, no delegation)."""
    group = own_group(mount)
    if group is None or not group.is_dir():
        raise OSError(errno.ENOENT, f"this process's cgroup v2 group is not under {mount}")
    parent = group.parent if group.name == LEAF else group
    refusal = systemd_refusal(parent, mount, under_systemd)
    if refusal:
        raise OSError(errno.EPERM, refusal)
    if not os.access(parent, os.W_OK):
        raise OSError(errno.EROFS, f"{parent} is not writable (a container needs --privileged or a writable, "
                                   "delegated cgroupfs)")
    offered = controllers(parent)
    enable = tuple(c for c in wanted if c in offered)
    moved = False
    if enable:
        request = " ".join("+" + c for c in enable)
        try:
            _write(parent / "cgroup.subtree_control", request)
        except OSError as exc:
            if exc.errno != errno.EBUSY:  # EBUSY: the group holds processes (the no-internal-processes rule)
                raise
            leaf = parent / LEAF
            leaf.mkdir(exist_ok=True)
            for pid in [str(os.getpid()), *(parent / "cgroup.procs").read_text().split()]:
                try:
                    _write(leaf / "cgroup.procs", pid)
                except OSError:  # gone meanwhile, or a kernel thread
                    pass
            _write(parent / "cgroup.subtree_control", request)
            moved = True
    return V2Parent(parent, enable, tuple(c for c in wanted if c not in enable), moved)


class NoGroup:
    """No cgroup for this submission: rlimits alone."""

    def __init__(self, why: str = "") -> None:
        self.why = why

    procs_files: list[str] = []

    def join(self) -> None:
        pass

    def kill_all(self) -> None:
        pass

    def peak_memory(self) -> int | None:
        return None

    def oom_kills(self) -> int | None:
        return None

    @property
    def note(self) -> str:
        return f"{UNAVAILABLE}: {self.why}" if self.why else UNAVAILABLE

    def remove(self) -> None:
        pass


class V1Group(NoGroup):
    """v1 memory + pids + cpu groups for one submission, under this process's own v1 groups."""

    def __init__(self, name: str, memory_bytes: int, processes: int) -> None:
        super().__init__()
        self.dirs: list[Path] = []
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            _, names, path = line.split(":", 2)
            # cpu: each submission is one group with an equal share, however many processes it starts
            for controller, files in (("memory", {"memory.limit_in_bytes": memory_bytes}),
                                      ("pids", {"pids.max": processes}), ("cpu", {})):
                if controller not in names.split(","):
                    continue
                folder = ROOT / controller / path.lstrip("/") / name
                try:
                    folder.mkdir(exist_ok=True)
                    for fname, value in files.items():
                        _write(folder / fname, str(value))
                    self.dirs.append(folder)
                except OSError:
                    continue

    @property
    def procs_files(self) -> list[str]:  # type: ignore[override]
        return [str(d / "cgroup.procs") for d in self.dirs]

    def join(self) -> None:  # in a child, before it execs
        for procs in self.procs_files:
            try:
                _write(Path(procs), str(os.getpid()))
            except OSError:
                pass

    def kill_all(self) -> None:
        for folder in self.dirs:
            _kill_listed(folder)

    def peak_memory(self) -> int | None:
        for folder in self.dirs:
            if (folder / "memory.max_usage_in_bytes").exists():
                return int((folder / "memory.max_usage_in_bytes").read_text())
        return None

    def oom_kills(self) -> int | None:
        for folder in self.dirs:
            found = _key_value(folder / "memory.oom_control", "oom_kill")  # kernel 4.13+
            if found is not None:
                return found
        return None

    @property
    def note(self) -> str:
        return ("cgroups (v1): " + ", ".join(d.relative_to(ROOT).parts[0] for d in self.dirs) if self.dirs
                else UNAVAILABLE)

    def remove(self) -> None:
        for folder in self.dirs:
            _rmdir(folder, self.kill_all)


class V2Group(NoGroup):
    """One v2 child group for one submission, beside the grading process's leaf."""

    def __init__(self, name: str, memory_bytes: int, processes: int, cpus: float, parent: V2Parent) -> None:
        super().__init__()
        self.parent = parent
        self.folder = parent.path / name
        self.folder.mkdir()
        self.limits: list[str] = []
        values = {"memory": [("memory.max", str(memory_bytes)), ("memory.swap.max", "0")],
                  "pids": [("pids.max", str(processes))],
                  "cpu": [("cpu.max", f"{int(cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")]}
        try:
            for controller in parent.controllers:
                for fname, value in values.get(controller, []):
                    if fname == "memory.swap.max" and not (self.folder / fname).exists():
                        continue  # no swap accounting on this kernel: nothing to limit
                    _write(self.folder / fname, value)
                    self.limits.append(fname)
        except OSError:
            self.folder.rmdir()
            raise

    @property
    def procs_files(self) -> list[str]:  # type: ignore[override]
        return [str(self.folder / "cgroup.procs")]

    def join(self) -> None:  # in a child, before it execs; where it cannot, the rlimits still hold
        try:
            _write(self.folder / "cgroup.procs", str(os.getpid()))
        except OSError:
            pass

    def populated(self) -> bool:
        return _key_value(self.folder / "cgroup.events", "populated") == 1

    def kill_all(self) -> None:
        try:
            _write(self.folder / "cgroup.kill", "1")  # kernel 5.14+: every process, even ones forking now
        except OSError:
            _kill_listed(self.folder)

    def peak_memory(self) -> int | None:
        try:
            return int((self.folder / "memory.peak").read_text())  # kernel 5.19+
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int | None:
        return _key_value(self.folder / "memory.events", "oom_kill")

    @property
    def note(self) -> str:
        text = "cgroups (v2): " + (", ".join(self.limits) if self.limits else "no limits")
        if self.parent.missing:
            text += (f"; {', '.join(self.parent.missing)} not available in this cgroup v2 hierarchy "
                     "(rlimits limit the submission instead)")
        return text

    def remove(self) -> None:
        self.kill_all()
        deadline = time.monotonic() + 5
        while self.populated() and time.monotonic() < deadline:
            time.sleep(0.01)
        _rmdir(self.folder, self.kill_all)


def _key_value(path: Path, key: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return None


def _kill_listed(folder: Path) -> None:
    try:
        for pid in (folder / "cgroup.procs").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _rmdir(folder: Path, kill) -> None:
    for _ in range(100):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            kill()
            time.sleep(0.02)


@lru_cache(maxsize=1)
def _setup() -> tuple[str, V2Parent | None, str]:
    """Once per process: v1, v2 (with its parent group) or none, and why none."""
    hierarchy = detect()
    choice = hierarchy.choose()
    if choice == "v2":
        try:
            return "v2", prepare_v2(hierarchy.unified), ""
        except OSError as exc:
            why = f"cgroup v2 at {hierarchy.unified}: {exc.strerror or exc}"
            _say_once(why)
            return "none", None, why
    if choice == "none":
        why = {"off": f"{ENV}=off"}.get(os.environ.get(ENV, "").strip().lower(), f"no usable cgroup hierarchy "
                                                                                   f"({hierarchy.kind})")
        _say_once(why)
        return "none", None, why
    return "v1", None, ""


def _say_once(why: str) -> None:
    log.warning("%s: %s; every result records it", UNAVAILABLE, why)


def for_submission(name: str, memory_bytes: int, processes: int, cpus: float) -> NoGroup:
    """The group(s) one submission runs in: v1 or v2 as detected, or none (the note says why)."""
    kind, parent, why = _setup()
    if kind == "v2" and parent is not None:
        try:
            return V2Group(name, memory_bytes, processes, cpus, parent)
        except OSError as exc:
            return NoGroup(f"cgroup v2 group {parent.path / name} could not be made: {exc.strerror or exc}")
    if kind == "v1":
        return V1Group(name, memory_bytes, processes)
    return NoGroup(why)


def describe() -> str:
    """One line: the hierarchy this machine mounts, and what limits a submission here."""
    hierarchy = detect()
    kind, parent, why = _setup()
    text = f"cgroup: {hierarchy.kind} hierarchy"
    if kind == "v2" and parent is not None:
        text += f"; limits by v2 in {parent.path} ({', '.join(parent.controllers) or 'no controllers'})"
        if parent.missing:
            text += f"; missing: {', '.join(parent.missing)}"
        if parent.moved:
            text += f"; this process's group was split into {LEAF} first"
    elif kind == "v1":
        text += f"; limits by v1 ({', '.join(hierarchy.v1)})"
    else:
        text += f"; {UNAVAILABLE}: {why}"
    return text


if __name__ == "__main__":
    print(describe())
