"""The visible self-checks' machinery: notebook side, next to the student's code.

`autograder release` copies this module's source, after graders/messages.py's, into the
release's helper cell, inside one function whose locals they become (autograder/inlineselfchecks.py):
the cell defines only ENTRY_POINTS, so a student's own `describe_layer` or `build` cannot change
what the checks do. The source notebook imports this module instead.
Each check returns the grader's message for the mistake it finds, or None. A check never lets the
student's exception escape: where the student's code raises, it says what the grader says for the
same notebook (the layer the grader blames, or the exception with its line of the student's cell).
"""

import sys
import traceback

import torch
import torch.nn as nn

# (the release's helper cell defines these just above; the source notebook imports them)
from assignments.notebook10.graders.messages import (DEMO_OUTPUTS, DEVICE_FIXES, DEVICE_WORDS, RESNET_BATCH, SHORTCUT_IS_X,
                                         block_call, block_case_problem, demo_output_problem,
                                         device_choice_problem, identity_problem, join_problem,
                                         main_path_layers_problem, main_path_problem_text, name_missing,
                                         not_a_tensor, not_defined, placement_problem, projection_case_problem,
                                         projection_problem, raised, resnet_batch_problem, resnet_conv1_problem,
                                         resnet_fc_problem, shape_problem, world_words)

# What the notebook's self-check cells call (the release's helper cell defines only these names).
ENTRY_POINTS = ("shapes_problem", "shortcut_problem", "resnet_problem", "device_problem")


def describe_layer(module):
    """A layer's settings as the grader's probes describe them."""
    if module is None:
        return None
    if not isinstance(module, nn.Module):
        return {"type": "not a module"}
    if isinstance(module, nn.Conv2d):
        padding = module.padding if isinstance(module.padding, str) else list(module.padding)
        return {"type": "Conv2d", "in": module.in_channels, "out": module.out_channels,
                "kernel": list(module.kernel_size), "stride": list(module.stride), "padding": padding,
                "dilation": list(module.dilation), "bias": module.bias is not None}
    if isinstance(module, nn.BatchNorm2d):
        return {"type": "BatchNorm2d", "features": module.num_features, "affine": module.affine,
                "track_running_stats": module.track_running_stats}
    if isinstance(module, nn.Linear):
        return {"type": "Linear", "in": module.in_features, "out": module.out_features,
                "bias": module.bias is not None}
    return {"type": type(module).__name__}


def error_text(exc):
    """The exception as the grader reports it: type, message, and the last line of the student's
    own code it passed through (not this helper's, not PyTorch's)."""
    text = type(exc).__name__ + (f": {str(exc)[:500]}" if str(exc) else "")
    own = describe_layer.__code__.co_filename
    mine, inside = [], False
    for frame in traceback.extract_tb(exc.__traceback__):  # the student's frames below these helpers'
        library = "site-packages" in frame.filename or frame.filename.startswith((sys.prefix, sys.base_prefix))
        inside = inside or frame.filename == own
        if inside and frame.filename != own and not library:
            mine.append(frame)
    if mine and mine[-1].line:
        text += f" (line {mine[-1].lineno} of your cell: `{mine[-1].line.strip()}`)"
    return text


MAIN_PATH_CASES = [(8, 16, 2), (8, 8, 1)]  # the grader's main-path blocks (their words name them)
MAIN_NAMES = ("conv1", "bn1", "conv2", "bn2")


def main_path_hint(cls):
    """The grader's main-path message for a block built wrongly, or None."""
    for args in MAIN_PATH_CASES:
        try:
            block = cls(*args)
        except Exception:
            return None
        main = {name: describe_layer(getattr(block, name, None)) for name in MAIN_NAMES}
        problem = main_path_layers_problem(main, *args)
        if problem:
            return main_path_problem_text(block_call(args), "train", problem)
    return None


