"""The grader's side of a world: runs on the main thread of the sandboxed process.

How the notebook is kept away from it
-------------------------------------
* **Two threads.** The notebook runs on a thread of its own (``student_side.serve``), whose
  stack holds no frame of the grader: from the notebook's code, walking frames reaches only
  that loop and the notebook. The grader stays on the main thread and hands the notebook
  thread one job at a time (run a cell, build a block, call it).
* **Private code.** ``runner.load_core`` executes this file and ``probe.py`` into fresh
  namespaces whose ``__builtins__`` is a copy taken before any notebook code ran, and no
  notebook-visible object refers to those namespaces (no classes are defined here; nothing
  defined here is installed into the notebook's world). Every function of torch, numpy, os or
  the standard library used after the notebook starts is bound at load time, and only C
  functions and C types' methods are used on the notebook's objects: replacing builtins,
  module attributes or ``torch.Tensor`` methods changes nothing the grader calls, so no code
  of the notebook's ever runs on this thread.
* **Outcomes it can believe.** A job's outcome is read from the notebook thread's loop frame
  (its fast locals, which Python code cannot rebind), after checking that the loop is back in
  that frame and that the outcome belongs to this job. Facts about objects (structure,
  devices, shapes) are read here, through torch's C accessors with torch function handling
  disabled.
* **Evidence it signs.** Every frame written to the trusted side carries an HMAC-SHA256 under a
  key that only this thread holds; the trusted side believes nothing else.

The notebook can still read and write its own process's memory with raw-address tricks
(numpy's ``__array_interface__``, ctypes pointers handed out by a library); in principle that
reaches everything here. The trusted side recomputes every number it can, and the submission
scan marks such code for a person (see README, "What a hostile submission could still do").
"""

# Executed into a private namespace; relative imports resolve against __package__.
import _hashlib
import _thread
import ctypes
import gc
import os
import sys
import time

import numpy
import torch

from . import student_side

# ---- bound now, before any notebook code: nothing below looks these up again ----------------------

_TB = getattr(torch._C, "TensorBase", None) or torch._C._TensorBase
_detach, _to, _reshape, _contiguous, _numpy, _size = _TB.detach, _TB.to, _TB.reshape, _TB.contiguous, _TB.numpy, _TB.size
_copy_, _clone, _add_, _mul_, _narrow, _numel = _TB.copy_, _TB.clone, _TB.add_, _TB.mul_, _TB.narrow, _TB.numel
_device_of, _dtype_of, _dim = _TB.device.__get__, _TB.dtype.__get__, _TB.dim
_is_floating = _TB.is_floating_point
_device_type = torch.device.type.__get__
_Device, _Tensor, _Parameter, _Module = torch.device, torch.Tensor, torch.nn.Parameter, torch.nn.Module
_float32 = torch.float32
_DisableTorchFunction = torch._C.DisableTorchFunction
_set_grad_enabled = torch._C._set_grad_enabled
_equal = torch.equal
_allclose = torch.allclose
_idict = _Module.__dict__["__dict__"].__get__
_mro = type.__dict__["__mro__"].__get__
_tobytes = numpy.ndarray.tobytes
_current_frames, _getframe = sys._current_frames, sys._getframe
_get_ident, _start_thread, _allocate_lock, _thread_count = (_thread.get_ident, _thread.start_new_thread,
                                                             _thread.allocate_lock, _thread._count)
_monotonic, _sleep = time.monotonic, time.sleep
_os_write, _kill, _waitpid, _WNOHANG, _getpid = os.write, os.kill, os.waitpid, os.WNOHANG, os.getpid
_SIGKILL = 9
_hmac_new = _hashlib.hmac_new
_gc_enable, _gc_disable, _gc_isenabled = gc.enable, gc.disable, gc.isenabled
_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)
_clear_async_exc = ctypes.cast(_set_async_exc, ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p))
_ulong, _py_object = ctypes.c_ulong, ctypes.py_object
_addaudithook = sys.addaudithook
_open = open
_serve_code = student_side.serve.__code__
CellTimeout = student_side.CellTimeout
JOB_RUN_CELL, JOB_BUILD, JOB_SET_MODE, JOB_FORWARD = (student_side.run_cell, student_side.build,
                                                     student_side.set_mode, student_side.forward)
