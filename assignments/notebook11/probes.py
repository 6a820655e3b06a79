"""Notebook 11's probes: what the grader observes of the notebook's DoubleConv, Down, Up, UNet and
of where its tensors are. Sandbox side: loaded privately as nb10_sandbox.plugins.notebook11.probes
next to the generic probes, under the same rules (see autograder/sandboxed/probe.py): every function used
after the notebook starts is bound when this file is loaded, only C functions and C types' methods
touch the notebook's objects (no operator on a tensor, no attribute of a notebook object read
through Python), every value from the notebook is checked for its exact type before use, and the
notebook's code runs only as jobs on its own thread (ctx["call"]).

A probe never judges: it builds the notebook's classes, loads seed-derived parameters into them
(seeded.py; the trusted side derives the same and runs the reference U-Net), runs them in eval
mode on seeded inputs and sends back the outputs and plain facts. The graders compare.

PREPARE[op](spec) makes a check's seeded values before any notebook code runs; OPS[op](spec, pre,
ctx, blobs, cls) makes its result.
"""

from . import seeded
from ...core import JOB_QUIETLY, JOB_SET_MODE, _DisableTorchFunction, _clone, _idict, _mul_, _size, str_items
from ...probe import (_ERR, _build, _copy_into, _device_kind, _forward, _ints, _ok, _places, _raised, _tensor_place,
                      add_array, children, derives, describe, exact_tensor, field, own_tensor, shape_of, state_shapes,
                      walk)
import torch

_Conv2d, _ConvT, _BatchNorm2d, _MaxPool2d = torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.BatchNorm2d, torch.nn.MaxPool2d
# C functions, for what the grader computes itself on its own tensors (never the notebook's)
_max_pool2d, _cat, _conv_transpose2d, _constant_pad = torch.max_pool2d, torch.cat, torch.conv_transpose2d, torch.constant_pad_nd
_ROLES = ((seeded.CONV, _Conv2d), (seeded.CONV_T, _ConvT), (seeded.BN, _BatchNorm2d))
_type_name = type.__dict__["__name__"].__get__
_type_of = type
_layers, _inputs_for, _params_for = seeded.layers, seeded.inputs_for, seeded.params_for
CLASS_OF = {"double_conv": "DoubleConv", "down": "Down", "up": "Up", "unet": "UNet"}
UNET_PARTS = ("inc", "down1", "down2", "down3", "up1", "up2", "up3", "outc")


def _error(kind, message):
    return {"error": dict(_ERR, type=kind, message=message)}


# ---- the notebook's modules, read without running their code ---------------------------------------------

def layer(module):
    """A leaf module in plain facts: describe()'s, and a transposed convolution's or max-pool's sizes."""
    if derives(module, _ConvT):
        d = _idict(module)
        return {"type": "ConvTranspose2d", "in": field(d, "in_channels"), "out": field(d, "out_channels"),
                "kernel": _ints(field(d, "kernel_size")), "stride": _ints(field(d, "stride")),
                "padding": _ints(field(d, "padding"))}
    if derives(module, _MaxPool2d):
        d = _idict(module)
        return {"type": "MaxPool2d", "kernel": _ints(field(d, "kernel_size")),
                "stride": _ints(field(d, "stride")) if field(d, "stride") is not None else None}
    return describe(module)


def leaves(module):
    """(qualified name, module) of the module's leaves, in registration order."""
    return [(name, m) for name, m in walk(module) if not children(m)]


def _role(module):
    for role, cls in _ROLES:
        if derives(module, cls):
            return role
    return None


# ---- seeded parameters in -----------------------------------------------------------------------------

def _by_names(module, layout):
    """The layout's layers found by their state_dict paths, when every tensor is there with its shape."""
    found = dict(walk(module))
    pairs = []
    for path, role, shapes in layout:
        mod = found[path] if path in found else None
        if mod is None or _role(mod) != role:
            return None
        for name, shape in shapes.items():
            t = own_tensor(mod, name)
            if not exact_tensor(t) or list(_size(t)) != list(shape):
                return None
        pairs.append((path, role, mod))
    return pairs


def _by_roles(module, layout):
    """The layout's layers paired with the module's, role by role in registration order (the k-th
    convolution with the k-th convolution, ...): a layout under other names."""
    mine = {role: [m for _, m in leaves(module) if _role(m) == role] for role, _ in _ROLES}
    taken = {role: 0 for role, _ in _ROLES}
    pairs = []
    for path, role, _ in layout:
        index = taken[role]
        pairs.append((path, role, mine[role][index] if index < len(mine[role]) else None))
        taken[role] = index + 1
    extra = [role for role, _ in _ROLES if len(mine[role]) > taken[role]]
    return pairs, extra