def block_shape_problem(cls, args, input_shape):
    """A seed case of the shapes item: the grader's message, or None."""
    try:
        block = cls(*args).eval()
        with torch.no_grad():
            y = block(torch.randn(*input_shape))
    except Exception as exc:
        return main_path_hint(cls) or raised(f"{block_call(args)} on a {tuple(input_shape)} batch", error_text(exc))
    if not isinstance(y, torch.Tensor):
        return not_a_tensor(f"{block_call(args)} on a {tuple(input_shape)} batch", type(y).__name__)
    got = list(y.shape)
    problem = shape_problem(args, list(input_shape), got)
    if problem:
        return main_path_hint(cls) if len(got) == 4 and got[:2] == [input_shape[0], args[1]] \
            and main_path_hint(cls) else block_case_problem(args, input_shape, problem)
    return None


# The cell that makes each name the checks read (as the grader labels cells).
MADE_IN = {"ResidualBlock": "residual_block", "device": "setup", "output_tensor_1": "residual_block_demo", "output_tensor_2": "residual_block_demo",
           "resnet_model": "resnet18_adaptation", "images": "resnet18_adaptation", "output": "resnet18_adaptation"}


# Each cell's last run: None when it ran through, else the exception that stopped it (IPython's
# post_run_cell event; this cell comes first in the notebook, so it sees every cell after it).
CELL_ERRORS = {}
CELL_SOURCES = {}


def note_cell(result):
    key = getattr(result.info, "cell_id", None) or result.info.raw_cell
    exc = result.error_in_exec or getattr(result, "error_before_exec", None)  # (a SyntaxError: before)
    if isinstance(exc, AssertionError) and "assert _problem is None" in result.info.raw_cell:
        exc = None  # a self-check's own verdict
    CELL_ERRORS.pop(key, None)  # the latest run counts, in the order of the latest runs
    CELL_ERRORS[key], CELL_SOURCES[key] = exc, result.info.raw_cell


def watch_cells():
    """Listen to IPython's post_run_cell (once: running this cell again replaces the listener);
    outside IPython nothing is recorded."""
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


def assigns(source, name):
    return any((line.lstrip().startswith(name) and line.lstrip()[len(name):].lstrip()[:1] in ("=", ","))
               or line.lstrip().startswith((f"class {name}(", f"class {name}:")) for line in source.splitlines())


def earlier_failure(name):
    """Why `name` is missing, in the grader's words: the first cell that stopped with an error, the
    first that assigns `name` if one did. None when that was a device mistake: the device
    self-check's business, as it is the device item's."""
    failed = [(key, exc) for key, exc in CELL_ERRORS.items() if exc is not None]
    assigning = [(key, exc) for key, exc in failed if assigns(CELL_SOURCES[key], name)]
    if not failed:
        return "the cell that makes it did not run"
    key, exc = (assigning or failed)[0]
    label = next((MADE_IN[n] for n in (name, *MADE_IN) if assigns(CELL_SOURCES[key], n)), MADE_IN[name])
    if DEVICE_WORDS.search(f"{type(exc).__name__}: {exc}"):
        return None
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "site-packages" not in f.filename and not f.filename.startswith((sys.prefix, sys.base_prefix))]
    line = f" at line {frames[-1].lineno}: `{frames[-1].line.strip()}`" if frames and frames[-1].line else ""
    text = str(exc)
    if isinstance(exc, SyntaxError):  # as the grader reports it: the compiler's line, its message alone
        line = f" at line {exc.lineno}: `{exc.text.strip()}`" if exc.lineno and exc.text else ""
        text = str(exc.msg)
    message = f" ({text[:160]})" if text else ""
    return f"cell `{label}` stopped with {type(exc).__name__}{line}{message}"


def missing(name):
    """The grader's words for a name the checks need that is not there; None when a device mistake
    stopped the cell that makes it (the device self-check says what to fix)."""
    why = earlier_failure(name)
    return not_defined(name, why) if why else None


