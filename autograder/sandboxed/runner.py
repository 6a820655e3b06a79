"""The untrusted side's entry: runs one submission's code inside the sandbox and reports plain data.

This module (with the rest of autograder/sandboxed/) is copied into the sandbox as the package
``nb10_sandbox``, each assignment's sandbox-side files as ``nb10_sandbox.plugins.ID``; nothing
else of the grader is visible there. For a submission it

1. reads the plan (JSON, from stdin or the zygote): the code cells, where each graded item is
   checked, the checks' seeds, the per-cell time limit and the key that signs the evidence;
2. hardens the process (no longer dumpable: its memory cannot be opened through /proc; a
   seccomp filter against new namespaces, ptrace and friends), then forks: the *real world*
   (this machine as it is) and a *counterfactual world* (CUDA reported available, with tensors
   sent to "cuda" landing on PyTorch's data-less ``meta`` device; on a GPU machine, CUDA
   reported missing instead);
3. in each world, loads the grader's side (core.py, probe.py and the plan's assignment's
   probes.py) into private namespaces and
   hands it the world: the grader stays on this process's main thread, the notebook's cells
   run on a thread of their own in an IPython shell (shell escapes are answered with a note),
   one cell's error never stopping the next, and at each graded item's place the grader runs
   that item's checks (probe.py);
4. after every cell and every check, writes a signed frame to its world's pipe (fd 3 or 4).

Scores are never decided here. The trusted side recomputes everything it can, and believes a
frame only when its signature, its place in the plan and its order are right.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import types

MAX_PLAN_BYTES = 4 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = __package__ or "nb10_sandbox"
PLUGINS = "plugins"  # plugins/ID/: an assignment's sandbox-side files (its probes.py and what it imports)


def _find_plugins() -> tuple[str, ...]:
    try:
        names = sorted(os.listdir(os.path.join(HERE, PLUGINS)))
    except OSError:
        return ()
    return tuple(n for n in names if os.path.isfile(os.path.join(HERE, PLUGINS, n, "probes.py")))


def _find_plugin_modules(assignment: str) -> tuple[str, ...]:
    """An assignment's sandbox-side modules other than its probes (its seeded contract)."""
    names = sorted(os.listdir(os.path.join(HERE, PLUGINS, assignment)))
    return tuple(n[:-3] for n in names if n.endswith(".py") and n not in ("probes.py", "__init__.py"))


# Listed once, at import: a warm zygote's forks may not see this folder any more.
_PLUGIN_IDS = _find_plugins()
_PLUGIN_MODULES = {assignment: _find_plugin_modules(assignment) for assignment in _PLUGIN_IDS}


def _plugin_ids() -> tuple[str, ...]:
    return _PLUGIN_IDS


# The grader-side modules executed privately (load_core): the generic ones, and the probes of the
# plan's assignment (its plug-in's plugins/ID/probes.py).
_PRIVATE_SOURCES = ("core", "probe")
_compiled: dict[str, types.CodeType] = {}


def _private_sources(assignment: str | None = None) -> tuple[str, ...]:
    plugin = f"{PLUGINS}.{assignment}.probes"
    return _PRIVATE_SOURCES + ((plugin,) if assignment in _plugin_ids() else ())


def _private_path(name: str) -> str:
    return os.path.join(HERE, *name.split(".")) + ".py"


def _compile_private(names: tuple[str, ...] = _PRIVATE_SOURCES) -> None:
    """The grader-side modules' code, compiled once (a warm zygote's forks may not find the files)."""
    for name in names:
        if name not in _compiled:
            path = _private_path(name)
            with open(path, encoding="utf-8") as f:
                _compiled[name] = compile(f.read(), path, "exec", dont_inherit=True)


def _import_plugins(assignments: tuple[str, ...]) -> None:
    """The assignments' sandbox-side modules other than their probes (their seeded contracts),
    imported as usual: the private probes import them."""
    import importlib

    for assignment in assignments:
        for name in _PLUGIN_MODULES.get(assignment, ()):
            importlib.import_module(f"{PACKAGE}.{PLUGINS}.{assignment}.{name}")


def _warm_plugins() -> None:
    """Every assignment's sandbox side, ready before the fork; one that fails to load here fails
    only its own submissions (when load_core loads it again for them)."""
    for assignment in _plugin_ids():
        try:
            _import_plugins((assignment,))
            _compile_private(_private_sources(assignment))
        except Exception:
            pass