JOB_ENTER_COUNTERFACTUAL, JOB_QUIETLY = student_side.enter_counterfactual, student_side.quietly
_deadline = student_side.DEADLINE
MAIN_THREAD = _get_ident()
HUNG = ("the cell kept the interpreter busy past the limit for a whole submission and could not be interrupted; "
        "the notebook was graded again without running it")
ABANDON_LIMIT = 3  # notebook threads left stuck in a cell before the world gives up
GRACE_SECONDS = 2.0  # after a cell's time is up, how long an interrupted cell has to stop

# ---- the grader's code on the notebook's side --------------------------------------------------------

_Function = type(student_side.serve)
_FUNCTION_PARTS = tuple(_Function.__dict__[name] for name in ("__code__", "__defaults__", "__kwdefaults__"))
_class_dict = type.__dict__["__dict__"].__get__
_set_class_attr, _del_class_attr = type.__setattr__, type.__delattr__
_dict_items, _dict_keys = dict.items, dict.keys


def _snapshot(module):
    """What a module's namespace holds now: its globals, its functions' code and defaults, its
    classes' attributes (all read at C level)."""
    names = dict(_dict_items(module.__dict__))
    functions = {name: tuple(part.__get__(value) for part in _FUNCTION_PARTS)
                 for name, value in _dict_items(names) if type(value) is _Function}
    classes = {name: dict(_dict_items(dict(_class_dict(value)))) for name, value in _dict_items(names)
               if type(value) is type and value.__module__ == module.__name__}
    return module.__dict__, names, functions, classes


_ModuleType = type(sys)
_PLUGINS_PREFIX = f"{__package__}.plugins."


def _job_modules():
    """The modules whose functions run on the notebook's thread: student_side, and the plan's
    assignment plug-in's sandbox-side modules imported as usual (its jobs, its seeded contract;
    not its probes, which are loaded privately). Another assignment's modules, imported by the
    zygote too, never run in this submission: they are not watched. Where the plan's assignment
    is not known (core imported as a plain module), every plug-in's are. Read once, when this file
    is loaded, before any notebook code."""
    assignment = globals().get("PLAN_ASSIGNMENT")
    own = _PLUGINS_PREFIX + assignment if type(assignment) is str and assignment else None
    found = [student_side]
    for name, module in list(sys.modules.items()):
        if type(name) is str and type(module) is _ModuleType and (
                (name == own or name.startswith(own + ".")) if own else name.startswith(_PLUGINS_PREFIX)):
            found.append(module)
    return found


_SIDES = [_snapshot(module) for module in _job_modules()]
# nn.Module's methods the jobs rely on to call and observe a block (a notebook that replaces them
# changes what every check sees: put back before each job, and said)
_MODULE_API = {name: _class_dict(_Module)[name] for name in (
    "__call__", "_call_impl", "_wrapped_call_impl", "register_forward_hook", "register_forward_pre_hook", "modules",
    "named_modules", "children", "named_children", "parameters", "named_parameters", "buffers", "named_buffers",
    "train", "eval", "state_dict", "load_state_dict", "_apply", "to", "__setattr__", "__getattr__")
    if name in _class_dict(_Module)}


_KEPT: list = []  # what was taken out of those modules: never freed on this thread (no __del__ runs here)


def _restore(namespace, names, functions, classes):
    """One module put back as _snapshot saw it; what was found changed, or None."""
    found = None
    keys = list(_dict_keys(namespace))
    if any(type(key) is not str for key in keys) or any(key not in names for key in keys) or \
            any(namespace.get(key) is not value for key, value in _dict_items(names)):
        _KEPT.append(dict(_dict_items(namespace)) if all(type(key) is str for key in keys) else
                     list(_dict_items(namespace)))
        namespace.clear()
        namespace.update(names)
        found = "its names"
    for key, parts in _dict_items(functions):
        function = names[key]
        for part, value in zip(_FUNCTION_PARTS, parts):
            if part.__get__(function) is not value:
                _KEPT.append(part.__get__(function))
                part.__set__(function, value)
                found = found or "its functions"
    for key, attributes in _dict_items(classes):
        cls = names[key]
        now = _class_dict(cls)
        present = list(now)
        if any(type(name) is not str for name in present):
            found = found or "its classes (not put back)"  # a key that is not a str: nothing is looked up
            continue
        for name in present:
            if name not in attributes:
                _KEPT.append(now[name])
                _del_class_attr(cls, name)
                found = found or "its classes"
        for name, value in _dict_items(attributes):
            if now.get(name) is not value:
                _KEPT.append(now.get(name))  # the replacement's __del__ must not run here
                _set_class_attr(cls, name, value)
                found = found or "its classes"
    return found


