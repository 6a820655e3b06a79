"""Probes: what the grader observes of the notebook's objects, on the grader's thread (see core.py).

A probe never judges. It reads the notebook's namespace, has the notebook's thread build and run
the notebook's objects (jobs), loads parameters and inputs derived from a seed into them
(``seeded.py``; the trusted side derives the same), and hands back arrays and plain facts. The
graders recompute the expected values with reference code and compare.

Loaded privately next to core.py, under the same rules: every function used after the notebook
starts is bound when this file is loaded, only C functions and C types' methods touch the
notebook's objects (no operator on a tensor, no attribute of a notebook object read through
Python), and every value that came from the notebook is checked for its exact type before use.
"""

from .core import (_Device, _DisableTorchFunction, _Module, _Parameter, _Tensor, _contiguous, _copy_, _detach,
                   _device_of, _device_type, _float32, _idict, _mro, _narrow, _monotonic, _numel, _numpy, _reshape,
                   _set_grad_enabled, _size, _sleep, _to, _tobytes, field, str_items)
from .core import JOB_BUILD, JOB_FORWARD, JOB_SET_MODE
import torch

SAMPLE = 4096  # values kept of an output whose only purpose is a liveness check
_Conv2d, _BatchNorm2d, _Linear = torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear
_type_name = type.__dict__["__name__"].__get__
_Size = torch.Size
_ERR = {"cell": None, "line": None, "code": None}

# ---- the notebook's objects, read without running any of its code --------------------------------


def derives(obj, cls):
    """Whether obj's class has cls in its MRO (by identity: no __eq__, no __instancecheck__)."""
    for klass in _mro(type(obj)):
        if klass is cls:
            return True
    return False


def is_module(obj):
    return derives(obj, _Module)


_dispatch_keys, _has_key, _PYTHON_KEY = torch._C._dispatch_keys, torch._C.DispatchKeySet.has, torch._C.DispatchKey.Python


def exact_tensor(value):
    """A plain tensor: exactly torch.Tensor or nn.Parameter, with no Python dispatch (a wrapper
    subclass whose __class__ was set to torch.Tensor still carries its Python dispatch key)."""
    return (type(value) is _Tensor or type(value) is _Parameter) and not _has_key(_dispatch_keys(value), _PYTHON_KEY)


def shape_of(value):
    """A tensor's shape, a subclass's too (read with torch function handling off), but not one with
    Python dispatch (reading it would run the notebook's code here); None otherwise."""
    if value is not None and derives(value, _Tensor) and not _has_key(_dispatch_keys(value), _PYTHON_KEY):
        with _DisableTorchFunction():
            return list(_size(value))
    return None


def children(module):
    """The module's direct submodules, in registration order, as (name, module)."""
    return [(name, child) for name, child in str_items(field(_idict(module), "_modules")) if is_module(child)]


def tensors(module, kind):
    """(name, tensor) of a module's own parameters (kind '_parameters') or buffers ('_buffers')."""
    return [(name, t) for name, t in str_items(field(_idict(module), kind)) if t is not None]


def walk(module, prefix="", depth=0):
    """(qualified name, module) for the module and every submodule, depth first, like named_modules."""
    out = [(prefix, module)]
    if depth < 32:
        for name, child in children(module):
            out += walk(child, f"{prefix}.{name}" if prefix else name, depth + 1)
    return out


ODD_STATE = "a module's bookkeeping held objects that are not names (a way to run code on the grader's thread)"


def state_shapes(module, alerts=None):
    """Names and shapes of a module's state, in state_dict's order (parameters, persistent buffers,
    then submodules), read from the modules themselves (a replaced state_dict() changes nothing)."""
    out = {}
    for qualified, mod in walk(module):
        skip = field(_idict(mod), "_non_persistent_buffers_set")
        every = list(skip) if type(skip) is set else []
        skip = [e for e in every if type(e) is str]  # no element's __eq__ runs
        if len(skip) != len(every) and alerts is not None and ODD_STATE not in alerts:
            alerts.append(ODD_STATE)
        for kind in ("_parameters", "_buffers"):
            for name, t in tensors(mod, kind):
                if kind == "_buffers" and any(e == name for e in skip):
                    continue
                key = f"{qualified}.{name}" if qualified else name
                out[key] = list(_size(t)) if exact_tensor(t) else None
    return out


def _ints(value):
    if type(value) is int:
        return [value, value]
    if type(value) is tuple or type(value) is list:
        return [v for v in value if type(v) is int]
    return None


