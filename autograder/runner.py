"""The untrusted side: runs one submission's code inside the sandbox and reports plain data.

This module (with ``probe.py`` and ``standin.py``) is copied into the sandbox as the package
``nb10_sandbox``; nothing else of the grader is visible there. It

1. reads the plan (JSON) from stdin: the submission's code cells, where each graded item is
   probed, the probes' seeds, the per-cell time limit and a per-run secret nonce;
2. imports torch and friends once, then forks: the *real world* (this machine as it is) and
   a *counterfactual world* (CUDA reported available, with tensors sent to "cuda" landing on
   PyTorch's data-less ``meta`` device; on a GPU machine, CUDA reported missing instead);
3. in each world, runs the cells in order in an IPython shell (magics and ``!`` shell escapes
   are answered with a note, not run), one cell's error never stopping the next, and at each
   graded item's place runs that item's probes (``probe.py``);
4. after every cell and every probe, writes a frame to its world's pipe (fd 3 or 4):
   ``NB10 <nonce> <seq> <meta length> <blob lengths>\\n``, then ``repr()`` of a dict of plain
   values and raw array bytes. Nothing is pickled. Work done before a crash or hang has already
   been sent.

Scores are never decided here. The trusted side recomputes everything it can; the nonce and
the sequence numbers only make forged frames harder to inject.
"""

from __future__ import annotations

import gc
import os
import re
import signal
import sys
import time

MAX_PLAN_BYTES = 4 << 20
CELL_OUTPUT_CAP = 20_000  # characters of stdout+stderr kept per cell
NOTE_OFFLINE = "[grader] not run: grading is offline and every package the notebook needs is installed."


def _make_plain():
    exact = (str, int, float, bool, type(None))

    def plain(value: object, depth: int = 0) -> object:
        """Only exact built-in types go into a frame: a student's object (a str subclass, say)
        could otherwise choose what repr() writes into the evidence stream."""
        kind = type(value)
        if kind in exact:
            return value
        if depth < 12 and kind in (list, tuple):
            return [plain(v, depth + 1) for v in value]
        if depth < 12 and kind is dict:
            return {k: plain(v, depth + 1) for k, v in value.items() if type(k) is str}
        return "<object>"

    return plain  # the recursion goes through this closure, not a module attribute


plain = _make_plain()


class CellTimeout(BaseException):
    """Raised in a cell that ran past its time limit."""


class _CappedText:
    """A stdout/stderr stand-in that keeps the first `cap` characters and counts the rest."""

    def __init__(self, cap: int) -> None:
        self.cap, self.parts, self.size, self.dropped = cap, [], 0, 0
        self.encoding, self.errors = "utf-8", "replace"

    def write(self, text: object) -> int:
        text = str(text)
        room = self.cap - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[grader] {self.dropped} more characters of output were dropped.\n"
        return out


_FRAME_ATTRS = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}