def restore_grader_modules() -> str | None:
    """Put back whatever the notebook changed in the modules whose functions run on its thread
    (student_side and the plug-ins' job modules: the jobs' functions, the output streams' class,
    ...: reachable from a cell through any of their functions' __globals__, such as a forward hook
    the grader registered), and nn.Module's methods the jobs rely on, before a job runs there.
    Returns what was found changed (None: nothing). No object of the notebook's has its __eq__ or
    __hash__ called: keys are looked up only once every key is an exact str."""
    found = None
    for side in _SIDES:
        found = _restore(*side) or found
    now = _class_dict(_Module)
    if any(type(name) is not str for name in list(now)):
        return found or "torch's nn.Module (not put back)"  # a key that is not a str: nothing is looked up
    for name, value in _dict_items(_MODULE_API):
        if now.get(name) is not value:
            _KEPT.append(now.get(name))
            _set_class_attr(_Module, name, value)
            found = found or "torch's nn.Module"
    return found


# ---- plain data -------------------------------------------------------------------------------------

_EXACT = (str, int, float, bool, type(None))


def plain(value, depth=0):
    """Only exact built-in types go into a frame."""
    kind = type(value)
    for allowed in _EXACT:
        if kind is allowed:
            return value
    if depth < 12 and (kind is list or kind is tuple):
        return [plain(v, depth + 1) for v in value]
    if depth < 12 and kind is dict:
        return {k: plain(v, depth + 1) for k, v in value.items() if type(k) is str}
    return "<object>"


def field(d, name):
    """d[name] for an exact dict whose keys may be anything: no key's __eq__ is ever called."""
    if type(d) is not dict:
        return None
    for key, value in d.items():
        if type(key) is str and key == name:
            return value
    return None


def str_items(d):
    """The (name, value) pairs of an exact dict whose names are exact strings."""
    if type(d) is not dict:
        return []
    return [(k, v) for k, v in d.items() if type(k) is str]


# ---- evidence -----------------------------------------------------------------------------------------

def make_sender(fd, key):
    """Frames: ``NB10 <seq> <hmac> <meta length> <blob lengths>\\n`` + repr(meta) + blobs. The HMAC
    covers the sequence number, the lengths, the meta and the blobs. The key is kept only inside an
    HMAC object (its raw bytes are wiped), so that it is not lying in memory as a bytes object."""
    seq = [0]
    signer = _hmac_new(bytes(key), digestmod="sha256")
    if type(key) is bytearray:
        key[:] = b"\0" * len(key)

    def send(meta, blobs=()):
        body = repr(plain(meta)).encode()
        lengths = " ".join([str(len(b)) for b in blobs])
        signed = f"{seq[0]} {len(body)} {lengths}".encode()
        h = signer.copy()
        h.update(signed + b"\n" + body + b"".join(blobs))
        mac = h.hexdigest()
        data = f"NB10 {seq[0]} {mac} {len(body)} {lengths}\n".encode() + body + b"".join(blobs)
        seq[0] += 1
        view = memoryview(data)
        while len(view):
            written = _os_write(fd, view)
            view = view[written:]

    return send


# ---- the audit guard ------------------------------------------------------------------------------------

_FRAME_ATTRIBUTES = frozenset(("tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"))
_MEMORY_FILES = frozenset(("mem", "maps", "smaps", "smaps_rollup", "pagemap", "numa_maps"))


