"""Notebook 11's visible self-checks: the notebook side, next to the student's code.

`autograder release` copies this module's source, after graders/messages.py's, into the release's
helper cell, inside one function whose locals they become (autograder/inlineselfchecks.py): the
cell binds only ENTRY_POINTS, so none of the student's names can change what the checks do. The
source notebook imports this module instead.

Each check tries the cases the grader shows (messages.*_CASES) and returns the grader's message for
the first mistake it finds, or None. It judges the student's classes with their own freshly made
weights where the grader loads seeded ones: a step "computes what it should" when its output equals
what its own layers give when run as the exercise says. A check never lets the student's exception
escape: where their code raises, it says what the grader says (the exception, with its line of the
student's cell); where it cannot tell, it says nothing and leaves the verdict to the grader.
"""

import linecache
import re
import sys
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F

# (the release's helper cell defines these just above; the source notebook imports them)
from assignments.notebook11.graders.messages import (DEVICE_FIXES, DEVICE_WORDS, DOUBLE_CONV_CASES, DOWN_CASES,
                                                     DOWN_VARIANTS, KINDS, LOGITS_NOT_A_TENSOR, UNET_CASES,
                                                     UNET_PARTS_RULE, UP_CASES, UP_VARIANTS, build_raised,
                                                     case_label, case_problem, describe_error, device_choice_problem,
                                                     device_index_problem, device_not_defined, double_conv_layers_problem,
                                                     down_layers_problem, logits_shape_problem, missing_on_device,
                                                     name_missing, no_tensor, not_defined, not_finite, not_live,
                                                     outc_problem, placement_note, placement_problem, shape_problem,
                                                     step_raised, stopped_with, unet_missing_parts, unet_part_problem,
                                                     unet_raised, unet_wiring, up_error_hint, up_layers_problem,
                                                     variant_problem, world_words, wrong_values)

# What the notebook's self-check cells call (the release's helper cell defines only these names).
ENTRY_POINTS = ("double_conv_problem", "down_up_problem", "unet_problem", "device_problem")


class Verdict(Exception):
    """The grader's message for the case at hand: ends a check."""


# ---- the notebook's cells, as the grader's runs report them -----------------------------------------------

# Each cell's last run (IPython's post_run_cell; this cell comes first, so it sees every cell after it).
CELL_ERRORS = {}
CELL_SOURCES = {}
# The answer cells, by what they make: the grader names a cell that stopped by its grade id.
CELL_IDS = (("double_conv", r"^class DoubleConv\b"), ("down", r"^class Down\b"), ("up", r"^class Up\b"),
            ("unet", r"^class UNet\b"), ("setup", r"^device\s*="), ("unet_demo", r"^model\s*="),
            ("train_unet", r"^losses\s*="))
STEP_IDS = ("double_conv", "down", "up")


def note_cell(result):
    source = result.info.raw_cell
    if "_problem is None" in source:
        return  # a self-check cell: the grader runs its own checks in its place
    key = getattr(result.info, "cell_id", None) or source
    CELL_ERRORS.pop(key, None)  # the latest run counts, in the order of the latest runs
    CELL_ERRORS[key] = result.error_in_exec or getattr(result, "error_before_exec", None)
    CELL_SOURCES[key] = source


def watch_cells():
    """Listen to IPython's post_run_cell (once: running this cell again replaces the listener)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    for listener in list(shell.events.callbacks.get("post_run_cell", [])):
        if getattr(listener, "__name__", "") == "note_cell":
            shell.events.unregister("post_run_cell", listener)
    shell.events.register("post_run_cell", note_cell)


def cell_id(source):
    return next((gid for gid, pattern in CELL_IDS if re.search(pattern, source or "", re.MULTILINE)), None)


def own_frames(exc):
    """The traceback's frames in the notebook's cells: not a library's, not these helpers'."""
    here = cell_id.__code__.co_filename
    return [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != here
            and "site-packages" not in f.filename and not f.filename.startswith((sys.prefix, sys.base_prefix))]


def error_facts(exc):
    """The exception as the grader's sandbox reports it: type, message, and the last line of the
    notebook's own code it passed through (with the cell that line is in)."""
    facts = {"type": type(exc).__name__, "message": str(exc)[:500], "line": None, "code": None, "cell": None}
    if isinstance(exc, SyntaxError):
        facts.update(message=str(exc.msg)[:500], line=exc.lineno, code=(exc.text or "").strip() or None)
    frames = own_frames(exc)
    if frames and frames[-1].line:
        facts.update(line=frames[-1].lineno, code=frames[-1].line.strip(),
                     cell=cell_id("".join(linecache.getlines(frames[-1].filename))))
    return facts


