"""What runs on the notebook's own thread, and everything the grader puts into the notebook's world.

The runner (``core.py``) keeps the grader on the process's main thread and runs the notebook on a
second thread whose stack starts here, in ``serve``: no frame of the grader is ever below the
notebook's code, so walking frames (``f_back``, tracebacks, generators) reaches nothing but
this module and the notebook itself. Nothing here refers to the grader's modules, and nothing
here is trusted: the notebook may read or patch all of it. The grader only believes

* what ``serve`` holds in its own frame locals (which Python code cannot rebind): the job it
  was given and ``(job, outcome)`` once the job returned; and
* what it reads itself, from the main thread, through torch's C accessors.

A job is ``(function, arguments)``. Its outcome is ``("ok", value)`` or ``("raised", facts)``,
where facts are plain text about the exception. The functions below are the jobs the grader
sends: run a cell, build an object, call a method, run a block without gradients.
"""

from __future__ import annotations

import re
import sys
import time

CELL_OUTPUT_CAP = 20_000  # characters of stdout+stderr kept per cell
NOTE_OFFLINE = "[grader] not run: grading is offline and every package the notebook needs is installed."
_CELL_FILE = re.compile(r"<ipython-input-(\d+)-[0-9a-f]+>")
CELLS: dict = {}  # IPython's execution number -> (cell index, source), for the line an error came from


def _torch_module_api():
    """torch's Module API the jobs use, taken when this module loads (before any notebook code), so
    that a notebook replacing nn.Module.register_forward_hook does not switch off what the jobs see."""
    import torch

    return torch.nn.Module.register_forward_hook


_register_forward_hook = _torch_module_api()


class CellTimeout(BaseException):
    """Raised in a cell that ran past its time limit (put into the notebook's thread by the grader)."""


class CappedText:
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


def serve(go, done, box) -> None:
    """The notebook thread's loop: wait for a job, run it, keep its outcome in a local, say done.

    `job` and `result` are fast locals of this frame: the grader reads them from the main thread
    (sys._current_frames), and no Python code on this thread can rebind them."""
    job = None
    result = None
    while True:
        go.acquire()
        job = box[0]
        try:  # the job itself, called here: what the grader reads is what it returned
            result = (job, ("ok", job[0](*job[1])))
        except BaseException as exc:  # CellTimeout, SystemExit, KeyboardInterrupt: all reported, none escapes
            try:
                result = (job, ("raised", error_facts(exc)))
            except BaseException:
                result = (job, ("raised", {"type": "Exception", "message": "", "cell": None, "line": None,
                                           "code": None}))
        done.release()


def error_facts(exc: BaseException) -> dict:
    """Exception type, message, and the last line of the notebook's own code it passed through."""
    cells = CELLS
    facts = {"type": type(exc).__name__, "message": str(exc)[:500], "cell": None, "line": None, "code": None}
    if isinstance(exc, SyntaxError):  # raised by the compiler: its line is in the exception, not a frame
        text = exc.text if isinstance(exc.text, str) else None
        facts.update(message=str(exc.msg)[:500], line=exc.lineno if isinstance(exc.lineno, int) else None,
                     code=text.strip() if text else None)
    tb = exc.__traceback__
    while tb is not None:
        match = _CELL_FILE.fullmatch(tb.tb_frame.f_code.co_filename)
        if match and int(match.group(1)) in cells:
            index, source = cells[int(match.group(1))]
            lines = source.split("\n")
            lineno = tb.tb_lineno
            facts.update(cell=index, line=lineno, code=lines[lineno - 1].strip() if 0 < lineno <= len(lines) else None)
        tb = tb.tb_next
    return facts


# ---- jobs ---------------------------------------------------------------------------------------

def run_cell(shell, source: str, index: int) -> dict:
    """Run one code cell in the IPython shell; its output is captured, its error described."""
    out = CappedText(CELL_OUTPUT_CAP)
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = out
    started = time.monotonic()
    status, error = "ok", None
    try:
        CELLS[shell.execution_count] = (index, source)
        result = shell.run_cell(source, store_history=False, silent=False)
        exc = result.error_before_exec or result.error_in_exec
        if exc is not None:
            status = "timeout" if isinstance(exc, CellTimeout) else "error"
            error = error_facts(exc)
    except CellTimeout as exc:
        status, error = "timeout", {"type": "CellTimeout", "message": str(exc), "cell": index, "line": None,
                                    "code": None}
    finally:
        sys.stdout, sys.stderr = old
        shell.execution_count += 1
    return {"status": status, "error": error, "output": out.text(), "seconds": round(time.monotonic() - started, 3)}


def quietly(function, *args):
    """Call a function of the notebook's with its printing discarded (a check's own calls)."""
    sink = CappedText(0)
    old = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = sink
    try:
        return function(*args)
    finally:
        sys.stdout, sys.stderr = old