def install_guard(trusted_roots, pass_through_codes, ctypes_dir, grader_files, alerts):
    """An audit hook (it cannot be removed) that refuses the notebook's own code the routes into
    other threads' frames and into the process's internals, and records each attempt.

    The notebook's code is any code not loaded from a file of the Python installation, the
    virtual environment or the grader's bundle: cells, and anything made with exec, eval or
    compile. Library code may still do what libraries do (format a traceback, load a CUDA
    library with ctypes). A library function whose job is to hand frames to its caller
    (inspect.currentframe, traceback.walk_stack, ...) is looked through to its caller.

    On the main thread, where the grader is, no notebook code should ever run; if some does (a
    gc callback, say), a request counts as the notebook's when any notebook frame stands between
    it and the grader's own code, whatever library it goes through (traceback's
    capture_locals, say). The texts recorded are fixed: nothing of the notebook's choosing (an
    audit event's name) goes into them."""
    getframe, busy = _getframe, [False]

    def trusted_file(name):
        if type(name) is not str:
            return False
        for root in trusted_roots:
            if name.startswith(root):
                return True
        return False

    def requester_is_notebook(skip_ctypes):
        frame = getframe(3)  # 0 this function, 1 check, 2 guard, 3 the code doing the audited thing
        if _get_ident() == MAIN_THREAD:
            while frame is not None:
                name = frame.f_code.co_filename
                if name in grader_files:
                    return False
                if not trusted_file(name):
                    return True
                frame = frame.f_back
            return True
        while frame is not None:
            code = frame.f_code
            if code in pass_through_codes or (skip_ctypes and code.co_filename.startswith(ctypes_dir)):
                frame = frame.f_back
                continue
            return not trusted_file(code.co_filename)
        return False

    def same_as_file(source, path):
        """Compiling a library file's own text under its name is what imports do (and a traceback
        printed from C compiles one line of it to place its carets): allowed. Anything else under
        a library's or the grader's file name is not."""
        if type(source) is not bytes and type(source) is not str:
            return False
        try:
            with _open(path, "rb") as f:
                data = f.read()
        except OSError:
            return False
        text = source if type(source) is bytes else source.encode("utf-8", "replace")
        if b"\n" not in text.strip() and len(text) <= 300:
            return text.strip() in data
        return text == data

    def alert(text):
        if len(alerts) < 50 and text not in alerts:
            alerts.append(text)

    def refuse(text):
        alert(text)
        raise RuntimeError(f"[grader] {text} is not available while grading")

    def guard(event, args):
        if busy[0]:
            return
        busy[0] = True
        try:
            check(event, args)
        finally:
            busy[0] = False

    def check(event, args):
        on_main = _get_ident() == MAIN_THREAD
        if event == "sys._getframe":
            if requester_is_notebook(False):
                refuse("taking a frame object (sys._getframe)")
        elif event == "object.__getattr__":
            if len(args) > 1 and type(args[1]) is str and args[1] in _FRAME_ATTRIBUTES and requester_is_notebook(False):
                refuse("taking a frame object (a traceback's, generator's or coroutine's frame)")
        elif event == "object.__setattr__":
            if len(args) > 1 and type(args[1]) is str and args[1] == "__code__" and requester_is_notebook(False):
                refuse("replacing a function's code")
        elif event == "sys._current_frames":
            if not on_main or requester_is_notebook(False):
                refuse("reading other threads' frames (sys._current_frames)")
        elif event.startswith("gc.get_"):
            if not on_main or requester_is_notebook(False):
                refuse("walking the interpreter's objects (gc.get_objects, get_referrers, get_referents)")
        elif event in ("sys.settrace", "sys.setprofile") or event.startswith("sys.monitoring"):
            if not on_main or requester_is_notebook(False):
                refuse("installing a tracing or profiling hook")
        elif event == "sys.addaudithook":
            refuse("installing an audit hook")
        elif event.startswith("ctypes."):
            if requester_is_notebook(True):
                refuse("ctypes")
        elif event == "code.__new__":
            if len(args) > 1 and trusted_file(args[1]) and requester_is_notebook(False):
                refuse("making code that claims to come from a library or the grader")
        elif event == "compile":
            if len(args) > 1 and trusted_file(args[1]) and requester_is_notebook(False) \
                    and not same_as_file(args[0], args[1]):
                refuse("compiling code under a library's or the grader's file name")
        elif event == "marshal.loads":
            if requester_is_notebook(False):
                refuse("loading code objects (marshal)")
        elif event == "open":
            path = args[0] if args else None
            if type(path) is bytes:
                path = path.decode("utf-8", "replace")
            if type(path) is str and requester_is_notebook(False):
                base = path.rstrip("/").rsplit("/", 1)[-1]
                if base in _MEMORY_FILES or path.rstrip("/") in ("/proc", "/proc/self", "/dev/fd") or \
                        path.startswith("/proc/self/") or path.startswith("/proc/thread-self/"):
                    alert("reading the process's own memory, its memory map or its /proc folder")

    _addaudithook(guard)


# ---- the notebook's thread ----------------------------------------------------------------------------