def earlier_failure(name):
    """The grader's words for the earlier cell that stopped (the first that assigns `name`, else the
    first), or None when no cell stopped. Raises Verdict(None) when that cell cannot be named."""
    failed = [key for key, exc in CELL_ERRORS.items() if exc is not None]
    assigning = [key for key in failed if re.search(rf"^\s*{re.escape(name)}\s*[,=]", CELL_SOURCES[key], re.MULTILINE)]
    if not failed:
        return None
    key = (assigning or failed)[0]
    label = cell_id(CELL_SOURCES[key])
    if label is None:
        raise Verdict(None)
    return stopped_with(f"cell `{label}`", error_facts(CELL_ERRORS[key]))


def the_class(env, name):
    cls = env.get(name)
    if cls is None:
        raise Verdict(name_missing(f"{name} is not defined", earlier_failure(name)))
    return cls


def quietly(check):
    """A check that meets something it was not written for says nothing rather than crash."""
    def checked(*args):
        try:
            check(*args)
        except Verdict as verdict:
            return verdict.args[0]
        except Exception:
            return None
        return None
    checked.__name__ = check.__name__
    return checked


# ---- the student's modules, as the grader's probes describe them ------------------------------------------

def ints(value):
    return [value, value] if isinstance(value, int) else [v for v in value if isinstance(v, int)]


def describe(module):
    if isinstance(module, nn.Conv2d):
        return {"type": "Conv2d", "in": module.in_channels, "out": module.out_channels,
                "kernel": ints(module.kernel_size), "stride": ints(module.stride),
                "padding": module.padding if isinstance(module.padding, str) else ints(module.padding),
                "bias": module.bias is not None}
    if isinstance(module, nn.ConvTranspose2d):
        return {"type": "ConvTranspose2d", "in": module.in_channels, "out": module.out_channels,
                "kernel": ints(module.kernel_size), "stride": ints(module.stride), "padding": ints(module.padding)}
    if isinstance(module, nn.BatchNorm2d):
        return {"type": "BatchNorm2d", "features": module.num_features}
    if isinstance(module, nn.MaxPool2d):
        return {"type": "MaxPool2d", "kernel": ints(module.kernel_size),
                "stride": None if module.stride is None else ints(module.stride)}
    return {"type": type(module).__name__}


def walk(module):
    """The module and its submodules, depth first, as the probes walk them (shared ones repeated)."""
    return [module] + [m for child in module._modules.values() if isinstance(child, nn.Module) for m in walk(child)]


def leaves(module):
    return [m for m in walk(module) if not any(isinstance(c, nn.Module) for c in m._modules.values())]


def of_type(module, cls):
    return [m for m in leaves(module) if isinstance(m, cls)]


def inner_double_conv(module):
    return next((m for m in walk(module)[1:] if type(m).__name__ == "DoubleConv"), None)


def build(kind, cls, args, label):
    try:
        module = cls(*args)
    except Exception as exc:
        raise Verdict(build_raised(label, describe_error(error_facts(exc))))
    if not isinstance(module, nn.Module):
        raise Verdict(build_raised(label, describe_error({"type": "TypeError",
                                                         "message": f"{KINDS[kind]}(...) did not make an nn.Module"})))
    with torch.no_grad():  # as the grader's probe does: a bias that batch norm follows changes nothing
        for conv in of_type(module, nn.Conv2d)[:-1] if kind == "unet" else of_type(module, nn.Conv2d):
            if conv.bias is not None:
                conv.bias.zero_()
    return module.eval()


def run(module, *inputs):
    """The module's output on copies of the inputs: (tensor, None) or (None, the grader's error facts)."""
    try:
        with torch.no_grad():
            y = module(*[x.clone() for x in inputs])
    except Exception as exc:
        return None, error_facts(exc)
    if not isinstance(y, torch.Tensor):
        return None, {"type": "NotATensor", "message": f"returned {type(y).__name__}, not a tensor"}
    return y, None


def close(a, b, tol=1e-4):
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and \
        bool(torch.isfinite(a).all()) and torch.allclose(a, b, rtol=tol, atol=tol)


