"""Notebook 10's probes: what the grader observes of the notebook's ResidualBlock, its demo cell's
outputs, its ResNet18 and where its tensors are. Sandbox side: loaded privately as
nb10_sandbox.plugins.notebook10.probes next to the generic probes, under their rules (see
autograder/sandboxed/probe.py): every function used after the notebook starts is bound when this
file is loaded, only C functions and C types' methods touch the notebook's objects (no operator
on a tensor, no attribute of a notebook object read through Python), every value from the
notebook is checked for its exact type before use, and the notebook's code runs only as jobs on
its own thread (ctx["call"]; the jobs of this assignment are jobs.py's).

A probe never judges: it builds the notebook's classes, loads parameters and inputs derived from
a seed into them (seeded.py; the trusted side derives the same), runs them and sends back arrays
and plain facts. The graders recompute the expected values with reference code and compare.

PREPARE[op](spec) makes a check's seeded values before any notebook code runs; OPS[op](spec, pre,
ctx, blobs, cls) makes its result.
"""

from . import jobs, seeded
from ...core import (JOB_SET_MODE, _DisableTorchFunction, _add_, _allclose, _clone, _contiguous, _copy_, _device_of,
                     _device_type, _dim, _equal, _idict, _is_floating, _mul_, _narrow, _numel, _size, _to, field,
                     str_items)
from ...probe import (SAMPLE, _ERR, _BatchNorm2d, _Conv2d, _Linear, _build, _copy_into, _device_kind, _forward, _ints,
                      _ok, _places, _raised, _tensor_place, _type_name, add_array, children, derives, describe,
                      exact_tensor, is_module, own_tensor, shape_of, state_shapes, tensor_or_error, tensors, walk)
import torch

CLASS = "ResidualBlock"  # the class a check builds (its spec names none)
MAIN_PARTS = ("conv1", "bn1", "conv2", "bn2")
_ACTIVATIONS = (torch.nn.ReLU, torch.nn.ReLU6, torch.nn.LeakyReLU, torch.nn.ELU, torch.nn.GELU, torch.nn.SiLU,
                torch.nn.Dropout, torch.nn.Dropout2d, torch.nn.Identity)
_make_input, _make_block_params, _make_resnet_params = seeded.make_input, seeded.make_block_params, seeded.make_resnet_params
_needs_projection, _block_output_shape = seeded.needs_projection, seeded.block_output_shape
JOB_COMPOSE, JOB_RESNET, JOB_OBSERVE = jobs.compose, jobs.resnet_outputs, jobs.observe


def the_layer(module, cls):
    """The module if it is a `cls`; the one `cls` inside a Sequential that holds nothing else with
    parameters (nn.Sequential(nn.Linear(512, 2)), with a Dropout, ...); else the module."""
    if module is None or not is_module(module) or derives(module, cls):
        return module
    if _type_name(type(module)) != "Sequential":
        return module
    inner = [m for _, m in children(module)]
    found = [m for m in inner if derives(m, cls)]
    others = [m for m in inner if not derives(m, cls) and param_count([m])]
    return found[0] if len(found) == 1 and not others else module


def main_parts(block):
    """The main path's modules by their scaffold names (None where missing)."""
    found = dict(children(block))
    return {name: (found[name] if name in found else None) for name in MAIN_PARTS}


def is_activation(module):
    for cls in _ACTIVATIONS:
        if derives(module, cls):
            return True
    return False


def rest_of(block, parts):
    """The block's other direct children (not main-path layers, not activations): the shortcut."""
    ids = [id(m) for m in parts.values() if m is not None]
    return [m for _, m in children(block) if id(m) not in ids and not is_activation(m)]


def leaves(modules):
    out = []
    for top in modules:
        for _, mod in walk(top):
            if not children(mod):
                out.append(mod)
    return out


def _load_bn(module, params, prefix, report):
    for name in ("weight", "bias", "running_mean", "running_var"):
        _copy_into(own_tensor(module, name) if module is not None else None, params[f"{prefix}.{name}"],
                   f"{prefix}.{name}", report)


def shortcut_layers(rest):
    all_leaves = leaves(rest)
    return ([m for m in all_leaves if derives(m, _Conv2d)], [m for m in all_leaves if derives(m, _BatchNorm2d)])