def make_threads(alerts, keep, unstick=None, trusted=lambda name: True):
    """The notebook thread and the hand-off to it. `call(function, args, seconds)` runs a job
    there and returns its outcome, ("ok", value) or ("raised", facts); on a hand-off that is
    not what the grader set up, ("raised", facts) with the reason, and the thread is replaced."""
    state = {"thread": None, "abandoned": [], "student_gc": True, "stopped": None}

    def note(text):
        if len(alerts) < 50 and text not in alerts:
            alerts.append(text)

    def start():
        """A fresh notebook thread; False (and no thread) where none can be started now (a
        notebook that used up the process limit)."""
        go, done = _allocate_lock(), _allocate_lock()
        go.acquire()
        done.acquire()
        box = [None]
        try:
            ident = _start_thread(student_side.serve, (go, done, box))
        except RuntimeError:
            state["thread"] = None
            return False
        deadline = _monotonic() + 30
        frame = None
        while _monotonic() < deadline:
            frame = _current_frames().get(ident)
            if frame is not None and frame.f_code is _serve_code:
                break
            _sleep(0.0005)
        if frame is None or frame.f_code is not _serve_code:
            state["thread"] = None
            return False
        keep.append((go, done, box))
        state["thread"] = {"ident": ident, "go": go, "done": done, "box": box, "frame": frame}
        return True

    def abandon(reason):
        thread = state["thread"]
        state["abandoned"].append(thread["ident"])
        state["thread"] = None
        if len(state["abandoned"]) >= ABANDON_LIMIT:
            state["stopped"] = reason
        else:
            start()

    def interrupt(thread):
        """Raise CellTimeout in the notebook's thread, again and again for a grace period: one
        raised inside a callback whose exceptions Python ignores (an at-fork handler, a
        finaliser) is lost."""
        deadline = _monotonic() + GRACE_SECONDS
        while _monotonic() < deadline:
            _set_async_exc(_ulong(thread["ident"]), _py_object(CellTimeout))
            if thread["done"].acquire(True, 0.05):
                # an interrupt still pending would go off in the loop, between jobs: drop it; if one
                # already went off there, the thread has ended and the next call starts another
                _clear_async_exc(thread["ident"], None)
                return True
        return False

    def idle_outcome(thread, job):
        """The job's outcome if the notebook thread is back in its loop with it, else None."""
        frame = _current_frames().get(thread["ident"])
        if frame is not thread["frame"]:
            return None
        result = field(frame.f_locals, "result")
        keep.append(result)
        if type(result) is tuple and len(result) == 2 and result[0] is job:
            outcome = result[1]
            if type(outcome) is tuple and len(outcome) == 2 and type(outcome[0]) is str and \
                    (outcome[0] == "ok" or outcome[0] == "raised"):
                return outcome
        return None

    def call(function, args, seconds):
        if state["stopped"]:
            return ("raised", {"type": "NotRun", "message": state["stopped"], "cell": None, "line": None, "code": None})
        if state["thread"] is None and not start():
            return ("raised", {"type": "NotRun", "message": "no thread could be started for the notebook (its "
                               "processes used up the sandbox's process limit)", "cell": None, "line": None,
                               "code": None})
        thread = state["thread"]
        if thread["ident"] not in _current_frames():  # ended by an interrupt meant for its last job
            state["thread"] = None
            if not start():
                return ("raised", {"type": "NotRun", "message": "no thread could be started for the notebook",
                                   "cell": None, "line": None, "code": None})
            thread = state["thread"]
        if not (thread["go"].locked() and thread["done"].locked()):
            note("the notebook interfered with the grader's hand-off to its thread")
            abandon("the notebook kept interfering with the grader's hand-off")
            return call(function, args, seconds)
        if restore_grader_modules():
            note("the notebook changed the grader's own code in its process (put back before each check)")
        job = (function, args)
        keep.append(job)
        thread["box"][0] = job
        _deadline[0] = _monotonic() + seconds
        if state["student_gc"]:
            _gc_enable()
        thread["go"].release()
        finished = thread["done"].acquire(True, seconds)
        state["student_gc"] = _gc_isenabled()
        _gc_disable()  # no collection (and so no finaliser of the notebook's) runs on this thread
        if not finished:
            finished = interrupt(thread)
            if not finished and unstick is not None:  # starved by the notebook's processes (a fork bomb)?
                unstick()
                finished = interrupt(thread)
            state["student_gc"] = _gc_isenabled()
            _gc_disable()
            if not finished:
                abandon(f"{ABANDON_LIMIT} cells could not be stopped after their time limit")
                return ("raised", {"type": "CellTimeout", "message": f"the cell ran longer than {seconds:.0f} s and "
                                   "could not be stopped", "cell": None, "line": None, "code": None, "stuck": True})
        outcome = idle_outcome(thread, job)
        if outcome is None:  # woken by someone else's release: wait for the real end, briefly
            deadline = _monotonic() + max(1.0, seconds)
            while outcome is None and _monotonic() < deadline and thread["ident"] in _current_frames():
                _sleep(0.001)
                outcome = idle_outcome(thread, job)
            note("the notebook interfered with the grader's hand-off to its thread")
            if outcome is None:
                abandon("the notebook kept interfering with the grader's hand-off")
                return ("raised", {"type": "HandOff", "message": "the notebook's thread did not hand back its result",
                                   "cell": None, "line": None, "code": None})
        return outcome

    def notebook_threads():
        """Threads running the notebook's own code now, other than the notebook thread (and the
        ones left behind in stuck cells): a library's helper thread (tqdm's monitor, a
        DataLoader's) does not count."""
        ours = ([state["thread"]["ident"]] if state["thread"] else []) + state["abandoned"] + [MAIN_THREAD]
        count = 0
        for ident, frame in _current_frames().items():
            if ident in ours:
                continue
            depth = 0
            while frame is not None and depth < 200:
                if not trusted(frame.f_code.co_filename):
                    count += 1
                    break
                frame, depth = frame.f_back, depth + 1
        return count

    start()
    return call, notebook_threads, state