def load(module, kind, args, params):
    """Copy a correct module's seeded values into the notebook's, by state_dict name, else by
    role. A bias the layout has none of (a convolution followed by batch norm) is zeroed, so that
    it changes nothing. Returns what did not fit, how the layers were found, and what was zeroed."""
    layout = _layers(kind, args)
    pairs, extra, found_by = _by_names(module, layout), [], "names"
    if pairs is None:
        pairs, extra = _by_roles(module, layout)
        found_by = "roles"
    report, zeroed = [], []
    with _DisableTorchFunction():
        for path, role, mod in pairs:
            for name, shape in layout_tensors(layout, path).items():
                key = f"{path}.{name}"
                _copy_into(own_tensor(mod, name) if mod is not None else None, params[key], key, report)
            if mod is not None and role == seeded.CONV and "bias" not in layout_tensors(layout, path):
                bias = own_tensor(mod, "bias")
                if exact_tensor(bias):
                    _mul_(bias, 0.0)
                    zeroed.append(f"{path}.bias")
    return {"mismatches": report, "found_by": found_by, "extra_layers": extra, "zeroed": zeroed}


def layout_tensors(layout, path):
    for p, _, shapes in layout:
        if p == path:
            return shapes
    return {}


# ---- running the notebook's modules ---------------------------------------------------------------------

def _copy(value):
    """A fresh copy of a seeded input for each call: a forward that changes its input in place
    changes nothing for the next one."""
    with _DisableTorchFunction():
        return _clone(value)


def _make(ctx, cls, name, args):
    if cls is None:
        return None, _error("NameError", f"{name} is not defined")
    module, error = _build(ctx, cls, args)
    message = field(error["error"], "message") if error else None
    if type(message) is str and message.startswith("ResidualBlock(...)"):  # _build's words for "not a module"
        return None, _error("TypeError", f"{name}(...) did not make an nn.Module")
    return module, error


def _at(facts, name):
    """The error's facts (exact str keys only: no key of the notebook's is compared) and where."""
    out = {key: value for key, value in str_items(facts)}
    out["at"] = name
    return out


def _run(ctx, module, inputs):
    """module(*inputs) in eval mode, as (tensor or None, error result or None). One input goes
    through _forward; two (Up's x and skip) through the notebook thread's plain call."""
    if len(inputs) == 1:
        values, failed = _forward(ctx, module, (_copy(inputs[0]),), False)
        if values is None:
            return None, _raised(failed, "calling the module")
        value = values[0]
    else:
        ctx["call"](JOB_SET_MODE, (module, False), ctx["cell_seconds"])
        outcome = ctx["call"](JOB_QUIETLY, (module,) + tuple(_copy(x) for x in inputs), ctx["cell_seconds"])
        ctx["keep"].append(outcome)
        if not _ok(outcome):
            return None, _raised(outcome, "calling the module")
        value = outcome[1]
    if not exact_tensor(value):
        return None, _error("NotATensor", f"returned {_type_name(_type_of(value))}, not a tensor")
    return value, None


def _out(value, error, blobs):
    return error["error"] if error else add_array(blobs, value)


def _values(spec, pre, ctx, blobs, cls):
    name = CLASS_OF[spec["kind"]]
    module, error = _make(ctx, cls, name, spec["args"])
    if error:
        return error, None
    result = {"layers": [dict(layer(m) or {}, name=q) for q, m in leaves(module)],
              "children": {n: _type_name(_type_of(c)) for n, c in children(module)},
              "state": state_shapes(module, ctx["alerts"]),
              "load": load(module, spec["kind"], spec["args"], pre["params"])}
    ctx["call"](JOB_SET_MODE, (module, False), ctx["cell_seconds"])
    xs = pre["inputs"]
    if spec["kind"] == "up":
        for key, x, skip in (("y", "x", "skip"), ("y2", "x2", "skip2")):
            if x in xs:
                value, error = _run(ctx, module, (xs[x], xs[skip]))
                result[key] = _out(value, error, blobs)
    else:
        for key, x in (("y", "x"), ("y2", "x2")):
            if x in xs:
                value, error = _run(ctx, module, (xs[x],))
                result[key] = _out(value, error, blobs)
    if spec["kind"] in ("down", "up"):
        result["composed"] = _composed(spec, pre, ctx, module, blobs)
    return result, module


def _inner_double_conv(module):
    for q, m in walk(module):
        if q and _type_name(_type_of(m)) == "DoubleConv":
            return m
    return None


def _composed(spec, pre, ctx, module, blobs):
    """What the step gives with the notebook's own DoubleConv inside it and everything else done
    right: DoubleConv(max-pool(x)) for a Down; DoubleConv(cat([skip, pad(up(x))], dim=1)) for an
    Up, with up the seeded transposed convolution, computed here. Judges the step's own code apart
    from its DoubleConv's (the DoubleConv item charges that)."""
    inner = _inner_double_conv(module)
    if inner is None:
        return _at(dict(_ERR, type="Missing", message="DoubleConv"), None)
    xs, params = pre["inputs"], pre["params"]
    out = {}
    for key, x, skip in (("y", "x", "skip"), ("y2", "x2", "skip2")):
        if x not in xs:
            continue
        with _DisableTorchFunction():
            if spec["kind"] == "down":
                joined = _max_pool2d(xs[x], [2, 2])
            else:
                u = _conv_transpose2d(xs[x], params["up.weight"], params["up.bias"], stride=2)
                s = xs[skip]
                dy, dx = list(_size(s))[2] - list(_size(u))[2], list(_size(s))[3] - list(_size(u))[3]
                u = _constant_pad(u, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2], 0.0)
                joined = _cat([s, u], 1)
        ctx["call"](JOB_SET_MODE, (inner, False), ctx["cell_seconds"])
        value, error = _run(ctx, inner, (joined,))
        out[key] = _out(value, error, blobs)
    return out


