"""Run an autograder zip the way Gradescope does, on this machine (root, bubblewrap), for one notebook.

    python scripts/gradescope_emulate.py autograder.zip NOTEBOOK.ipynb --results out.json [--no-namespaces]

A fresh root laid out like Gradescope's: the zip unpacked into /autograder/source, the notebook in
/autograder/submission, /autograder/results empty, made with bubblewrap bind mounts so that the
zip's own scripts see the real paths; the system's /usr and /etc read-only, private /tmp and /run,
/sys read-only (a container's cgroupfs is), new PID namespace. The zip's setup.sh runs first with
NB10_PYTHON set to this checkout's venv (setup.sh's apt and pip steps need the internet and Ubuntu
22.04: they are skipped, its stand-in and permission steps run), then its run_autograder.

Capabilities: Docker's default set (no CAP_SYS_ADMIN: namespaces are refused, as in Gradescope's
containers) with --no-namespaces; otherwise all of root's (the bubblewrap sandbox starts).
Prints seconds for set-up and grading, and the run's peak memory (a memory cgroup around it,
page cache included) where this machine lets one be made. Exit status: run_autograder's.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

DOCKER_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
               "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")


def bwrap_command(autograder: Path, namespaces: bool) -> list[str]:
    cmd = ["bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
           "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run", "--ro-bind", "/sys", "/sys",
            "--bind", str(autograder), "/autograder"]
    made = set()
    for prefix in sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}):
        if not prefix.startswith("/usr"):
            for parent in reversed(Path(prefix).parents[:-1]):  # traversable by the student's uid (bwrap: 0700)
                if parent not in made:
                    made.add(parent)
                    cmd += ["--perms", "0755", "--dir", str(parent)]
            cmd += ["--ro-bind", prefix, prefix]
    if not namespaces:
        cmd += ["--cap-drop", "ALL"] + [arg for cap in DOCKER_CAPS for arg in ("--cap-add", f"CAP_{cap}")]
    return cmd + ["--chdir", "/autograder"]


class MemoryCgroup:
    """A v1 or v2 memory cgroup around the emulated run, where this machine lets one be made."""

    def __init__(self) -> None:
        name = f"nb10-gradescope-{secrets.token_hex(3)}"
        self.folder: Path | None = None
        for base, peak in ((Path("/sys/fs/cgroup/memory"), "memory.max_usage_in_bytes"),
                           (Path("/sys/fs/cgroup"), "memory.peak")):
            try:
                if (base / "cgroup.procs").exists():
                    folder = base / name
                    folder.mkdir()
                    if (folder / peak).exists():
                        self.folder, self.peak_file = folder, peak
                        return
                    folder.rmdir()
            except OSError:
                continue

    def join(self) -> None:  # in the child, before exec
        if self.folder is not None:
            (self.folder / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int | None:
        return int((self.folder / self.peak_file).read_text()) if self.folder is not None else None

    def remove(self) -> None:
        if self.folder is not None:
            for _ in range(50):
                try:
                    self.folder.rmdir()
                    return
                except OSError:
                    time.sleep(0.1)


def emulate(bundle: Path, notebook: Path, *, namespaces: bool, work: Path) -> dict:
    """Unpack, set up, run; what run_autograder wrote and the figures."""
    autograder = work / "autograder"
    source = autograder / "source"
    for folder in (source, autograder / "submission", autograder / "results"):
        folder.mkdir(parents=True)
    with zipfile.ZipFile(bundle) as archive:
        for info in archive.infolist():
            archive.extract(info, source)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                (source / info.filename).chmod(mode)
    shutil.copy2(source / "run_autograder", autograder / "run_autograder")  # as Gradescope's image build does
    shutil.copy2(notebook, autograder / "submission" / notebook.name)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root", "NB10_PYTHON": sys.executable}
    base = bwrap_command(autograder, namespaces)
    started = time.perf_counter()
    setup = subprocess.run(base + ["/bin/bash", "/autograder/source/setup.sh"], env=env, capture_output=True,
                           text=True, timeout=600)
    setup_seconds = time.perf_counter() - started
    if setup.returncode != 0:
        raise RuntimeError(f"setup.sh failed ({setup.returncode}): {setup.stderr[-2000:]}")
    cgroup = MemoryCgroup()
    started = time.perf_counter()
    try:
        run = subprocess.run(base + ["/autograder/run_autograder"], env=env, capture_output=True, text=True,
                             timeout=900, preexec_fn=cgroup.join)
        seconds = time.perf_counter() - started
        peak = cgroup.peak()
    finally:
        cgroup.remove()
    results = autograder / "results" / "results.json"
    return {"returncode": run.returncode, "stdout": run.stdout, "stderr": run.stderr, "setup_seconds": setup_seconds,
            "seconds": seconds, "peak_memory_bytes": peak,
            "results": json.loads(results.read_text()) if results.exists() else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("zip", type=Path)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--results", type=Path, help="copy results.json here")
    parser.add_argument("--no-namespaces", action="store_true", help="Docker's default capabilities (no CAP_SYS_ADMIN)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nb10-gradescope-") as work:
        out = emulate(args.zip, args.notebook, namespaces=not args.no_namespaces, work=Path(work))
    print(out["stdout"], end="")
    print(out["stderr"], end="", file=sys.stderr)
    peak = out["peak_memory_bytes"]
    print(f"emulation: set-up {out['setup_seconds']:.1f} s, run_autograder {out['seconds']:.1f} s, peak memory "
          + (f"{peak / 2**20:.0f} MiB" if peak else "not measured (no memory cgroup here)"))
    if args.results and out["results"] is not None:
        args.results.write_text(json.dumps(out["results"], indent=2) + "\n")
    return out["returncode"]


if __name__ == "__main__":
    sys.exit(main())