def load_block(parts, rest, params):
    """Copy the seeded parameters into the notebook's block, by role; return the mismatches."""
    report = []
    for conv in ("conv1", "conv2"):
        module = parts[conv]
        _copy_into(own_tensor(module, "weight") if module is not None else None, params[f"{conv}.weight"],
                   f"{conv}.weight", report)
    for bn in ("bn1", "bn2"):
        _load_bn(parts[bn], params, bn, report)
    if "shortcut.conv.weight" in params:
        convs, norms = shortcut_layers(rest)
        _copy_into(own_tensor(convs[0], "weight") if convs else None, params["shortcut.conv.weight"],
                   "shortcut.conv.weight", report)
        if norms:
            _load_bn(norms[0], params, "shortcut.bn", report)
        else:
            report.append({"param": "shortcut.bn", "expected": [list(_size(params["shortcut.bn.weight"]))[0]],
                           "found": None})
    return report


def param_count(modules):
    """How many parameter values the modules hold, their submodules included."""
    total = 0
    for top in modules:
        for _, mod in walk(top):
            for _, t in tensors(mod, "_parameters"):
                if exact_tensor(t):
                    total += _numel(t)
    return total


def floating_state(module):
    """(name, tensor) of a module's floating-point parameters and buffers, itself and below."""
    out = []
    for _, mod in walk(module):
        for kind in ("_parameters", "_buffers"):
            for name, t in tensors(mod, kind):
                if exact_tensor(t) and _is_floating(t):
                    out.append((name, t))
    return out


def depends_on(ctx, block, parts, x, params=None):
    """For each main-path layer: does the block's output (eval mode) change when that layer's
    parameters and statistics change? A layer the forward never calls changes nothing. With
    `params` (a correct block's seeded values), they are loaded first where their shapes fit, so
    that a block initialised with bn2's weight at zero (a known trick) does not hide conv1 to
    conv2; the block's own values are put back afterwards."""
    restore = []
    if params is not None:
        for name in MAIN_PARTS:
            module = parts[name]
            if module is None:
                continue
            for key in ("weight", "bias", "running_mean", "running_var"):
                t, value = own_tensor(module, key), params.get(f"{name}.{key}")
                if exact_tensor(t) and value is not None and list(_size(t)) == list(_size(value)):
                    with _DisableTorchFunction():
                        restore.append((t, _clone(t)))
                        _copy_(t, value)
    try:
        return _depends_on(ctx, block, parts, x)
    finally:
        with _DisableTorchFunction():
            for t, value in restore:
                _copy_(t, value)


def _depends_on(ctx, block, parts, x):
    base, _ = _forward(ctx, block, (x,))
    if base is None or not exact_tensor(base[0]):
        return None
    out = {}
    for name in MAIN_PARTS:
        module = parts[name]
        state = floating_state(module) if module is not None else []
        if not state:
            out[name] = False
            continue
        saved = []
        with _DisableTorchFunction():
            for key, t in state:
                saved.append((t, _clone(t)))
                if key == "running_var":
                    _mul_(t, 2.5)
                else:
                    _mul_(t, -1.5)
                    _add_(t, 0.37)
        after, _ = _forward(ctx, block, (x,))
        with _DisableTorchFunction():
            for t, value in saved:
                _copy_(t, value)
        if after is None or not exact_tensor(after[0]):
            out[name] = None
            continue
        with _DisableTorchFunction():
            same = list(_size(after[0])) == list(_size(base[0])) and _equal(after[0], base[0])
        out[name] = not same
    return out


def probe_block_shapes(spec, pre, ctx, cls, blobs):
    block, error = _build(ctx, cls, spec["args"], CLASS)
    if error:
        return error
    parts, _ = main_parts_by_role(block, spec["args"][0])
    missing = [name for name, module in parts.items() if module is None]
    values, failed = _forward(ctx, block, (pre["x1"], pre["x1"], pre["x2"]))
    if values is None:
        return _raised(failed, "calling the block")
    y1, y1b, y2 = values
    result = {"missing_layers": missing}
    for key, y in (("y1", y1), ("y1b", y1b), ("y2", y2)):
        made = tensor_or_error(("ok", y), blobs, SAMPLE)
        if "error" in made:
            return made
        result[key] = made
    result["shape"] = list(_size(y1))
    result["depends"] = depends_on(ctx, block, parts, pre["small"], pre.get("params"))
    return result