def block_class(env):
    """The notebook's ResidualBlock, or the grader's words for why there is none."""
    cls = env.get("ResidualBlock")
    if cls is None:
        why = earlier_failure("ResidualBlock")
        return None, name_missing("ResidualBlock is not defined", why or "the cell that makes it did not run")
    return cls, None


def quietly(check):
    """A self-check that cannot tell (these helpers met something they were not written for, such as
    a layer whose parameters do not exist yet) says nothing rather than crash: the grader judges."""
    def checked(*args):
        try:
            return check(*args)
        except Exception:
            return None
    checked.__name__ = check.__name__
    return checked


@quietly
def shapes_problem(env):
    """The shapes item's visible checks: the seed's two cases, then the demo's outputs."""
    cls, problem = block_class(env)
    if problem:
        return problem
    for args in [(64, 64, 1), (64, 128, 2)]:
        problem = block_shape_problem(cls, args, (4, 64, 32, 32))
        if problem:
            return problem
    return demo_problem(env)


def demo_problem(env):
    """The demo's two outputs: the grader's message, or None."""
    for name in DEMO_OUTPUTS:
        value = env.get(name)
        if not isinstance(value, torch.Tensor):
            problem = missing(name)
            if problem:
                return problem
            continue
        problem = demo_output_problem(name, value.shape)
        if problem:
            return problem
    return None


# ---- the shortcut ------------------------------------------------------------------------------

ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Dropout, nn.Dropout2d)


def block_parts(block):
    """The main path's four layers, and the block's other layers (where its shortcut is)."""
    main = [getattr(block, name, None) for name in MAIN_NAMES]
    ids = {id(m) for m in main if isinstance(m, nn.Module)}
    return main, [m for m in block.children() if not isinstance(m, ACTIVATIONS)
                  and not any(id(d) in ids for d in m.modules())]


def leaves(modules):
    found = [m for top in modules for m in top.modules() if not list(m.children())]
    return [m for k, m in enumerate(found) if all(m is not other for other in found[:k])]


def run_block(block, x):
    """Call the block on x: its output (None if it raised), the shortcut's output as forward computed
    it (x itself when no other layer was applied to x; None when a shortcut layer raised), and the
    layers that made it."""
    calls, entered = [], []
    layers = [m for top in block_parts(block)[1] for m in top.modules()]
    def seen(m, i, o):  # a copy: forward may add to the shortcut's output in place
        calls.append((m, i[0] if i else None, o.clone() if isinstance(o, torch.Tensor) else o))

    hooks = [m.register_forward_hook(seen) for m in layers]
    hooks += [m.register_forward_pre_hook(lambda m, i: entered.append(m)) for m in layers]
    try:
        y = block(x)
    except Exception:
        y = None
    finally:
        for hook in hooks:
            hook.remove()
    if any(all(m is not done for done, _, _ in calls) for m in entered):
        return y, None, []
    s, used = x, []
    for module, given, made in calls:  # in the order the layers finished: inner layers first
        if isinstance(given, torch.Tensor) and isinstance(made, torch.Tensor) and given.shape == s.shape \
                and torch.equal(given, s):
            s, used = made, used + [module]
    return y, s, used


def join_form(y, s):
    """"relu" when y = relu(s + c) for one constant c per channel, "sum" when y = s + c, else None."""
    if not isinstance(y, torch.Tensor) or y.shape != s.shape or y.dim() != 4 or not (y.abs() > 1e-6).any():
        return None
    d = (y - s).transpose(0, 1).reshape(s.shape[1], -1)
    live = (y > 1e-4).transpose(0, 1).reshape(s.shape[1], -1)
    c = torch.stack([row[mask].median() if mask.any() else row.median() for row, mask in zip(d, live)]).view(1, -1, 1, 1)
    for form, guess in (("relu", torch.relu(s + c)), ("sum", s + c)):
        if torch.allclose(y, guess, rtol=1e-4, atol=1e-4):
            return form
    return None


def build(cls, args):
    """The block, or the grader's words for why it cannot be built."""
    try:
        return cls(*args), None
    except Exception as exc:
        return None, raised(f"Building {block_call(args)}", error_text(exc))