def live(y, y2):
    """A real function of its input: finite, not one constant, another input another output."""
    return isinstance(y, torch.Tensor) and y.numel() > 1 and bool(torch.isfinite(y).all()) and \
        float(y.max() - y.min()) > 1e-6 and not (isinstance(y2, torch.Tensor) and y2.shape == y.shape
                                                 and torch.allclose(y, y2, rtol=0, atol=1e-6))


def quiet(compute):
    """What compute() gives, or None where it raises (a reference made of a wrong module's layers)."""
    try:
        with torch.no_grad():
            return compute()
    except Exception:
        return None


# ---- what the exercise's steps should compute, made of the student's own layers ---------------------------

def double_conv_of(module, x):
    """(3x3 convolution -> BatchNorm2d -> ReLU) twice, with the module's first two convolutions and
    batch norms (paired by order, as the grader loads its values)."""
    convs, norms = of_type(module, nn.Conv2d), of_type(module, nn.BatchNorm2d)
    for conv, norm in zip(convs[:2], norms[:2]):
        x = F.relu(norm(F.conv2d(x, conv.weight, None, padding=1)))
    return x if len(convs) >= 2 and len(norms) >= 2 else None


def pad_to(u, skip, how="centred"):
    dy, dx = skip.size(2) - u.size(2), skip.size(3) - u.size(3)
    if how == "extra on the left and top":
        return F.pad(u, [dx - dx // 2, dx // 2, dy - dy // 2, dy // 2])
    if how == "height and width swapped":
        return F.pad(u, [dy // 2, dy - dy // 2, dx // 2, dx - dx // 2])
    if how == "all on the right and bottom":
        return F.pad(u, [0, dx, 0, dy])
    return F.pad(u, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])


def upsample(module, x):
    up = of_type(module, nn.ConvTranspose2d)[0]
    return F.conv_transpose2d(x, up.weight, up.bias, stride=2)


def up_variant(module, inner, x, skip, variant):
    u = upsample(module, x)
    if variant == "skip second":
        return inner(torch.cat([pad_to(u, skip), skip], dim=1))
    return inner(torch.cat([skip, pad_to(u, skip, variant)], dim=1))


def down_variant(module, inner, x, variant):
    if variant == "pool after the DoubleConv":
        return F.max_pool2d(inner(x), 2)
    return inner(F.avg_pool2d(x, 2))


def double_conv_right(module):
    """The step's own DoubleConv is a right one, so that a common mistake of the step shows."""
    inner = inner_double_conv(module)
    if inner is None:
        return None
    convs = of_type(inner, nn.Conv2d)
    if len(convs) < 2 or double_conv_layers_problem([describe(m) for m in leaves(inner)], convs[0].in_channels,
                                                    convs[0].out_channels, False):
        return None
    x = torch.rand(1, convs[0].in_channels, 6, 7)
    y, _ = run(inner, x)
    return inner if close(y, quiet(lambda: double_conv_of(inner, x)), 1e-5) else None


# ---- DoubleConv, Down and Up ------------------------------------------------------------------------------

def judge_step(kind, cls, args, inputs):
    """One visible case of a step, judged in the order the grader's judge_step judges."""
    label = case_label(kind, args, inputs, None)
    module = build(kind, cls, args, label)
    xs = [torch.rand(*inputs["x"]) for _ in range(2)]
    skips = [torch.rand(*inputs["skip"]) for _ in range(2)] if kind == "up" else [None, None]
    ins = [[x] + ([s] if kind == "up" else []) for x, s in zip(xs, skips)]
    (y, error), (y2, _) = run(module, *ins[0]), run(module, *ins[1])
    inner = inner_double_conv(module)
    # what the step should give: with its own DoubleConv inside, or made of its layers alone
    double_convs = [lambda z: double_conv_of(module, z)] + ([inner] if kind != "double_conv" and inner else [])
    joined = {"double_conv": lambda x, s: x, "down": lambda x, s: F.max_pool2d(x, 2),
              "up": lambda x, s: torch.cat([s, pad_to(upsample(module, x), s)], dim=1)}[kind]
    for double in double_convs:
        right = [quiet(lambda x=x, s=s: double(joined(x, s))) for x, s in zip(xs, skips)]
        if close(y, right[0], 1e-5) and close(y2, right[1], 1e-5) and live(y, y2):
            return
    layers = [describe(m) for m in leaves(module)]
    problem = {"double_conv": lambda: double_conv_layers_problem(layers, args[0], args[1], False),
               "down": lambda: down_layers_problem(layers),
               "up": lambda: up_layers_problem(layers, args[0], False)}[kind]()
    if problem:
        raise Verdict(case_problem(label, problem))
    if error:
        raise Verdict(step_raised(label, describe_error(error), up_error_hint(error) if kind == "up" else ""))
    problem = shape_problem(kind, args, inputs, list(y.shape), label, False)
    if problem:
        raise Verdict(problem)
    if kind != "double_conv" and double_conv_right(module):
        variants = {v: quiet(lambda v=v: up_variant(module, inner, *ins[0], v)) for v in UP_VARIANTS} \
            if kind == "up" else {v: quiet(lambda v=v: down_variant(module, inner, xs[0], v)) for v in DOWN_VARIANTS}
        found = next((v for v, value in variants.items() if close(y, value)), None)
        if found:
            raise Verdict(variant_problem(kind, label, found))
    if not bool(torch.isfinite(y).all()):
        raise Verdict(not_finite(label))
    if not live(y, y2):
        raise Verdict(not_live(label))
    raise Verdict(wrong_values(kind, label))


@quietly
def double_conv_problem(env):
    """The DoubleConv item's visible checks: the grader's message for the first mistake, or None."""
    cls = the_class(env, "DoubleConv")
    for args, x in DOUBLE_CONV_CASES.values():
        judge_step("double_conv", cls, args, {"x": x})


@quietly
def down_up_problem(env):
    """The Down and Up item's visible checks: the grader's message for the first mistake, or None."""
    cls = the_class(env, "Down")
    for args, x in DOWN_CASES.values():
        judge_step("down", cls, args, {"x": x})
    cls = the_class(env, "Up")
    for args, x, skip in UP_CASES.values():
        judge_step("up", cls, args, {"x": x, "skip": skip})


# ---- the UNet ---------------------------------------------------------------------------------------------

PARTS = {"inc": (0, 1), "down1": (1, 2), "down2": (2, 4), "down3": (4, 8), "up1": (8, 4), "up2": (4, 2), "up3": (2, 1)}


def part_args(name, args):
    """What the exercise builds a part with (inc takes the input channels)."""
    c, _, base = args
    a, b = PARTS[name]
    return [c if name == "inc" else a * base, b * base]


def shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def parts_problem(model, args):
    found = dict(model._modules)
    missing = [name for name in UNET_PARTS_RULE if name not in found]
    if missing:
        return unet_missing_parts(missing)
    problem = outc_problem(describe(found["outc"]) if isinstance(found["outc"], nn.Module) else None,
                           args[2], args[1], False)
    if problem:
        return problem
    for name in PARTS:
        try:
            own = shapes(type(found[name])(*part_args(name, args)))
        except Exception:
            continue  # the part's own check says why it cannot be built
        if shapes(found[name]) != own:
            return unet_part_problem(name)
    return None


def composed(model, x):
    """The parts run one after the other as a U-Net runs them; None where a part stops."""
    def run_parts():
        p = model._modules
        x1 = p["inc"](x)
        x2 = p["down1"](x1)
        x3 = p["down2"](x2)
        x4 = p["down3"](x3)
        return p["outc"](p["up3"](p["up2"](p["up1"](x4, x3), x2), x1))
    return quiet(run_parts)


def judge_unet(cls, args, shape):
    label = case_label("unet", args, {"x": shape}, None)
    model = build("unet", cls, args, label)
    xs = [torch.rand(*shape) for _ in range(2)]
    (y, error), (y2, _) = run(model, xs[0]), run(model, xs[1])
    parts = composed(model, xs[0])
    if close(y, parts, 1e-3) and live(y, y2) and not parts_problem(model, args):
        return
    problem = parts_problem(model, args)
    if problem:
        raise Verdict(case_problem(label, problem))
    if error:
        if parts is None:
            return  # its parts stop too, run as a U-Net runs them: the part's mistake, charged in its item
        raise Verdict(unet_raised(label, describe_error(error)))
    if y is None:
        raise Verdict(no_tensor(label))
    problem = shape_problem("unet", args, {"x": shape}, list(y.shape), label, False)
    if problem:
        raise Verdict(problem)
    if not live(y, y2):
        raise Verdict(not_live(label))
    if not close(y, parts, 1e-5):
        raise Verdict(unet_wiring(label))


def logits_check(env):
    logits, images = env.get("logits"), env.get("images")
    if logits is None:
        failed = [key for key, exc in CELL_ERRORS.items() if exc is not None]
        stops = [CELL_ERRORS[k] for k in failed if re.search(r"^\s*logits\s*[,=]", CELL_SOURCES[k], re.MULTILINE)]
        if stops and error_facts(stops[0])["cell"] in STEP_IDS:
            return  # the demo stopped inside DoubleConv, Down or Up, whose checks say why
        raise Verdict(not_defined("logits", earlier_failure("logits")))
    if not isinstance(logits, torch.Tensor):
        raise Verdict(LOGITS_NOT_A_TENSOR)
    problem = logits_shape_problem(list(logits.shape),
                                   list(images.shape) if isinstance(images, torch.Tensor) else None)
    if problem:
        raise Verdict(problem)


@quietly
def unet_problem(env):
    """The UNet item's visible checks: the grader's message for the first mistake, or None."""
    cls = the_class(env, "UNet")
    for args, shape in UNET_CASES.values():
        judge_unet(cls, args, shape)
    logits_check(env)


# ---- the device -------------------------------------------------------------------------------------------

def device_if_cuda_were(available, env, history):
    """The device the notebook's setup chooses when torch.cuda.is_available() answers `available`:
    its statements that assign device, run again in a copy of the notebook's names (None: unknown)."""
    import ast

    for source in history:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = [node for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign, ast.If))
                 and any(isinstance(t, ast.Name) and t.id == "device" for n in ast.walk(node)
                         for t in (getattr(n, "targets", None) or [getattr(n, "target", None)]))]
        if not lines:
            continue
        real = torch.cuda.is_available, torch.cuda.device_count
        torch.cuda.is_available, torch.cuda.device_count = (lambda: available), (lambda: int(available))
        try:
            scratch = dict(env)
            exec(compile(ast.Module(body=lines, type_ignores=[]), "<device choice>", "exec"), scratch)
            return torch.device(scratch["device"]).type
        except Exception:
            return None
        finally:
            torch.cuda.is_available, torch.cuda.device_count = real
    return None


def stopped_by_device():
    return any(exc is not None and DEVICE_WORDS.search(f"{type(exc).__name__}: {exc}") for exc in CELL_ERRORS.values())


@quietly
def device_problem(env, history):
    """The device item's visible checks on this machine, and the device choice with the answer of
    torch.cuda.is_available() flipped: the grader's message, or None."""
    gpu = torch.cuda.is_available()
    where = world_words("real", gpu)
    if env.get("device") is None:
        raise Verdict(device_not_defined(where, earlier_failure("device")))
    got = torch.device(env["device"])
    if got.type != ("cuda" if gpu else "cpu"):
        raise Verdict(device_choice_problem(where, got.type, "cuda" if gpu else "cpu"))
    if got.type == "cuda" and got.index not in (None, 0):
        raise Verdict(device_index_problem(where, got.index))
    other = device_if_cuda_were(not gpu, env, history)
    if other is not None and other != ("cpu" if gpu else "cuda"):
        raise Verdict(device_choice_problem(world_words("counterfactual", not gpu, simulated=not gpu), other,
                                            "cpu" if gpu else "cuda"))
    # what is missing because a cell stopped for another reason is the other checks' business, as in the grader
    other_mistake = any(exc is not None for exc in CELL_ERRORS.values()) and not stopped_by_device()
    model = env.get("model")
    if model is None:
        raise Verdict(missing_on_device("the model", where, earlier_failure("model")))
    places = {"the model": ("model", {t.device.type for t in list(model.parameters()) + list(model.buffers())})}
    for name, what in (("images", "the batch of images"), ("masks", "the batch of masks"), ("logits", "the logits")):
        value = env.get(name)
        if isinstance(value, torch.Tensor):
            places[what] = (name, {value.device.type})
        elif value is None and not (other_mistake and (moves_to_device(name, history) if name != "logits" else
                                                       places["the model"][1] == {got.type})):
            raise Verdict(missing_on_device(what, where, earlier_failure(name)))
    for what, (name, found) in places.items():
        if found != {got.type}:
            raise Verdict(placement_note(placement_problem(where, what, found, got.type, DEVICE_FIXES[what]),
                                         earlier_failure(name)))


def moves_to_device(name, history):
    """A cell makes `name` with ....to(device) or .cuda()."""
    return any(re.search(rf"^\s*{name}\s*=.*\.(to\(.*\bdevice\b.*\)|cuda\(\))\s*$", source, re.MULTILINE)
               for source in history)


watch_cells()