def main_parts_by_role(block, cin):
    """The main path's layers: by the scaffold's names where the block has them all, else by their
    role, read from the block's layers in the order they were made: a Conv2d taking the block's
    input channels, a BatchNorm2d, a Conv2d taking the first one's output, a BatchNorm2d (the main
    path written as one nn.Sequential under other names, say). None where neither finds them."""
    parts = main_parts(block)
    if all(m is not None for m in parts.values()):
        return parts, "names"
    layers = [m for _, m in walk(block) if not children(m) and (derives(m, _Conv2d) or derives(m, _BatchNorm2d))]
    runs = []
    for i in range(len(layers) - 3):
        a, b, c, d = layers[i:i + 4]
        if derives(a, _Conv2d) and derives(b, _BatchNorm2d) and derives(c, _Conv2d) and derives(d, _BatchNorm2d) \
                and field(_idict(a), "in_channels") == cin \
                and field(_idict(c), "in_channels") == field(_idict(a), "out_channels"):
            runs.append({"conv1": a, "bn1": b, "conv2": c, "bn2": d})
    # A shortcut made first can start a run too (its 1x1 conv and BN, then conv1 and bn1, when the
    # channels stay the same): a run of two 3x3 convolutions is the main path, where there is one.
    square = [r for r in runs if _ints(field(_idict(r["conv1"]), "kernel_size")) == [3, 3]
              and _ints(field(_idict(r["conv2"]), "kernel_size")) == [3, 3]]
    if runs:
        return (square or runs)[0], "roles"
    return parts, "names"


def _tensor_out(value, blobs):
    return add_array(blobs, value) if exact_tensor(value) else {"error": dict(_ERR, type="NotATensor", message="")}


def _observed(ctx, block, parts, x, w, grads, blobs, keep_main=True):
    """The block's forward on x (see student_side.observe), as plain results."""
    main = tuple(parts[n] for n in MAIN_PARTS)
    outcome = ctx["call"](JOB_OBSERVE, (block, x, w, main, grads), ctx["cell_seconds"])
    ctx["keep"].append(outcome)
    if not _ok(outcome) or type(outcome[1]) is not dict:
        failed = _raised(outcome, "calling the block")
        return {"Y": failed, "S": {"kind": "unknown"}}
    seen = outcome[1]
    out = {"Y": tensor_or_error(field(seen, "Y"), blobs)}
    shortcut = field(seen, "S")
    kind = shortcut[0] if type(shortcut) is tuple and len(shortcut) == 2 and type(shortcut[0]) is str else "unknown"
    if kind == "ok":
        out["S"] = tensor_or_error(shortcut, blobs)
    else:
        out["S"] = {"kind": kind if kind in ("identity", "unknown") else "unknown"}
    main_seen = field(seen, "M_seen")
    if keep_main and type(main_seen) is tuple and len(main_seen) == 2:
        out["M_seen"] = tensor_or_error(main_seen, blobs)
    if grads:
        grad_x = field(seen, "grad_x")
        if exact_tensor(grad_x):
            out["grad_x"] = add_array(blobs, grad_x)
        grad_error = field(seen, "grad_error")
        if type(grad_error) is dict:
            out["grad_error"] = _raised(("raised", grad_error), "backward")["error"]
        named = field(seen, "grads")
        out["grads"] = {}
        for key, value in str_items(named):
            index, _, pname = key.partition(".")
            if index.isdigit() and int(index) < len(MAIN_PARTS) and exact_tensor(value):
                out["grads"][f"{MAIN_PARTS[int(index)]}.{pname}"] = add_array(blobs, value)
    return out


def _zero_convs(parts):
    """Zero the main path's convolution weights (and biases): whatever order the layers run in,
    the main path's output is then one constant per channel."""
    saved = []
    with _DisableTorchFunction():
        for name in ("conv1", "conv2"):
            module = parts[name]
            if module is None:
                continue
            for key in ("weight", "bias"):
                t = own_tensor(module, key)
                if exact_tensor(t):
                    saved.append((t, _clone(t)))
                    _mul_(t, 0.0)
    return saved