def warm_up() -> None:
    """Import (and exercise once) what every submission needs, so forks of this process start warm."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import medmnist  # noqa: F401  (pulls in scikit-learn and pandas)
    import numpy  # noqa: F401
    import torch
    import torchvision

    from . import standin, student_side  # noqa: F401  (a warm fork may not find these files any more)

    _warm_plugins()

    with torch.no_grad():
        torchvision.models.resnet18(weights=None).eval()(torch.zeros(1, 3, 32, 32))
    plt.close(plt.figure())
    student_side.make_shell()
    student_side._make_cuda_to_meta()
    _compile_private()
    # Every object made so far lives as long as the process: the collector should never walk
    # them again. Unfrozen, the first full collection in a fork touches every one of them and
    # copies most of the heap's pages (0.3 s of CPU per process, measured).
    gc.collect()
    gc.freeze()


def prepare(plan: dict) -> None:
    """Before forking: what the plan's assignment computes ahead for a whole class (the ``prepare(plan)``
    of its sandbox-side modules other than its probes, such as seed-derived values)."""
    import importlib

    assignment = plan.get("assignment")
    for name in _PLUGIN_MODULES.get(assignment, ()):
        module = importlib.import_module(f"{PACKAGE}.{PLUGINS}.{assignment}.{name}")
        if callable(getattr(module, "prepare", None)):
            module.prepare(plan)


# ---- hardening -------------------------------------------------------------------------------------

PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1
SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}


def harden(seccomp_program: str | None) -> list[str]:
    """Make this process's memory unreadable through /proc (not dumpable), and install the seccomp
    filter the trusted side built (sandbox.seccomp_program: no new user namespaces, ptrace,
    process_vm_*, bpf, perf_event_open, keyrings, mounts, module loading, re-enabling dumping),
    on every thread. Returns notes for the evidence (what could not be done here)."""
    import ctypes
    import platform

    notes = []
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        notes.append("hardening: could not make the process non-dumpable")
    if not seccomp_program:
        notes.append("hardening: no seccomp filter (libseccomp is not available to the grader)")
        return notes
    program = bytes.fromhex(seccomp_program)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # already set by the sandbox; needed without one
    number = SYS_SECCOMP.get(platform.machine())
    if number is None or libc.syscall(number, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
                                      ctypes.byref(fprog)) != 0:
        notes.append(f"hardening: the seccomp filter could not be installed ({os.strerror(ctypes.get_errno())})")
    return notes


# ---- the grader's side, privately ---------------------------------------------------------------------

def _trusted_roots() -> tuple[str, ...]:
    import sysconfig

    roots = {HERE + os.sep, "<frozen "}
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths().get("stdlib"),
                 sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")):
        if path:
            roots.add(os.path.join(path, ""))
            roots.add(os.path.join(os.path.realpath(path), ""))
    return tuple(sorted(roots))


def _pass_through_codes() -> frozenset:
    """Library functions whose job is to hand a frame to their caller: the guard looks through
    them to whoever called them."""
    import inspect
    import logging
    import traceback

    functions = [inspect.currentframe, inspect.stack, inspect.trace, inspect.getouterframes, inspect.getinnerframes,
                 traceback.walk_stack, traceback.walk_tb, logging.currentframe]
    return frozenset(f.__code__ for f in functions if hasattr(f, "__code__"))


def load_core(assignment: str | None = None) -> tuple[dict, dict]:
    """core.py, probe.py and each assignment's probes executed into fresh module namespaces whose
    builtins are a copy made now, before any notebook code: replacing a builtin later changes
    nothing they call. The modules are not left in sys.modules. The probes of `assignment` (the
    plan's) are handed to probe.py (its PLUGINS, by assignment id)."""
    import builtins

    sources = _private_sources(assignment)
    _compile_private(sources)
    _import_plugins(tuple(name.split(".")[1] for name in sources if name.startswith(f"{PLUGINS}.")))
    private_builtins = dict(builtins.__dict__)
    namespaces = {}
    saved = {name: sys.modules.get(f"{PACKAGE}.{name}") for name in sources}
    try:
        for name in sources:
            module = types.ModuleType(f"{PACKAGE}.{name}")
            package = f"{PACKAGE}.{name.rsplit('.', 1)[0]}" if "." in name else PACKAGE
            module.__dict__.update(__builtins__=private_builtins, __package__=package, __file__=_private_path(name))
            if name == "core":
                module.__dict__["PLAN_ASSIGNMENT"] = assignment  # whose job modules it watches (_job_modules)
            sys.modules[module.__name__] = module  # so that probe's `from .core import ...` gets this core
            exec(_compiled[name], module.__dict__)
            namespaces[name] = module.__dict__
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(f"{PACKAGE}.{name}", None)
            else:
                sys.modules[f"{PACKAGE}.{name}"] = old
    namespaces["probe"]["PLUGINS"].update({name.split(".")[1]: namespaces[name] for name in sources
                                           if name.startswith(f"{PLUGINS}.")})
    return namespaces["core"], namespaces["probe"]


def _hide_grader_modules() -> None:
    """Drop the sandbox-side modules from sys.modules and __main__: the notebook that imports them
    anew gets fresh copies, which the grader does not use."""
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    main = sys.modules.get("__main__")
    for name, value in list(vars(main).items()) if main is not None else []:
        if getattr(value, "__name__", "").startswith(PACKAGE):
            delattr(main, name)


def run_world(world: str, plan: dict, fd: int, key: bytes, notes: list[str], others: tuple = ()) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from . import student_side

    core, probe = load_core(plan.get("assignment"))
    shell = InteractiveShell.instance()
    import signal as signal_module
    import _signal

    # A Python signal handler would run on the main thread, where the grader is: the notebook may
    # ignore or reset signals only. SIGINT is ignored, so that it cannot interrupt the grader.
    _signal.signal(int(signal_module.SIGINT), int(signal_module.SIG_IGN))
    _signal.signal = signal_module.signal = student_side.make_signal_guard(_signal.signal)
    os.fork = student_side.make_fork(os.fork)
    import inspect
    import logging  # noqa: F401  (its currentframe is looked through by the guard)

    guard_args = (_trusted_roots(), _pass_through_codes(), os.path.join(os.path.dirname(inspect.getfile(
        __import__("ctypes"))), ""), frozenset(_private_path(name) for name in _private_sources(plan.get("assignment"))))
    core["run_world"](world, plan, fd, key, shell, probe, guard_args, _hide_grader_modules, notes, others)


def run_plan(plan: dict) -> None:
    """Run a plan in this (already isolated) process: both worlds, one forked for the other."""
    from . import standin

    if plan.get("standin"):
        standin.activate(__import__("pathlib").Path(plan["standin"]))
    key = bytearray.fromhex(plan.pop("key"))
    worlds, fds = plan["worlds"], plan["fds"]
    notes = harden(plan.pop("seccomp", None))
    child = os.fork() if len(worlds) > 1 else None
    mine = 1 if child == 0 else 0  # the forked process runs the second world
    if len(worlds) > 1:
        os.close(fds[1 - mine])
    if mine == 1 and os.path.exists("/dev/nvidiactl"):
        # A GPU is shown: the second world is a machine without one, for CUDA itself (not only for
        # torch.cuda.is_available()), so that a notebook that hard-codes "cuda" fails there as it
        # would on a CPU-only machine. CUDA reads this when first used, which is after the fork.
        from . import student_side

        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        student_side.GPU_HIDDEN[0] = True
    code = 0
    try:
        run_world(worlds[mine], plan, fds[mine], key, notes, (child,) if child else ())
    except BaseException:
        code = _report_crash()
    finally:
        if child:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
        try:
            sys.stdout.flush()
        except BaseException:
            pass
        os._exit(code)


def _report_crash() -> int:
    """The runner itself failed (not a cell): say so on the real stderr, exit non-zero."""
    import traceback

    try:
        os.write(2, ("runner: " + traceback.format_exc()).encode(errors="replace"))
    except BaseException:
        pass
    return 71


def main() -> None:
    """Entry point inside a fresh bubblewrap sandbox: the plan arrives on stdin."""
    plan = json.loads(sys.stdin.buffer.read(MAX_PLAN_BYTES))
    sys.stdin.close()
    warm_up()
    prepare(plan)
    run_plan(plan)


if __name__ == "__main__":
    main()