# ---- one world -------------------------------------------------------------------------------------------

def warm_up_gpu():
    """Create the CUDA context and load the convolution kernels before the first cell."""
    started = _monotonic()
    try:
        with torch.no_grad():
            x = torch.zeros(2, 3, 16, 16, device="cuda")
            torch.nn.functional.conv2d(x, torch.zeros(4, 3, 3, 3, device="cuda"), padding=1).sum().item()
    except Exception:  # a broken GPU shows up in the student's own cells, with their error
        pass
    return round(_monotonic() - started, 3)


SCRATCH_FOLDERS = ("/tmp", "/dev/shm", "/home/student")
_listdir, _lstat, _unlink, _rmdir, _S_ISDIR = os.listdir, os.lstat, os.unlink, os.rmdir, __import__("stat").S_ISDIR


def _empty(folder, depth=0):
    try:
        names = _listdir(folder)
    except OSError:
        return
    for name in names:
        path = folder + "/" + name
        try:
            if _S_ISDIR(_lstat(path).st_mode) and depth < 20:
                _empty(path, depth + 1)
                _rmdir(path)
            else:
                _unlink(path)
        except OSError:
            pass


def _others_alive():
    """Whether any process but this one and the namespace's init is in the PID namespace (after
    reaping this process's own dead children)."""
    _reap()
    me = str(_getpid())
    return any(name.isdigit() and name != "1" and name != me for name in _listdir("/proc"))