def build(cls, args: tuple):
    return quietly(cls, *args)


def set_mode(module, train: bool):
    return quietly(module.train, train)


def forward(module, inputs: tuple, grad: bool = False):
    """module(x) for each x, without gradients unless asked (as a check calls a block)."""
    import torch

    with torch.set_grad_enabled(grad):
        return tuple(quietly(module, x) for x in inputs)


def _attempt(function, *args):
    try:
        return ("ok", quietly(function, *args))
    except BaseException as exc:
        return ("raised", error_facts(exc))


def threads_alive() -> int:
    import threading

    return threading.active_count()


# ---- what the grader installs into the notebook's world -----------------------------------------

def offline(*args, **kwargs) -> None:
    print(NOTE_OFFLINE)


def offline_output(*args, **kwargs) -> list:
    print(NOTE_OFFLINE)
    return []


def offline_line_magic(line: str = "") -> None:
    print(NOTE_OFFLINE)


def offline_cell_magic(line: str = "", cell: str = "") -> None:
    print(NOTE_OFFLINE)


def matplotlib_magic(line: str = "") -> None:
    """`%matplotlib inline` (or any backend): figures are drawn off-screen while grading."""
    import matplotlib

    matplotlib.use("Agg")


def make_shell():
    """The IPython shell the notebook runs in: shell escapes and package installs only print a note."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.xmode = "Plain"
    shell = InteractiveShell.instance(config=config)  # made once; a fork inherits a pristine one
    shell.system = shell.system_piped = offline  # `!cmd`
    shell.getoutput = offline_output  # `x = !cmd`
    for name in ("pip", "conda", "mamba", "sx", "system", "sc"):
        shell.register_magic_function(offline_line_magic, "line", name)
    shell.register_magic_function(matplotlib_magic, "line", "matplotlib")
    for name in ("bash", "sh", "script", "system", "capture_shell"):
        shell.register_magic_function(offline_cell_magic, "cell", name)
    return shell


GPU_HIDDEN = [False]  # set by the runner in the second world of a machine with a GPU (CUDA hidden there)
DEADLINE = [float("inf")]  # when the running job's time is up (time.monotonic), set by the grader


def make_fork(real):
    """os.fork for the notebook: the same call, except past the running cell's time limit, when it
    raises CellTimeout. The grader's interrupt of a cell that forks in a loop mostly lands in the
    at-fork handlers (logging's, IPython's), where Python drops exceptions; this ends the loop."""
    def fork():
        if time.monotonic() > DEADLINE[0]:
            raise CellTimeout("the cell ran past its time limit")
        return real()
    return fork


def make_signal_guard(real):
    """signal.signal for the notebook: SIG_IGN and SIG_DFL only. A Python handler would run on
    the process's main thread, where the grader is."""
    def signal(signalnum, handler):
        if callable(handler):
            raise RuntimeError("[grader] installing a Python signal handler is not available while grading")
        return real(int(signalnum), int(handler))
    return signal


def _identity(tensor, *args, **kwargs):
    return tensor


def _true() -> bool:
    return True


def _false() -> bool:
    return False


def _one() -> int:
    return 1


def _zero() -> int:
    return 0


def _simulated_name(*args, **kwargs) -> str:
    return "simulated GPU (grader)"


class SimulatedGPU:
    """What torch.cuda.get_device_properties answers for the simulated GPU."""
    name = "simulated GPU (grader)"
    total_memory = 16 * 1024 ** 3
    major, minor = 8, 0
    multi_processor_count = 1


def _simulated_properties(*args, **kwargs) -> SimulatedGPU:
    return SimulatedGPU()


def _simulated_capability(*args, **kwargs) -> tuple:
    return (8, 0)


def _zero_of(*args, **kwargs) -> int:
    return 0


def _nothing(*args, **kwargs) -> None:
    return None