def probe_block_numeric(spec, pre, ctx, cls, blobs):
    """A block built for spec["args"], with a correct block's seeded values loaded by role, run on
    seeded inputs in train and eval mode: its output and its shortcut's as its forward computes them,
    the gradients (train mode), the same with the main path's convolutions zeroed (how the shortcut
    joins), and, only where the block cannot be run, the main path and the shortcut composed from its
    layers (for the messages)."""
    block, error = _build(ctx, cls, spec["args"], CLASS)
    if error:
        return error
    cin = spec["args"][0]
    parts, found_by = main_parts_by_role(block, cin)
    ids = [id(m) for m in parts.values() if m is not None]
    rest = [m for _, m in children(block) if id(m) not in ids and not is_activation(m)
            and not any(id(sub) in ids for _, sub in walk(m))]
    result = {
        "main": {k: describe(m) for k, m in parts.items()},
        "found_by": found_by,
        "shortcut": [describe(m) for m in leaves(rest)],
        "shortcut_params": param_count(rest),
        "modes": {},
    }
    if "small" in pre:
        result["depends"] = depends_on(ctx, block, parts, pre["small"], pre["params"])
    for mode in spec["modes"]:
        params, train = pre["params"], mode == "train"
        x, w = pre["inputs"][mode], pre["upstream"]
        result["load"] = load_block(parts, rest, params)
        ctx["call"](JOB_SET_MODE, (block, train), ctx["cell_seconds"])
        outs = _observed(ctx, block, parts, x, w, train, blobs)
        projecting = _needs_projection(cin, spec["args"][1], spec["args"][2])
        if "error" in outs["Y"] or (projecting and outs["S"].get("kind") == "identity"):
            outcome = ctx["call"](JOB_COMPOSE, (tuple(parts[n] for n in MAIN_PARTS), tuple(rest), block, x),
                                  ctx["cell_seconds"])
            ctx["keep"].append(outcome)
            if _ok(outcome) and type(outcome[1]) is tuple and len(outcome[1]) == 3:
                outs["M"] = tensor_or_error(outcome[1][0], blobs)
                outs["S_composed"] = tensor_or_error(outcome[1][1], blobs)
        load_block(parts, rest, params)
        saved = _zero_convs(parts)
        zeroed = _observed(ctx, block, parts, x, w, train, blobs, keep_main=False)
        with _DisableTorchFunction():
            for t, value in saved:
                _copy_(t, value)
        outs["Z"] = zeroed["Y"]
        if "grad_x" in zeroed:
            outs["Z_grad_x"] = zeroed["grad_x"]
        result["modes"][mode] = outs
    return result


def probe_resnet(spec, pre, ctx, blobs):
    ns = ctx["ns"]
    model = field(ns, spec["var"])
    if model is None:
        return {"error": dict(_ERR, type="NameError", message=f"{spec['var']} is not defined")}
    if not is_module(model):
        return {"error": dict(_ERR, type="TypeError", message=f"{spec['var']} is not an nn.Module")}
    found = dict(children(model))
    result = {"conv1": describe(the_layer(found["conv1"] if "conv1" in found else None, _Conv2d)),
              "fc": describe(the_layer(found["fc"] if "fc" in found else None, _Linear)),
              "state": state_shapes(model, ctx["alerts"]),
              "children": {name: _type_name(type(child)) for name, child in found.items()},
              "vars": {}}
    for name in spec.get("shapes_of", []):
        result["vars"][name] = shape_of(field(ns, name))
    if ctx["mode"] == "cuda-simulated":  # the model's tensors are data-less there: nothing to compute
        return result
    outcome = ctx["call"](JOB_RESNET, (model, pre["params"], pre["x"], pre["features"]), ctx["cell_seconds"])
    ctx["keep"].append(outcome)
    if _ok(outcome) and type(outcome[1]) is dict:
        outs = outcome[1]
        for key in ("conv1_out", "fc_out", "rest_out"):
            part = field(outs, key)
            result[key] = tensor_or_error(part, blobs)
        load = field(outs, "load")
        result["load"] = load if type(load) is list else []
    else:
        for key in ("conv1_out", "fc_out", "rest_out"):
            result[key] = _raised(outcome, "running resnet_model")
        result["load"] = []
    return result


def probe_shapes(spec, pre, ctx, blobs):
    """Shapes of the notebook's own output tensors, and whether each is what its block gives for
    its input: the block is run again on that input (in train mode, as the notebook ran it)."""
    ns = ctx["ns"]
    out = {}
    for name, pair in spec["vars"].items():
        block_name, input_name = pair
        value = field(ns, name)
        if not exact_tensor(value):
            out[name] = {"shape": None}
            continue
        with _DisableTorchFunction():
            data = _device_type(_device_of(value)) != "meta"
        entry = {"shape": list(_size(value)), "reproduced": False, "data": data}
        if not data:  # the run where CUDA is simulated: a shape, nothing to read
            out[name] = entry
            continue
        entry["sample"] = add_array(blobs, value, SAMPLE)
        entry["deterministic"] = True
        block, given = field(ns, block_name), field(ns, input_name)
        if block is not None and is_module(block):
            training = field(_idict(block), "training") is not False  # as the notebook left it
            parts, _ = main_parts_by_role(block, list(_size(given))[1] if exact_tensor(given) and _dim(given) == 4 else 0)
            entry["missing_layers"] = [k for k, m in parts.items() if m is None]
            if exact_tensor(given) and _dim(given) == 4:
                with _DisableTorchFunction():
                    n, _, h, w = list(_size(given))
                    small = _contiguous(_narrow(_narrow(_narrow(given, 0, 0, min(n, 2)), 2, 0, min(h, 6)), 3, 0,
                                                min(w, 5)))
                entry["depends"] = depends_on(ctx, block, parts, small, pre.get(name))
            if exact_tensor(given):
                # first in the mode the notebook left the block in; then in the other one, since a later
                # cell may have switched it after the output was made (restored afterwards)
                for attempt, train in enumerate((training, not training)):
                    again, _ = _forward(ctx, block, (given, given), train=train)
                    if again is None or not exact_tensor(again[0]) or not exact_tensor(again[1]):
                        continue
                    if attempt == 0:
                        with _DisableTorchFunction():
                            entry["deterministic"] = bool(list(_size(again[0])) == list(_size(again[1])) and
                                                          _allclose(again[0], again[1], rtol=1e-5, atol=1e-6))
                    with _DisableTorchFunction():
                        a = _to(again[0], device="cpu")
                        b = _to(value, device="cpu")
                        entry["reproduced"] = bool(list(_size(a)) == list(_size(b)) and
                                                   _allclose(a, b, rtol=1e-4, atol=1e-5))
                    if entry["reproduced"]:
                        break
                ctx["call"](JOB_SET_MODE, (block, training), ctx["cell_seconds"])
        out[name] = entry
    return out


