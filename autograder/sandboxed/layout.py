"""The sandbox's file system, as typed steps: one meaning for both launchers.

The trusted side (sandbox.layout) lists the steps; the cold launcher hands them to bubblewrap
(``Step.bwrap()``: its command-line arguments), the warm one sends them to the zygote, which
carries them out itself under a fresh tmpfs root (``Step.build(root)``: mount calls). A step
crosses the wire as a plain list (``to_wire``/``from_wire``) and is typed again on arrival, so
neither side interprets ``["ro-bind", src, dst]`` lists by hand. Steps run in order: a later
step mounts over an earlier one.

This module runs on both sides (the zygote holds it in the sandbox): it imports only the
standard library.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import astuple, dataclass
from typing import ClassVar

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
DEVICES = ("null", "zero", "full", "random", "urandom")  # the device files /dev holds (a Dev step)

_libc = None


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    _check(_libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), ctypes.c_ulong(flags),
                       data and data.encode()), f"mount {target}")


def mkdirs(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)
    os.chmod(path, mode)


def bind(root: str, source: str, target: str, readonly: bool = True) -> None:
    dest = root + target
    if os.path.isdir(source):
        mkdirs(dest)
    else:
        mkdirs(os.path.dirname(dest))
        open(dest, "a").close()
    mount(source, dest, None, MS_BIND | MS_REC)
    if readonly:
        mount(None, dest, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


class Step:
    """One step of the layout. ``OP`` names it on the wire."""

    OP: ClassVar[str] = ""

    def bwrap(self) -> list[str]:
        raise NotImplementedError

    def build(self, root: str) -> None:
        raise NotImplementedError

    def to_wire(self) -> list:
        return [self.OP, *astuple(self)]


@dataclass(frozen=True)
class ReadOnly(Step):
    """A host file or folder shown read-only at `target` (nosuid, nodev)."""

    source: str
    target: str
    OP: ClassVar[str] = "ro-bind"

    def bwrap(self) -> list[str]:
        return ["--ro-bind", self.source, self.target]

    def build(self, root: str) -> None:
        bind(root, self.source, self.target)


@dataclass(frozen=True)
class Device(Step):
    """A host device file (a GPU's), usable inside."""

    source: str
    target: str
    OP: ClassVar[str] = "dev-bind"

    def bwrap(self) -> list[str]:
        return ["--dev-bind", self.source, self.target]

    def build(self, root: str) -> None:
        bind(root, self.source, self.target, readonly=False)


@dataclass(frozen=True)
class Symlink(Step):
    """A symbolic link at `path` pointing to `points_to` (as /bin -> usr/bin)."""

    points_to: str
    path: str
    OP: ClassVar[str] = "symlink"

    def bwrap(self) -> list[str]:
        return ["--symlink", self.points_to, self.path]

    def build(self, root: str) -> None:
        os.symlink(self.points_to, root + self.path)


@dataclass(frozen=True)
class Dir(Step):
    """An empty folder with the given octal mode ("0755")."""

    path: str
    mode: str
    OP: ClassVar[str] = "dir"

    def bwrap(self) -> list[str]:
        return ["--perms", self.mode, "--dir", self.path]

    def build(self, root: str) -> None:
        mkdirs(root + self.path, int(self.mode, 8))


@dataclass(frozen=True)
class Tmpfs(Step):
    """A private, size-capped tmpfs (writable), over whatever the path held before."""

    path: str
    size: int
    mode: str
    OP: ClassVar[str] = "tmpfs"

    def bwrap(self) -> list[str]:
        return ["--perms", self.mode, "--size", str(self.size), "--tmpfs", self.path]

    def build(self, root: str) -> None:
        if not os.path.isdir(root + self.path):  # over an existing folder (a read-only one) as it is
            mkdirs(root + self.path)
        mount("tmpfs", root + self.path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={self.size},mode={self.mode}")


@dataclass(frozen=True)
class Proc(Step):
    """A proc file system of the sandbox's own PID namespace."""

    path: str
    OP: ClassVar[str] = "proc"

    def bwrap(self) -> list[str]:
        return ["--proc", self.path]

    def build(self, root: str) -> None:
        mkdirs(root + self.path)
        mount("proc", root + self.path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


@dataclass(frozen=True)
class Dev(Step):
    """A minimal /dev: null, zero, full, random, urandom and the fd links, nothing else."""

    path: str
    OP: ClassVar[str] = "dev"

    def bwrap(self) -> list[str]:
        return ["--dev", self.path]

    def build(self, root: str) -> None:
        dev = root + self.path
        mkdirs(dev)
        mount("tmpfs", dev, "tmpfs", MS_NOSUID, "size=64k,mode=755")
        for name in DEVICES:
            bind(root, f"/dev/{name}", f"{self.path}/{name}", readonly=False)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"{dev}/{name}")


STEPS: dict[str, type[Step]] = {cls.OP: cls for cls in (ReadOnly, Device, Symlink, Dir, Tmpfs, Proc, Dev)}


def to_wire(steps: list[Step]) -> list[list]:
    return [step.to_wire() for step in steps]


def from_wire(wire: list[list]) -> list[Step]:
    """The steps of a request; an unknown step or a wrong number of fields raises ValueError."""
    steps = []
    for op, *fields in wire:
        if op not in STEPS:
            raise ValueError(f"unknown layout step {op!r}")
        try:
            steps.append(STEPS[op](*fields))
        except TypeError as exc:
            raise ValueError(f"layout step {op!r}: {exc}") from None
    return steps


def bwrap_args(steps: list[Step]) -> list[str]:
    """bubblewrap's arguments for the layout (the cold launcher)."""
    return [arg for step in steps for arg in step.bwrap()]


def build_root(steps: list[Step], root: str) -> None:
    """Carry out the layout under `root`, a fresh tmpfs (the zygote, for the warm launcher)."""
    for step in steps:
        step.build(root)