def _install_audit_guard() -> None:
    """Refuse the routes into the grader's own memory (cannot be removed once installed).

    Besides ctypes, the gc walkers, tracing and /proc/*/mem, student code may not take hold of
    a frame object itself (sys._getframe, inspect.currentframe, a traceback's or a generator's
    frame): from a frame it could walk up into the probe and the runner. Libraries that read
    frames for their own use (torch records a stack, IPython formats a traceback) still can.
    """
    blocked_prefixes = ("ctypes.", "gc.get_")
    blocked = {"sys._current_frames", "sys.settrace", "sys.setprofile", "sys.monitoring.register_callback"}
    getframe, basename, busy = sys._getframe, os.path.basename, [False]

    def asked_by_student() -> bool:
        """Whether the code asking (looking through inspect and traceback helpers) is a notebook cell."""
        busy[0] = True
        try:
            frame = getframe(2)
            while frame is not None and basename(frame.f_code.co_filename) in ("inspect.py", "traceback.py"):
                frame = frame.f_back
            return frame is not None and frame.f_code.co_filename.startswith("<ipython-input-")
        finally:
            busy[0] = False

    def guard(event: str, args: tuple) -> None:
        if busy[0]:
            return
        if (event == "sys._getframe" or (event == "object.__getattr__" and len(args) > 1
                                         and args[1] in _FRAME_ATTRS)) and asked_by_student():
            raise RuntimeError("[grader] frame objects are not available to the notebook while grading")
        if event.startswith(blocked_prefixes) or event in blocked:
            raise RuntimeError(f"[grader] {event} is not available while grading")
        if event == "object.__setattr__" and len(args) > 1 and args[1] == "__code__":
            raise RuntimeError("[grader] replacing a function's code is not available while grading")
        if event == "open" and args and isinstance(args[0], str) and args[0].startswith("/proc/") \
                and ("/mem" in args[0] or "/fd" in args[0]):
            raise RuntimeError("[grader] reading process memory is not available while grading")

    sys.addaudithook(guard)

    # A signal handler receives the interrupted frame: the notebook may ignore or reset
    # signals, not install Python handlers. The runner keeps the real function for its timer.
    import _signal
    import signal as signal_module

    real = _signal.signal

    def guarded(signalnum, handler):
        if callable(handler):
            raise RuntimeError("[grader] installing a Python signal handler is not available while grading")
        return real(int(signalnum), int(handler))  # SIG_IGN / SIG_DFL, as the C function wants them

    _signal.signal = signal_module.signal = guarded


_CELL_FILE = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>")


def _hide_grader_modules() -> None:
    """Drop the sandbox-side modules from sys.modules and __main__: the runner keeps its own
    references, and a notebook that imports them anew gets fresh copies, so patching those
    changes nothing the runner uses."""
    for name in [n for n in sys.modules if n == __package__ or n.startswith(f"{__package__}.")]:
        del sys.modules[name]
    main = sys.modules.get("__main__")
    for name, value in list(vars(main).items()) if main is not None else []:
        if getattr(value, "__name__", "").startswith(f"{__package__}"):
            delattr(main, name)


def _error_info(exc: BaseException, cell_of_run: dict[int, int], cells: list[dict]) -> dict:
    """Exception type, message, and the last line of the student's own code it passed through."""
    info = {"type": type(exc).__name__, "message": str(exc)[:500], "cell": None, "line": None, "code": None}
    tb = exc.__traceback__
    while tb is not None:
        match = _CELL_FILE.fullmatch(tb.tb_frame.f_code.co_filename)
        if match and int(match.group(1)) in cell_of_run:
            index = cell_of_run[int(match.group(1))]
            lines = cells[index]["source"].split("\n")
            lineno = tb.tb_lineno
            info.update(cell=index, line=lineno, code=lines[lineno - 1].strip() if 0 < lineno <= len(lines) else None)
        tb = tb.tb_next
    return info


def _make_shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.xmode = "Plain"
    shell = InteractiveShell.instance(config=config)  # made once; a fork inherits a pristine one

    def offline(*args: object, **kwargs: object) -> None:
        print(NOTE_OFFLINE)

    shell.system = shell.system_piped = offline  # `!cmd`
    shell.getoutput = lambda *a, **k: (print(NOTE_OFFLINE), [])[1]  # `x = !cmd`
    for name in ("pip", "conda", "mamba", "sx", "system", "sc"):
        shell.register_magic_function(lambda line="": print(NOTE_OFFLINE), "line", name)
    for name in ("bash", "sh", "script", "system", "capture_shell"):
        shell.register_magic_function(lambda line="", cell="": print(NOTE_OFFLINE), "cell", name)
    return shell