def probe_device(spec, pre, ctx, blobs):
    """Where `device`, the model, the batch and the output are, read from the objects themselves:
    exact tensors only (a tensor subclass can report any device, and is reported as such)."""
    ns = ctx["ns"]
    device = field(ns, "device")
    kind, index = _device_kind(device)
    result = {
        "device": {"type": kind, "index": index, "defined": device is not None},
        "model": _places(field(ns, "resnet_model")),
        "images": _tensor_place(field(ns, "images")),
        "output": _tensor_place(field(ns, "output")),
        "demo": {name: (_places(field(ns, name)) if name.startswith("block") else _tensor_place(field(ns, name)))
                 for name in spec.get("demo", ())},
        "demo_defined": [name for name in spec.get("demo", ()) if field(ns, name) is not None],
    }
    seen = (result["model"] or []) + [result["images"], result["output"]] + [
        p for v in result["demo"].values() for p in (v if type(v) is list else [v])]
    if "subclass" in seen:
        ctx["alerts"].append("a tensor subclass stood where the device check looks (it can report any device)")
    return result


# ---- seeded values, made before any notebook code --------------------------------------------------

def _prepare_block_shapes(spec):
    cin, cout = spec["args"][0], spec["args"][1]
    stride = spec["args"][2] if len(spec["args"]) > 2 else 1
    return {"x1": _make_input(spec["input"], spec["seed"]), "x2": _make_input(spec["input"], spec["seed"] + 1),
            "small": _make_input([2, cin, 6, 5], spec["seed"] + 7),
            "params": _make_block_params(cin, cout, stride, spec["seed"] + 8)}


def _prepare_block_numeric(spec):
    cin, cout, stride = spec["args"]
    pre = {"params": _make_block_params(cin, cout, stride, spec["seed"], spec.get("silence")),
           "inputs": {mode: _make_input(spec["input"], spec["seed"] + (1 if mode == "train" else 2))
                      for mode in spec["modes"]}}
    pre["upstream"] = _make_input(_block_output_shape(cin, cout, stride, spec["input"]), spec["seed"] + 5)
    if spec.get("depends"):
        pre["small"] = _make_input([2, cin, 6, 5], spec["seed"] + 7)
    return pre


def _prepare_shapes(spec):
    return {name: _make_block_params(*args, spec["seed"]) for name, args in spec.get("configs", {}).items()}


def _prepare_resnet(spec):
    return {"params": _make_resnet_params(spec["seed"]), "x": _make_input([4, 1, 28, 28], spec["seed"] + 1),
            "features": _make_input([4, 512], spec["seed"] + 2)}


def _nothing(spec):
    return {}


def _with_class(probe):
    return lambda spec, pre, ctx, blobs, cls: probe(spec, pre, ctx, cls, blobs)


def _without_class(probe):
    return lambda spec, pre, ctx, blobs, cls: probe(spec, pre, ctx, blobs)


PREPARE = {"block_shapes": _prepare_block_shapes, "block_numeric": _prepare_block_numeric, "shapes": _prepare_shapes,
           "resnet": _prepare_resnet, "device": _nothing}
OPS = {"block_shapes": _with_class(probe_block_shapes), "block_numeric": _with_class(probe_block_numeric),
       "resnet": _without_class(probe_resnet), "shapes": _without_class(probe_shapes),
       "device": _without_class(probe_device)}