class SimulatedEvent:
    """torch.cuda.Event on the simulated GPU: records nothing; no time passes between two."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    record = wait = synchronize = _nothing

    def query(self) -> bool:
        return True

    def elapsed_time(self, other) -> float:
        return 0.0


class SimulatedStream(SimulatedEvent):
    """torch.cuda.Stream (and the current or default stream) on the simulated GPU: work on it is done."""

    def wait_event(self, *args, **kwargs) -> None:
        return None

    wait_stream = wait_event

    def record_event(self, event=None):
        return event or SimulatedEvent()

    def __enter__(self):
        return self

    def __exit__(self, *args) -> bool:
        return False


def _simulated_stream(*args, **kwargs) -> SimulatedStream:
    return SimulatedStream()


def enter_counterfactual() -> str:
    """Flip CUDA availability for this world; where CUDA is faked, tensors sent there land on
    PyTorch's data-less `meta` device. Runs on the notebook's thread (torch function modes are
    per thread)."""
    import torch

    if GPU_HIDDEN[0] or torch.cuda.is_available():
        torch.cuda.is_available = _false
        return "cuda-hidden"
    # Nothing computed in this world is judged but where tensors end up, so filling fresh
    # weights with random numbers is skipped here (a model's construction is most of its cost).
    for name in ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "kaiming_uniform_",
                 "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "orthogonal_", "sparse_"):
        if hasattr(torch.nn.init, name):
            setattr(torch.nn.init, name, _identity)
    torch.cuda.is_available = _true
    torch.cuda.device_count = _one
    torch.cuda.current_device = _zero
    torch.cuda.get_device_name = _simulated_name
    torch.cuda.get_device_properties = _simulated_properties
    torch.cuda.get_device_capability = _simulated_capability
    for name in ("memory_allocated", "memory_reserved", "max_memory_allocated", "max_memory_reserved"):
        setattr(torch.cuda, name, _zero_of)
    for name in ("empty_cache", "synchronize", "reset_peak_memory_stats", "manual_seed", "manual_seed_all", "set_device",
                 "init"):
        setattr(torch.cuda, name, _nothing)
    torch.cuda.Event, torch.cuda.Stream = SimulatedEvent, SimulatedStream
    for name in ("current_stream", "default_stream", "stream"):
        setattr(torch.cuda, name, _simulated_stream)
    _make_cuda_to_meta()().__enter__()
    return "cuda-simulated"


def _make_cuda_to_meta():
    import inspect

    import torch
    from torch.overrides import TorchFunctionMode

    meta = torch.device("meta")
    batch_norm, functional_batch_norm = torch.batch_norm, torch.nn.functional.batch_norm
    functional_signature = inspect.signature(functional_batch_norm)
    verify_batch_size = getattr(torch.nn.functional, "_verify_batch_size", None)
    plain_tensor_types = (torch.Tensor, torch.nn.Parameter)

    def cpu_copy(tensor):
        """What a GPU tensor's .cpu() gives: a CPU tensor of its shape and type, here with zeros in it
        (the simulated GPU holds no data), so that the copy is where it would be on a real machine."""
        return torch.zeros(tuple(tensor.shape), dtype=tensor.dtype)  # (inside the mode's handler: not swapped)

    def to_cpu(args, kwargs) -> bool:
        """Whether a Tensor.to call sends a meta tensor (a simulated GPU's) to the CPU."""
        if not args or type(args[0]) not in plain_tensor_types or args[0].device.type != "meta":
            return False
        target = kwargs.get("device", args[1] if len(args) > 1 else None)
        if isinstance(target, torch.Tensor):
            target = target.device
        return (isinstance(target, str) and target.split(":")[0] == "cpu") or \
            (isinstance(target, torch.device) and target.type == "cpu")

    def swap(value):
        """A GPU becomes meta; as on a machine with one GPU, any GPU but the first does not exist."""
        if isinstance(value, torch.device) and value.type == "cuda":
            if value.index not in (None, 0):
                raise RuntimeError("CUDA error: invalid device ordinal")
            return meta
        if isinstance(value, str) and value.startswith("cuda"):
            if value.split(":", 1)[-1] not in ("cuda", "0"):
                raise RuntimeError("CUDA error: invalid device ordinal")
            return "meta"
        return value

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

    def swap_number(value):
        """An int where a device goes is a GPU's number: .to(0) is .to("cuda:0")."""
        return swap(torch.device("cuda", value)) if type(value) is int and value >= 0 else value

    class CudaToMeta(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = {k: (swap_number(v) if k == "device" else swap(v)) for k, v in (kwargs or {}).items()}
            if func is torch.Tensor.to and len(args) > 1:
                args = (args[0], swap_number(args[1])) + tuple(args[2:])
            if func is torch.Tensor.cpu and args and type(args[0]) in plain_tensor_types and \
                    args[0].device.type == "meta":
                return cpu_copy(args[0])
            if func is torch.Tensor.to and to_cpu(args, kwargs):
                copy = cpu_copy(args[0])
                dtype = kwargs.get("dtype") or next((a for a in args[1:] if isinstance(a, torch.dtype)), None)
                return copy.to(dtype) if dtype is not None else copy
            if func is torch.Tensor.cuda:
                if args[1:] and args[1] not in (None, 0) and not isinstance(args[1], (str, torch.device)):
                    raise RuntimeError("CUDA error: invalid device ordinal")
                return args[0].to(meta)
            if func is torch.Tensor.pin_memory or func is torch.Tensor.is_pinned:
                return args[0] if func is torch.Tensor.pin_memory else False
            if func is functional_batch_norm or func is batch_norm:
                shaped = meta_batch_norm(func, args, kwargs)
                if shaped is not None:
                    return shaped
            return func(*[swap(a) for a in args], **kwargs)

    return CudaToMeta