def named_main_path(block):
    """These checks find the main path by its names; the grader finds it by what forward computes."""
    return all(isinstance(m, nn.Module) for m in block_parts(block)[0])


def shortcut_seen(cls, args, shape):
    """(why the block cannot be built, the block, its input, the shortcut as forward computed it,
    the layers that made it)."""
    block, problem = build(cls, args)
    if problem:
        return problem, None, None, None, []
    x = torch.randn(*shape)
    with torch.no_grad():
        _, s, used = run_block(block, x)
    return None, block, x, s, used


def identity_check(cls):
    for args, shape in [((64, 64, 1), (2, 64, 8, 8)), ((8, 8, 1), (4, 8, 9, 9))]:
        problem, _, x, s, used = shortcut_seen(cls, args, shape)
        if problem:
            return problem
        if s is not None and not (s.shape == x.shape and torch.allclose(s, x)):
            return identity_problem(args, [type(m).__name__ for m in leaves(used)])
    return None


PROJECTION_CASES = [("the channels change (stride 1)", (8, 16, 1), (4, 8, 9, 9)),
                    ("the stride changes (same channels)", (8, 8, 2), (4, 8, 11, 7)),
                    ("both the stride and the channels change", (8, 16, 2), (4, 8, 10, 10))]


def projection_check(cls):
    for label, args, shape in PROJECTION_CASES:
        problem, block, x, s, used = shortcut_seen(cls, args, shape)
        if problem:
            return problem
        rest = block_parts(block)[1]
        if s is None:
            continue  # a shortcut layer raised: the shapes item's checks say where
        if s.shape == x.shape and torch.equal(s, x) and (used or not leaves(rest)):
            problem, mode = SHORTCUT_IS_X, "train"
        else:  # the layers forward applied to x; a shortcut never applied is judged on its own layers
            described = [describe_layer(m) for m in leaves(used or rest)]
            problem = projection_problem(described, args[2])
            # in train mode BatchNorm removes a bias: only eval mode shows that one
            mode = "eval" if problem.startswith("the projection convolution must have no bias") else "train"
            if problem.startswith("the shortcut does not compute"):
                problem = None  # the layers look right: the grader compares their numbers
        if problem:
            return projection_case_problem(label, args, problem, mode)
    return None


def join_check(cls):
    """As in the grader, the main path's convolutions are zeroed first: the main path then gives
    one constant per channel, whatever the order of its layers, so only the join is judged."""
    for args, shape in [((8, 8, 1), (4, 8, 9, 9)), ((8, 16, 2), (4, 8, 10, 10))]:
        block, problem = build(cls, args)
        if problem:
            return problem
        (c1, _, c2, _), rest = block_parts(block)
        if not all(isinstance(c, nn.Conv2d) for c in (c1, c2)):
            continue  # no main path to zero: the shapes item's checks say what is wrong
        with torch.no_grad():
            for conv in (c1, c2):
                conv.weight.zero_()
                if conv.bias is not None:
                    conv.bias.zero_()
            y, s, used = run_block(block, torch.randn(*shape))
        if not isinstance(y, torch.Tensor) or s is None or y.dim() != 4:
            continue  # the block raised: the shapes item's checks say why
        form = join_form(y, s)
        constant = float((y.flatten(2).amax(2) - y.flatten(2).amin(2)).max()) < 1e-6
        if not used and any(p.numel() for m in rest for p in m.parameters()):
            # the shortcut's layers are not called as modules: its output cannot be seen
            if constant:
                return join_problem(args, "never added")
            if y.min() < 0 or not (y == 0).any():
                return join_problem(args, "no final relu")
        elif form == "sum":
            return join_problem(args, "no final relu")
        elif form is None:
            if constant:
                return join_problem(args, "never added")
            if y.shape == s.shape and join_form(y - s, torch.zeros_like(s)) is not None and (y - s).min() > -1e-6:
                return join_problem(args, "relu before add")
            return join_problem(args, "other")
    return None