def _reap():
    while True:  # what were this process's children
        try:
            if _waitpid(-1, _WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _quiet_the_sandbox(others, scratch=False):
    """Wait for the other world's process (a child of this one) to end, then kill every other
    process in the sandbox's PID namespace (what the notebook left running: daemons, a fork bomb)
    and, with `scratch`, empty its scratch space (tmpfs: /tmp, /dev/shm, home). Used before the
    deferred checks, so that they run in a calm sandbox, and when a cell cannot be stopped."""
    deadline = _monotonic() + 30
    for pid in others:
        while _monotonic() < deadline:
            try:
                if _waitpid(pid, _WNOHANG)[0] != 0:
                    break
            except ChildProcessError:
                break
            _sleep(0.002)
    for _ in range(5):  # a fork bomb's last forks may land after a sweep
        if not _others_alive():
            break
        try:
            _kill(-1, _SIGKILL)
        except OSError:
            pass
        _sleep(0.01)
        _reap()
    if scratch:
        for folder in SCRATCH_FOLDERS:
            _empty(folder)


def run_world(world, plan, fd, key, shell, probe_ns, guard_args, hide_modules, notes, others=()):
    """Run one world's plan: every cell and check, in order, on the notebook's thread; frames
    signed and written to `fd`. Returns when done (the caller exits the process)."""
    send = make_sender(fd, key)
    alerts, keep = [], []
    torch.set_num_threads(1)
    cuda_here = bool(torch.cuda.is_available())
    warm_gpu = warm_up_gpu() if world == "real" and cuda_here else None
    namespace = shell.user_ns
    if type(namespace) is not dict:
        raise RuntimeError("the shell's namespace is not a dict")
    cells = plan["cells"]
    cell_seconds = float(plan["cell_seconds"])
    probes = probe_ns["make_probes"](plan, world)  # seeded values for every check, made now
    hide_modules()
    install_guard(*guard_args, alerts)
    unstick = (lambda: _quiet_the_sandbox(others)) if world == "real" and plan.get("pid_namespace") else None
    roots = guard_args[0]
    call, notebook_threads, threads = make_threads(
        alerts, keep, unstick, lambda name: type(name) is str and any(name.startswith(r) for r in roots))
    _gc_disable()
    if world == "real":
        mode = "real"
    else:
        outcome = call(JOB_ENTER_COUNTERFACTUAL, (), 60.0)
        mode = outcome[1] if outcome[0] == "ok" and type(outcome[1]) is str else "counterfactual-failed"
        mode = mode if mode in ("cuda-hidden", "cuda-simulated") else "counterfactual-failed"
        cuda_here = mode == "cuda-simulated"
    send({"kind": "world", "world": world, "mode": mode, "cuda": cuda_here, "gpu_warm_up_seconds": warm_gpu,
          "notes": list(notes)})

    def drain_alerts():
        out = list(alerts)
        del alerts[:]
        return out

    last = max((i for i, c in enumerate(cells) if c["kind"] == "probe" and world in c["worlds"]), default=-1)
    stop = len(cells) if world == "real" else last + 1
    context = {"call": call, "keep": keep, "namespace": namespace, "cell_seconds": cell_seconds,
               "notebook_threads": notebook_threads, "alerts": alerts, "mode": mode}
    deferred = []
    for index, cell in enumerate(cells[:stop]):
        if threads["stopped"]:
            break
        if cell.get("skip"):
            continue
        if cell["kind"] == "probe":
            if world not in cell["worlds"]:
                continue
            started = _monotonic()
            results, blobs, later = probe_ns["run_point"](cell, probes, context, world, mode)
            if later:
                deferred.append((index, cell, later))
            send({"kind": "probe", "index": index, "item": cell["item"], "results": results,
                  "seconds": round(_monotonic() - started, 3), "alerts": drain_alerts()}, blobs)
            continue
        if cell.get("hung"):  # it held the interpreter past the whole run's limit last time: not run again
            send({"kind": "cell", "index": index, "status": "timeout", "output": "", "seconds": 0.0,
                  "alerts": drain_alerts(), "error": {"type": "CellTimeout", "message": HUNG, "cell": index,
                                                      "line": None, "code": None}})
            continue
        outcome = call(JOB_RUN_CELL, (shell, cell["source"], index), cell_seconds)
        report = outcome[1] if outcome[0] == "ok" and type(outcome[1]) is dict else None
        if report is None:  # the cell could not be stopped, or the hand-off went wrong
            facts = outcome[1] if type(outcome[1]) is dict else {}
            kind = field(facts, "type")
            status = "timeout" if type(kind) is str and kind == "CellTimeout" else "error"
            report = {"status": status, "error": dict(facts, cell=index), "output": "", "seconds": cell_seconds}
        status, error = field(report, "status"), field(report, "error")
        if type(status) is str and status == "timeout" and type(error) is dict and not field(error, "message"):
            error = dict(error, message=f"the cell ran longer than {cell_seconds:.0f} s and was stopped")
        send({"kind": "cell", "index": index, "status": status, "error": error,
              "output": field(report, "output"), "seconds": field(report, "seconds"), "alerts": drain_alerts()})
    if deferred and not threads["stopped"] and plan.get("pid_namespace"):
        _quiet_the_sandbox(others, scratch=True)
    for index, cell, later in ([] if threads["stopped"] else deferred):  # cases the notebook must not see
        started = _monotonic()
        results, blobs = probe_ns["run_deferred"](later, probes, context, world, mode)
        send({"kind": "probe", "index": index, "item": cell["item"], "results": results, "deferred": True,
              "seconds": round(_monotonic() - started, 3), "alerts": drain_alerts()}, blobs)
    send({"kind": "done", "stopped": threads["stopped"], "alerts": drain_alerts()})
