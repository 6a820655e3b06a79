"""Notebook 10's jobs: what its probes have the notebook's own thread run (see probes.py).

Sandbox side, imported as nb10_sandbox.plugins.notebook10.jobs. Like the generic jobs
(autograder/sandboxed/student_side.py), these run the notebook's objects with ordinary Python,
on the notebook's thread; the probes read only the plain results.
"""

from ...student_side import _attempt, _register_forward_hook, error_facts, quietly


def _main_path(parts, x):
    conv1, bn1, conv2, bn2 = parts
    import torch

    return bn2(conv2(torch.nn.functional.relu(bn1(conv1(x)))))



def _shortcut(rest, x):
    for module in rest:
        x = module(x)
    return x



def compose(parts: tuple, rest: tuple, block, x) -> tuple:
    """The main path conv1 -> bn1 -> ReLU -> conv2 -> bn2 built from the block's own layers, the
    shortcut (its other layers, in order), and the block itself, each on x, without gradients;
    an exception is reported per part, not raised."""
    import torch

    with torch.no_grad():
        return _attempt(_main_path, parts, x), _attempt(_shortcut, rest, x), _attempt(block, x)



def observe(block, x, w, main: tuple, grads: bool) -> dict:
    """block(x) as a check runs it, with what its forward did on the way:

    * "Y": the output (or the exception);
    * "S": the block's shortcut output as forward computed it: the output of the outermost module
      called on x itself that is not a main-path layer and does not hold one; ("identity", None)
      when forward called no such module (x itself is the shortcut); ("unknown", None) when forward
      raised before calling one;
    * with `grads`, the gradient of sum(Y * w) with respect to x ("grad_x") and to the main-path
      layers' parameters ("grads", by layer and parameter name).

    Runs the notebook's own forward: hooks on its modules see the calls."""
    import torch

    main_ids = {id(m) for m in main if m is not None}
    calls: list = []
    hooks: list = []
    x_in = x.detach().clone().requires_grad_(grads)

    def same(a, b):  # b itself, b.detach(), or a copy of b (x.clone(), x.contiguous(channels_last), ...)
        if a is b:
            return True
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape):
            return False
        if a.data_ptr() == b.data_ptr():
            return True
        with torch.no_grad():
            return a.dtype == b.dtype and bool(torch.equal(a, b))  # the check's inputs are random: no accident

    def hook(module, inputs, output):  # the output as it was then (forward may change it in place later)
        kept = output.detach().clone() if isinstance(output, torch.Tensor) else output
        calls.append((module, inputs[0] if inputs else None, output, kept))

    out: dict = {"S": ("unknown", None)}
    try:
        for module in block.modules():
            if module is not block:
                hooks.append(_register_forward_hook(module, hook))
        with torch.set_grad_enabled(grads):
            y = quietly(block, x_in)
        out["Y"] = ("ok", y)
    except BaseException as exc:
        out["Y"] = ("raised", error_facts(exc))
        y = None
    finally:
        for handle in hooks:
            handle.remove()
    # the shortcut: the chain of outermost modules (not main-path layers, not holding one) that starts
    # on x, each called on the previous one's output (a projection kept as two attributes is two links)
    holders = [m for m, _, _, _ in calls if id(m) not in main_ids and not any(id(c) in main_ids for c in m.modules())]
    outer = [(m, i, o, k) for m, i, o, k in calls if any(m is h for h in holders)
             and not any(m is not h and any(m is c for c in h.modules()) for h in holders)]
    current, link = x_in, None
    for module, first, output, kept in outer:
        if same(first, current):
            current, link = output, kept
    if link is not None:
        out["S"] = ("ok", link)
    elif y is not None:
        out["S"] = ("identity", None)
    # the main path as forward computed it: the output of the last main-path layer forward called
    main_calls = [k for m, _, _, k in calls if id(m) in main_ids]
    if main_calls and isinstance(main_calls[-1], torch.Tensor):
        out["M_seen"] = ("ok", main_calls[-1])
    if grads and isinstance(y, torch.Tensor) and y.requires_grad and y.shape == w.shape:
        try:
            params = {f"{i}.{name}": p for i, m in enumerate(main) if m is not None
                      for name, p in m.named_parameters(recurse=False)}
            for p in params.values():
                p.grad = None
            (y * w).sum().backward()
            out["grad_x"] = x_in.grad
            out["grads"] = {name: p.grad for name, p in params.items() if p.grad is not None}
        except BaseException as exc:
            out["grad_error"] = error_facts(exc)
    if isinstance(y, torch.Tensor):
        out["Y"] = ("ok", y.detach())
    return out



def _reference_copy(model, params: dict):
    """A copy of the model in which each parameter and buffer with a reference value of its shape
    *is* that value (ResNet18 holds 45 MB: copying the student's tensors first would double it)."""
    import copy

    import torch

    memo: dict = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        value = params.get(name)
        if isinstance(tensor, torch.Tensor) and value is not None and tensor.shape == value.shape:
            memo[id(tensor)] = torch.nn.Parameter(value, requires_grad=tensor.requires_grad) \
                if isinstance(tensor, torch.nn.Parameter) else value
    return copy.deepcopy(model, memo)



def _copy_into(target, value, name: str, report: list) -> None:
    import torch

    found = list(target.shape) if isinstance(target, torch.Tensor) else None
    if found != list(value.shape):
        report.append({"param": name, "expected": list(value.shape), "found": found})
        return
    target.data.copy_(value)



def the_layer(module, cls):
    """The module itself if it is a `cls`, or the one `cls` inside a Sequential that holds nothing
    else but layers without parameters (nn.Sequential(nn.Linear(512, 2)), with a Dropout, ...)."""
    from torch import nn

    if isinstance(module, cls) or not isinstance(module, nn.Sequential):
        return module
    found = [m for m in module if isinstance(m, cls)]
    others = [m for m in module if not isinstance(m, cls) and any(True for _ in m.parameters())]
    return found[0] if len(found) == 1 and not others else module



def resnet_outputs(model, params: dict, x, features) -> dict:
    """conv1 on x and fc on features with seeded weights, and the whole model on x with reference
    conv1 and fc put in, run on a copy of the model (the notebook's own is left as it is)."""
    import torch
    from torch import nn

    report: list = []
    out: dict = {"load": report}
    try:
        work = quietly(_reference_copy, model, params).to("cpu").eval()
    except BaseException as exc:
        facts = ("raised", error_facts(exc))
        return {"load": report, "conv1_out": facts, "fc_out": facts, "rest_out": facts}
    with torch.no_grad():
        def conv1():
            layer = the_layer(work.conv1, nn.Conv2d)
            _copy_into(getattr(layer, "weight", None), params["conv1.weight"], "conv1.weight", report)
            return work.conv1(x)

        def fc():
            layer = the_layer(work.fc, nn.Linear)
            _copy_into(getattr(layer, "weight", None), params["fc.weight"], "fc.weight", report)
            _copy_into(getattr(layer, "bias", None), params["fc.bias"], "fc.bias", report)
            return work.fc(features)

        def rest():
            work.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
            work.fc = nn.Linear(512, 2)
            state = work.state_dict()
            for key, value in params.items():
                target = state.get(key)
                if not (isinstance(target, torch.Tensor) and target.device.type == "cpu"
                        and target.data_ptr() == value.data_ptr() and target.shape == value.shape):
                    _copy_into(target, value, key, report)
            return work(x)

        out["conv1_out"], out["fc_out"], out["rest_out"] = _attempt(conv1), _attempt(fc), _attempt(rest)
    return out