def _enter_counterfactual(torch) -> str:
    """Flip CUDA availability; where CUDA is faked, tensors sent there land on `meta`."""
    if torch.cuda.is_available():
        torch.cuda.is_available = lambda: False
        return "cuda-hidden"
    from torch.overrides import TorchFunctionMode

    meta = torch.device("meta")

    def swap(value):
        if isinstance(value, torch.device) and value.type == "cuda":
            return meta
        if isinstance(value, str) and value.startswith("cuda"):
            return "meta"
        return value

    import inspect

    batch_norm, functional_batch_norm = torch.batch_norm, torch.nn.functional.batch_norm
    functional_signature = inspect.signature(functional_batch_norm)
    verify_batch_size = getattr(torch.nn.functional, "_verify_batch_size", None)
    plain_tensor_types = (torch.Tensor, torch.nn.Parameter)

    def meta_batch_norm(func, args: tuple, kwargs: dict) -> object:
        """Batch norm on meta tensors without PyTorch's Python decomposition (which took most
        of this world's time, 5-10 ms a call): a tensor shaped like the input. Only where every
        check the real operation makes holds; otherwise None, and the real one runs (and
        raises its own error)."""
        if func is functional_batch_norm:
            try:
                bound = functional_signature.bind(*args, **kwargs)
            except TypeError:
                return None
            bound.apply_defaults()
            a = bound.arguments
            x, weight, bias, mean, var, training = (a["input"], a["weight"], a["bias"], a["running_mean"],
                                                    a["running_var"], a["training"])
            if training and verify_batch_size is None:
                return None
        elif func is batch_norm and not kwargs and len(args) == 9:
            x, weight, bias, mean, var, training = args[:6]
        else:
            return None
        if type(training) is not bool or not (type(x) in plain_tensor_types and x.device.type == "meta" and x.dim() >= 2):
            return None
        for t in (weight, bias, mean, var):
            if t is not None and not (type(t) in plain_tensor_types and t.device.type == "meta" and t.dim() == 1
                                      and t.shape[0] == x.shape[1] and t.dtype == x.dtype):
                return None
        if not training and (mean is None or var is None):
            return None
        if training and func is functional_batch_norm:
            verify_batch_size(x.size())  # "Expected more than 1 value per channel when training", as the real one
        return torch.empty_like(x)

    class CudaToMeta(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = {k: swap(v) for k, v in (kwargs or {}).items()}
            if func is torch.Tensor.cuda:
                return args[0].to(meta)
            if func is functional_batch_norm or func is batch_norm:
                shaped = meta_batch_norm(func, args, kwargs)
                if shaped is not None:
                    return shaped
            return func(*[swap(a) for a in args], **kwargs)

    # Nothing computed in this world is judged but where tensors end up, so filling fresh
    # weights with random numbers is skipped here (a model's construction is most of its cost).
    for name in ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "kaiming_uniform_",
                 "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "orthogonal_", "sparse_"):
        if hasattr(torch.nn.init, name):
            setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 1
    torch.cuda.current_device = lambda: 0
    torch.cuda.get_device_name = lambda *a, **k: "simulated GPU (grader)"
    CudaToMeta().__enter__()
    return "cuda-simulated"


def _warm_up_gpu(torch) -> float:
    """Create the CUDA context and load the convolution kernels before the first cell: on a
    real GPU that takes seconds, which no student's cell should be charged for."""
    started = time.monotonic()
    try:
        with torch.no_grad():
            x = torch.zeros(2, 3, 16, 16, device="cuda")
            torch.nn.functional.conv2d(x, torch.zeros(4, 3, 3, 3, device="cuda"), padding=1).sum().item()
    except Exception:  # a broken GPU shows up in the student's own cells, with their error
        pass
    return round(time.monotonic() - started, 3)


def run_world(world: str, plan: dict, fd: int, probe) -> None:
    nonce = plan["nonce"]
    # held before any student code runs: replacing these module attributes later changes nothing here
    os_write, to_text, run_probes, to_plain = os.write, repr, probe.run_probes, plain
    seq = [0]

    def send(meta: dict, blobs: list[bytes] = ()) -> None:
        body = to_text(to_plain(meta)).encode()
        header = f"NB10 {nonce} {seq[0]} {len(body)} {' '.join(str(len(b)) for b in blobs)}\n".encode()
        seq[0] += 1
        data = header + body + b"".join(blobs)
        view = memoryview(data)
        while view:
            written = os_write(fd, view)
            view = view[written:]

    import torch

    torch.set_num_threads(1)
    mode = "real" if world == "real" else _enter_counterfactual(torch)
    cuda = bool(torch.cuda.is_available())
    warm_gpu = _warm_up_gpu(torch) if mode == "real" and cuda else None
    send({"kind": "world", "world": world, "mode": mode, "cuda": cuda, "gpu_warm_up_seconds": warm_gpu})

    shell = _make_shell()
    namespace = shell.user_ns
    cells = plan["cells"]
    cell_of_run: dict[int, int] = {}  # IPython's execution number -> cell index
    time_limit = float(plan["cell_seconds"])

    def on_alarm(signum, frame):
        raise CellTimeout(f"the cell ran longer than {time_limit:.0f} s")

    import _signal

    set_handler, set_timer = _signal.signal, signal.setitimer  # the C functions, before the guard wraps them

    # A world needs the cells up to its last probe; the real world also runs the rest, whose
    # outputs the student sees in the feedback.
    last = max((i for i, c in enumerate(cells) if c["kind"] == "probe" and world in c["worlds"]), default=-1)
    stop = len(cells) if world == "real" else last + 1
    describe = _error_info
    _hide_grader_modules()
    _install_audit_guard()
    for index, cell in enumerate(cells[:stop]):
        if cell.get("skip"):
            continue
        if cell["kind"] == "probe":
            if world in cell["worlds"]:
                probe_started = time.monotonic()
                results, blobs = run_probes(cell["probes"], namespace, world=world, mode=mode,
                                       describe_error=lambda e: describe(e, cell_of_run, cells))
                send({"kind": "probe", "index": index, "item": cell["item"], "results": results,
                      "seconds": round(time.monotonic() - probe_started, 3)}, blobs)
            continue
        out = _CappedText(CELL_OUTPUT_CAP)
        old = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        started = time.monotonic()
        status, error = "ok", None
        try:
            set_handler(signal.SIGALRM, on_alarm)
            set_timer(signal.ITIMER_REAL, time_limit)
            cell_of_run[shell.execution_count] = index
            result = shell.run_cell(cell["source"], store_history=False, silent=False)
            exc = result.error_before_exec or result.error_in_exec
            if exc is not None:
                status = "timeout" if isinstance(exc, CellTimeout) else "error"
                error = describe(exc, cell_of_run, cells)
        except CellTimeout as exc:
            status, error = "timeout", {"type": "CellTimeout", "message": str(exc), "cell": index, "line": None, "code": None}
        finally:
            set_timer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = old
        shell.execution_count += 1
        send({"kind": "cell", "index": index, "status": status, "error": error, "output": out.text(),
              "seconds": round(time.monotonic() - started, 3)})
    send({"kind": "done"})


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

    from . import probe, standin  # noqa: F401  (a warm fork may not find these files any more)

    with torch.no_grad():
        torchvision.models.resnet18(weights=None).eval()(torch.zeros(1, 3, 32, 32))
    plt.close(plt.figure())
    _make_shell()
    # Every object made so far lives as long as the process: the collector should never walk
    # them again. Unfrozen, the first full collection in a fork touches every one of them and
    # copies most of the heap's pages (0.3 s of CPU per process, measured).
    gc.collect()
    gc.freeze()


def prepare(plan: dict) -> None:
    """Before forking: compute the plan's seed-derived values once (see probe.prepare)."""
    from . import probe

    probe.prepare(plan)


def run_plan(plan: dict) -> None:
    """Run a plan in this (already isolated) process: both worlds, one forked for the other."""
    from . import probe, standin

    if plan.get("standin"):
        standin.activate(__import__("pathlib").Path(plan["standin"]))
    worlds, fds = plan["worlds"], plan["fds"]
    child = os.fork() if len(worlds) > 1 else None
    mine = 1 if child == 0 else 0  # the forked process runs the second world
    if len(worlds) > 1:
        os.close(fds[1 - mine])
    code = 0
    try:
        run_world(worlds[mine], plan, fds[mine], probe)
    except BaseException:
        code = _report_crash()
    finally:
        if child:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
        sys.stdout.flush()
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
    import json

    plan = json.loads(sys.stdin.buffer.read(MAX_PLAN_BYTES))
    sys.stdin.close()
    warm_up()
    run_plan(plan)


if __name__ == "__main__":
    main()