def describe(module):
    if module is None or not is_module(module):
        return None if module is None else {"type": "not a module"}
    d = _idict(module)
    if derives(module, _Conv2d):
        padding = field(d, "padding")
        return {"type": "Conv2d", "in": field(d, "in_channels"), "out": field(d, "out_channels"),
                "kernel": _ints(field(d, "kernel_size")), "stride": _ints(field(d, "stride")),
                "padding": padding if type(padding) is str else _ints(padding),
                "dilation": _ints(field(d, "dilation")), "groups": field(d, "groups"),
                "padding_mode": field(d, "padding_mode"),
                "bias": field(field(d, "_parameters"), "bias") is not None}
    if derives(module, _BatchNorm2d):
        return {"type": "BatchNorm2d", "features": field(d, "num_features"), "affine": field(d, "affine"),
                "track_running_stats": field(d, "track_running_stats")}
    if derives(module, _Linear):
        return {"type": "Linear", "in": field(d, "in_features"), "out": field(d, "out_features"),
                "bias": field(field(d, "_parameters"), "bias") is not None}
    return {"type": _type_name(type(module))}












def own_tensor(module, name):
    for kind in ("_parameters", "_buffers"):
        t = field(field(_idict(module), kind), name)
        if t is not None:
            return t
    return None


def _copy_into(target, value, name, report):
    found = list(_size(target)) if exact_tensor(target) else None
    if found != list(_size(value)):
        report.append({"param": name, "expected": list(_size(value)), "found": found})
        return
    with _DisableTorchFunction():
        _copy_(target, value)












# ---- arrays out --------------------------------------------------------------------------------------