def probe_values(spec, pre, ctx, blobs, cls):
    """The notebook's class built with spec["args"], a correct module's seeded values loaded, run
    in eval mode on the seeded inputs: its outputs ("y", and "y2" for a second input), its layers
    and how the values went in."""
    return _values(spec, pre, ctx, blobs, cls)[0]


def unet_parts(args):
    """What the exercise builds each of UNet's parts with: name -> (class, arguments)."""
    c, _, b = args
    return {"inc": ("DoubleConv", [c, b]), "down1": ("Down", [b, 2 * b]), "down2": ("Down", [2 * b, 4 * b]),
            "down3": ("Down", [4 * b, 8 * b]), "up1": ("Up", [8 * b, 4 * b]), "up2": ("Up", [4 * b, 2 * b]),
            "up3": ("Up", [2 * b, b])}


def probe_unet(spec, pre, ctx, blobs, cls):
    """probe_values for a UNet, and what it takes to judge its wiring apart from its parts: for each
    part, the state shapes of the notebook's own class of that part built with the arguments the
    exercise gives it ("parts"), and the output of the parts run one after the other as a U-Net runs
    them, x1 = inc(x), ..., outc(up3(..., x1)) ("composed"), or the part where that stopped."""
    result, model = _values(spec, pre, ctx, blobs, cls)
    if model is None:
        return result
    found = dict(children(model))
    result["outc"] = layer(found["outc"]) if "outc" in found else None
    result["parts"] = {}
    for name, (_, args) in unet_parts(spec["args"]).items():
        if name not in found:
            continue
        part, error = _make(ctx, _type_of(found[name]), name, args)  # the notebook's class of that part
        result["parts"][name] = error["error"] if error else state_shapes(part, ctx["alerts"])
    missing = [name for name in UNET_PARTS if name not in found]
    if missing:
        result["composed"] = _at(dict(_ERR, type="Missing", message=", ".join(missing)), None)
        return result
    steps = (("x1", "inc", ("x",)), ("x2", "down1", ("x1",)), ("x3", "down2", ("x2",)), ("x4", "down3", ("x3",)),
             ("u", "up1", ("x4", "x3")), ("u", "up2", ("u", "x2")), ("u", "up3", ("u", "x1")), ("y", "outc", ("u",)))
    maps = {"x": pre["inputs"]["x"]}
    for out, name, ins in steps:
        ctx["call"](JOB_SET_MODE, (found[name], False), ctx["cell_seconds"])
        value, error = _run(ctx, found[name], tuple(maps[i] for i in ins))
        if error:
            result["composed"] = _at(error["error"], name)
            return result
        maps[out] = value
    result["composed"] = add_array(blobs, maps["y"])
    return result


def probe_vars(spec, pre, ctx, blobs, cls):
    """Shapes of the notebook's own tensors (data-less ones too), and the class of its model."""
    ns = ctx["ns"]
    model, unet = field(ns, "model"), field(ns, "UNet")
    return {"shapes": {name: shape_of(field(ns, name)) for name in spec["vars"]},
            "defined": [name for name in spec["vars"] if field(ns, name) is not None],
            "model": None if model is None else _type_name(_type_of(model)),
            "model_is_unet": model is not None and unet is not None and derives(model, unet)}


def probe_device(spec, pre, ctx, blobs, cls):
    """Where `device`, the model, the batch and the logits are, read from the objects themselves:
    exact tensors only (a tensor subclass can report any device, and is reported as such)."""
    ns = ctx["ns"]
    device = field(ns, "device")
    kind, index = _device_kind(device)
    result = {"device": {"type": kind, "index": index, "defined": device is not None},
              "model": _places(field(ns, "model")),
              "defined": [name for name in ("model", "images", "masks", "logits") if field(ns, name) is not None]}
    for name in ("images", "masks", "logits"):
        result[name] = _tensor_place(field(ns, name))
    if "subclass" in (result["model"] or []) + [result["images"], result["masks"], result["logits"]]:
        ctx["alerts"].append("a tensor subclass stood where the device check looks (it can report any device)")
    return result


# ---- the plug-in's interface ------------------------------------------------------------------------------

def _prepare_values(spec):
    return {"params": _params_for(spec), "inputs": _inputs_for(spec)}


def _nothing(spec):
    return {}


PREPARE = {"double_conv": _prepare_values, "down": _prepare_values, "up": _prepare_values, "unet": _prepare_values,
           "vars": _nothing, "device": _nothing}
OPS = {"double_conv": probe_values, "down": probe_values, "up": probe_values, "unet": probe_unet,
       "vars": probe_vars, "device": probe_device}