@quietly
def shortcut_problem(env):
    """The shortcut item's visible checks: the grader's message for the first mistake, or None."""
    cls, problem = block_class(env)
    if problem:
        return problem
    block, problem = build(cls, (8, 16, 2))
    if problem:
        return problem
    if not named_main_path(block):
        print(f"{type(block).__name__} has no conv1, bn1, conv2 and bn2: the visible shortcut checks are skipped "
              "(the grader finds the main path by what forward computes).")
        return None
    return identity_check(cls) or projection_check(cls) or join_check(cls)


# ---- the ResNet ----------------------------------------------------------------------------------

@quietly
def resnet_problem(env):
    """The ResNet item's visible checks: the grader's message, or None."""
    model = env.get("resnet_model")
    if model is not None and not isinstance(model, nn.Module):
        return raised("Inspecting resnet_model", "TypeError: resnet_model is not an nn.Module")
    if model is None:
        why = earlier_failure("resnet_model")
        return name_missing("resnet_model is not defined", why) if why else None
    conv1, fc = getattr(model, "conv1", None), getattr(model, "fc", None)
    if isinstance(fc, nn.Sequential):  # nn.Sequential(nn.Linear(512, 2)), maybe with a Dropout, is a Linear too
        weighted = [m for m in fc if any(True for _ in m.parameters())]
        if len(weighted) == 1 and isinstance(weighted[0], nn.Linear):
            fc = weighted[0]
    problem = resnet_conv1_problem(describe_layer(conv1) or {}) or resnet_fc_problem(describe_layer(fc) or {})
    if problem:
        return problem + "."
    for name in RESNET_BATCH:
        value = env.get(name)
        if not isinstance(value, torch.Tensor):
            return missing(name)
        problem = resnet_batch_problem(name, value.shape)
        if problem:
            return problem
    return None


# ---- the device ----------------------------------------------------------------------------------

def device_if_cuda_were(available, env, history):
    """The device the notebook's own code chooses when torch.cuda.is_available() answers
    `available`: the statements that assign device, run again in a copy of the notebook's names.
    None when that cannot be told (no such statement, or it raised)."""
    import ast

    for source in history:  # the first cell that sets device: the setup (a later line may copy the model's)
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
        scratch = dict(env)
        try:
            exec(compile(ast.Module(body=lines, type_ignores=[]), "<device choice>", "exec"), scratch)
            return torch.device(scratch["device"]).type
        except Exception:
            return None
        finally:
            torch.cuda.is_available, torch.cuda.device_count = real
    return None


@quietly
def device_problem(env, history):
    """The device item's visible checks: the grader's message, or None."""
    gpu = torch.cuda.is_available()
    if "device" not in env:
        why = earlier_failure("device")
        return f"device is not defined {world_words('real', gpu)}: {why or 'the setup cell did not define it'}."
    try:
        got = torch.device(env["device"]).type
    except Exception as exc:
        return raised("torch.device(device)", error_text(exc))
    want = "cuda" if gpu else "cpu"
    if got != want:
        return device_choice_problem(world_words("real", gpu), got, want)
    other = device_if_cuda_were(not gpu, env, history)
    if other is not None and other != ("cpu" if gpu else "cuda"):
        return device_choice_problem(world_words("counterfactual", not gpu, simulated=not gpu), other,
                                     "cpu" if gpu else "cuda")
    # what the ResNet cell did not make is not judged here: the ResNet self-check says why it is missing
    places = {"the model": "resnet_model", "the batch of images": "images", "the output": "output"}
    for what, name in places.items():
        value = env.get(name)
        if isinstance(value, nn.Module):
            found = {t.device.type for t in list(value.parameters()) + list(value.buffers())}
        elif isinstance(value, torch.Tensor):
            found = {value.device.type}
        else:
            continue
        if found != {got}:
            return placement_problem(world_words("real", gpu), what, found, got, DEVICE_FIXES[what])
    return None


watch_cells()