def add_array(blobs, tensor, limit=None):
    with _DisableTorchFunction():
        t = _to(_detach(tensor), device="cpu", dtype=_float32)
        flat = _reshape(t, [-1])
        shape = list(_size(t))
        if limit is not None and _numel(flat) > limit:
            flat = _narrow(flat, 0, 0, limit)
        data = _tobytes(_numpy(_contiguous(flat)))
    blobs.append(data)
    return {"blob": len(blobs) - 1, "shape": shape, "count": len(data) // 4}


def tensor_or_error(outcome, blobs, limit=None):
    if type(outcome) is not tuple or len(outcome) != 2:
        return {"error": dict(_ERR, type="HandOff", message="no result")}
    if type(outcome[0]) is not str or outcome[0] != "ok":
        return {"error": outcome[1] if type(outcome[1]) is dict else dict(_ERR, type="Exception", message="")}
    value = outcome[1]
    if not exact_tensor(value):
        return {"error": dict(_ERR, type="NotATensor", message=f"returned {_type_name(type(value))}, not a tensor")}
    return add_array(blobs, value, limit)


# ---- the probes -------------------------------------------------------------------------------------

def _ok(outcome):
    return type(outcome) is tuple and len(outcome) == 2 and type(outcome[0]) is str and outcome[0] == "ok"


def _raised(outcome, what):
    facts = outcome[1] if type(outcome) is tuple and len(outcome) == 2 and type(outcome[1]) is dict else {}
    return {"error": facts or dict(_ERR, type="Exception", message=f"{what} failed")}


def _build(ctx, cls, args, name="the class"):
    if cls is None:
        return None, {"error": dict(_ERR, type="NameError", message=f"{name} is not defined")}
    outcome = ctx["call"](JOB_BUILD, (cls, tuple(args)), ctx["cell_seconds"])
    if not _ok(outcome):
        return None, _raised(outcome, "building the block")
    block = outcome[1]
    ctx["keep"].append(block)
    if not is_module(block):
        return None, {"error": dict(_ERR, type="TypeError", message=f"{name}(...) did not make an nn.Module")}
    return block, None


def _forward(ctx, block, inputs, train=False):
    ctx["call"](JOB_SET_MODE, (block, train), ctx["cell_seconds"])
    outcome = ctx["call"](JOB_FORWARD, (block, tuple(inputs)), ctx["cell_seconds"])
    ctx["keep"].append(outcome)
    if not _ok(outcome):
        return None, outcome
    values = outcome[1]
    if type(values) is not tuple or len(values) != len(inputs):
        return None, ("raised", dict(_ERR, type="HandOff", message="no result"))
    return values, None






















_device_index = torch.device.index.__get__


def _device_kind(value):
    """(type, index) of a torch.device or a device string; (None, None) otherwise."""
    if type(value) is int and value >= 0:
        value = _Device("cuda", value)  # .to(0) is .to("cuda:0")
    if type(value) is str:
        try:
            value = _Device(value)
        except Exception:
            return None, None
    if type(value) is _Device:
        return _device_type(value), _device_index(value)
    return None, None


def _places(module):
    kinds = []
    if module is not None and is_module(module):
        for _, mod in walk(module):
            for kind in ("_parameters", "_buffers"):
                for _, t in tensors(mod, kind):
                    place = _tensor_place(t)
                    if place is not None and place not in kinds:
                        kinds.append(place)
    return sorted(kinds) if kinds else None


def _tensor_place(value):
    if exact_tensor(value):
        with _DisableTorchFunction():
            return _device_type(_device_of(value))
    if value is not None and derives(value, _Tensor):
        return "subclass"
    return None




# ---- the grader's calls -------------------------------------------------------------------------------

PLUGINS = {}  # assignment id -> the namespace of its sandbox-side probes (runner.load_core fills it)
_ACTIVE = [None]  # the probes of the plan's assignment: PREPARE (op -> seeded values), OPS (op -> check)


def _plugin_table(name):
    plugin = _ACTIVE[0]
    table = plugin.get(name) if type(plugin) is dict else None
    return table if type(table) is dict else {}


def _plugin_name(name):
    """A name the plan's assignment's probes give (CLASS: the class a check builds when its spec names none)."""
    plugin = _ACTIVE[0]
    value = plugin.get(name) if type(plugin) is dict else None
    return value if type(value) is str else None


def make_probes(plan, world):
    """The seeded values for every check this world runs, made before any notebook code (by the plan's
    assignment's PREPARE; a check without one gets none)."""
    _ACTIVE[0] = PLUGINS.get(plan.get("assignment"))
    prepare = _plugin_table("PREPARE")
    pre = {}
    for cell in plan["cells"]:
        if cell["kind"] != "probe" or world not in cell["worlds"]:
            continue
        for spec in cell["probes"]:
            if world not in spec.get("worlds", cell["worlds"]):
                continue
            op = spec["op"]
            pre[spec["id"]] = prepare[op](spec) if op in prepare else {}
    return pre


def _run(spec, pre, ctx, world, mode, blobs, cls):
    op = spec["op"]
    _set_grad_enabled(False)
    try:
        plugin_ops = _plugin_table("OPS")
        if op in plugin_ops:
            out = plugin_ops[op](spec, pre[spec["id"]], ctx, blobs, cls)
        else:
            out = {"error": dict(_ERR, type="ProbeError", message=f"unknown probe {op!r}")}
    except Exception as exc:  # the grader's own failure: reported as such, never as the student's
        out = {"error": dict(_ERR, type="GraderError", message=_type_name(type(exc)))}
    return dict({"id": spec["id"], "op": op, "world": world, "mode": mode}, **out)


def _settle_threads(ctx):
    """Threads the notebook started may race the checks: wait briefly for them to end (a
    DataLoader's helper threads stop on their own), then say so if some are still running."""
    deadline = _monotonic() + 2.0
    while ctx["notebook_threads"]() > 0 and _monotonic() < deadline:
        _sleep(0.01)
    if ctx["notebook_threads"]() > 0:
        ctx["alerts"].append("threads started by the notebook were still running while the checks ran")


def run_point(cell, pre, ctx, world, mode):
    """The checks at one test cell's place; those marked `defer` (cases the notebook must not see)
    are kept, with the notebook's class as it is now, for after the last cell."""
    ctx["ns"] = dict(str_items(ctx["namespace"]))
    ctx["keep"].append(ctx["ns"])
    _settle_threads(ctx)
    results, blobs, later = [], [], []
    for spec in cell["probes"]:
        if world not in spec.get("worlds", cell["worlds"]):
            continue
        cls = field(ctx["ns"], spec.get("cls") or _plugin_name("CLASS"))
        if spec.get("defer"):
            later.append((spec, cls))
            continue
        results.append(_run(spec, pre, ctx, world, mode, blobs, cls))
    return results, blobs, later


def run_deferred(later, pre, ctx, world, mode):
    _settle_threads(ctx)
    results, blobs = [], []
    for spec, cls in later:
        results.append(_run(spec, pre, ctx, world, mode, blobs, cls))
    return results, blobs
