"""`autograder audit`: the graders measured on mutants of the instructor's solution.

Each mutant changes one thing in one answer cell of the solution (an operator, a constant, a
dropped or moved statement, swapped arguments, a call removed, a `.detach()` added, ...). All the
mutants are graded in one class run by the engine, as students' notebooks are. Separately, an
*oracle* runs each mutant in plain PyTorch, outside the sandbox and without any of the grader's
code, next to the solution, and compares what a teacher would compare:

* block: ResidualBlock built for 12 configurations with the solution's weights loaded: outputs in
  train and eval mode, the gradients with respect to the input and to every parameter, the
  BatchNorm statistics; the state's names and shapes;
* demo: the demo's outputs' shapes, that each output is its block applied to its input, the shape
  the exercise asks the cell to print (output_tensor_2's); the scaffold's own inputs and its other
  print are means, not results;
* resnet: the layers (types and settings), the state's names and shapes, the model's output with
  the solution's weights, the batch's and the output's shapes;
* device: `device`, and the device each model (all its parameters) and tensor is sent to, on this
  machine and in a run where torch.cuda.is_available() answers True (where .to() and .cuda() only
  record the device); there, a model called on an input on another device is a mistake too.

A mutant the oracle cannot tell from the solution is *equivalent*: it must keep full marks. Any
other is a *mistake*, which belongs to the items whose observations differ (a difference in the
block belongs to the shortcut item where the mutated line builds or adds the shortcut, else to
the shapes item). A mistake is *killed* when it loses points in an item it belongs to; a
*survivor* keeps full marks in every one of them. The mutants run unsandboxed in the oracle:
they are the instructor's own code with one change made here, never a student's.
"""

from __future__ import annotations

import argparse
import ast
import copy
import io
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager, nullcontext, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

ASSIGNMENT, NOTEBOOK = "notebook10", "notebook10.ipynb"  # the assignment audited: this plug-in's
ANSWER_CELLS = ("setup", "residual_block", "residual_block_demo", "resnet18_adaptation")
ITEMS = ("residual_block_shapes", "shortcut_projection", "resnet18_adaptation", "device_placement")
GROUP_ITEM = {"demo": "residual_block_shapes", "resnet": "resnet18_adaptation", "device": "device_placement"}
# The mutants CI grades (`make test`): one or more of each operator and answer cell, fixed by id.
SUBSET = ("residual_block:drop:1", "residual_block:compare:1", "residual_block:unwrap:4", "residual_block:int:4",
          "residual_block:detach:5", "residual_block:name:3", "residual_block:swap:6", "residual_block_demo:unwrap:0",
          "residual_block_demo:swap:0", "resnet18_adaptation:int:0", "resnet18_adaptation:drop:3",
          "resnet18_adaptation:unwrap:1", "setup:str:1", "resnet18_adaptation:drop:5")


# ---- the mutants ------------------------------------------------------------------------------------

@dataclass
class Mutant:
    id: str  # "<cell>:<operator>:<n>", stable for a given solution
    cell: str
    line: int
    what: str
    source: str  # the mutated cell
    shortcut_site: bool = False  # the mutated line builds or adds the shortcut


NAME_SWAPS = {"in_channels": "out_channels", "out_channels": "in_channels", "x": "out", "out": "x"}
SKIP_KEYWORDS = {"split", "download", "transform"}  # which data the notebook loads is not graded


def _statements(body: list[ast.stmt]):
    """The statements a mutant may change, with the list they sit in (for drops and swaps)."""
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(stmt, ast.If) and "get_ipython" in ast.unparse(stmt.test):
            continue
        if isinstance(stmt, ast.Expr) and "globals()" in ast.unparse(stmt):
            continue
        if isinstance(stmt, ast.ClassDef):
            yield from _statements(stmt.body)
            continue
        if isinstance(stmt, ast.FunctionDef):
            yield stmt, body  # its arguments' defaults
            yield from _statements(stmt.body)
            continue
        yield stmt, body
        if isinstance(stmt, ast.If):
            yield from _statements(stmt.body)


def _shortcut_lines(tree: ast.Module) -> set[int]:
    """Lines that build or add the shortcut: the `self.shortcut = ...` statements, the `if` that
    decides the projection, the addition and what follows it in forward."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "stride" in ast.unparse(node.test):
            lines |= set(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, (ast.Assign, ast.AugAssign)) and "shortcut" in ast.unparse(node):
            lines |= set(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.FunctionDef) and node.name == "forward":
            add = next((s for s in node.body if "shortcut" in ast.unparse(s)), None)
            if add is not None:
                lines |= {ln for s in node.body if s.lineno >= add.lineno for ln in range(s.lineno, s.end_lineno + 1)}
    return lines


def _expression_sites(stmt: ast.stmt, in_forward: bool):
    """(node path, replacement, words) for each one-node change inside a statement."""
    targets = set()
    if isinstance(stmt, ast.Assign):
        targets = {id(t) for t in stmt.targets}
    elif isinstance(stmt, ast.AugAssign):
        targets = {id(stmt.target)}
    skip = {id(k.value) for node in ast.walk(stmt) if isinstance(node, ast.Call)
            for k in node.keywords if k.arg in SKIP_KEYWORDS}
    if isinstance(stmt, ast.FunctionDef):
        nodes = list(stmt.args.defaults)
    elif isinstance(stmt, ast.If):  # its body's statements are sites of their own
        nodes = [n for n in ast.walk(stmt.test) if id(n) not in skip]
    else:
        nodes = [n for n in ast.walk(stmt) if id(n) not in skip and id(n) not in targets]
    for node in nodes:
        if isinstance(node, ast.Constant) and type(node.value) is bool:
            yield "bool", node, ast.Constant(not node.value), f"{node.value} -> {not node.value}"
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            for new in sorted({node.value + 1, max(node.value - 1, 0)} - {node.value}):
                yield "int", node, ast.Constant(new), f"{node.value} -> {new}"
        elif isinstance(node, ast.Constant) and node.value in ("cuda", "cpu"):
            new = "cpu" if node.value == "cuda" else "cuda"
            yield "str", node, ast.Constant(new), f"{node.value!r} -> {new!r}"
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            for op in (ast.Eq, ast.NotEq, ast.Lt, ast.Gt):
                if not isinstance(node.ops[0], op):
                    new = copy.deepcopy(node)
                    new.ops = [op()]
                    yield "compare", node, new, f"{type(node.ops[0]).__name__} -> {op.__name__}"
        elif isinstance(node, ast.BoolOp):
            new = copy.deepcopy(node)
            new.op = ast.And() if isinstance(node.op, ast.Or) else ast.Or()
            yield "boolop", node, new, f"{type(node.op).__name__} -> {type(new.op).__name__}"
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in NAME_SWAPS \
                and (in_forward or node.id in ("in_channels", "out_channels")):
            yield "name", node, ast.Name(NAME_SWAPS[node.id], ast.Load()), f"{node.id} -> {NAME_SWAPS[node.id]}"
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id == "stride":
            yield "name", node, ast.Constant(1), "stride -> 1"
        elif isinstance(node, ast.Call):
            if len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
                new = copy.deepcopy(node)
                new.args[0], new.args[1] = new.args[1], new.args[0]
                yield "swap_args", node, new, "the first two arguments swapped"
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "to" and len(node.args) == 1:
                yield "unwrap", node, func.value, f"`.to({ast.unparse(node.args[0])})` removed"
            elif len(node.args) == 1 and not node.keywords and not isinstance(node.args[0], ast.Starred) \
                    and in_forward:
                yield "unwrap", node, node.args[0], f"`{ast.unparse(func)}(...)` removed, its argument kept"
            if in_forward and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.value.id in ("self", "F"):
                detached = ast.Call(ast.Attribute(copy.deepcopy(node), "detach", ast.Load()), [], [])
                yield "detach", node, detached, f"`.detach()` after `{ast.unparse(func)}(...)`"
        elif isinstance(node, ast.AugAssign):
            new = copy.deepcopy(node)
            new.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            yield "augop", node, new, f"{type(node.op).__name__}= -> {type(new.op).__name__}="
    if isinstance(stmt, ast.AugAssign):
        new = copy.deepcopy(stmt)
        new.op = ast.Sub() if isinstance(stmt.op, ast.Add) else ast.Mult()
        yield "augop", stmt, new, f"{type(stmt.op).__name__}= -> {type(new.op).__name__}="


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST) -> None:
        self.target, self.replacement = target, replacement

    def generic_visit(self, node):
        if node is self.target:
            return self.replacement
        return super().generic_visit(node)


def _unparsed(tree: ast.Module) -> str:
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def mutants(cells: dict[str, str]) -> list[Mutant]:
    """Every mutant of the answer cells (sources by grade id), in a stable order."""
    out: list[Mutant] = []
    seen: set[tuple[str, str]] = set()
    for cell in ANSWER_CELLS:
        tree = ast.parse(cells[cell])
        shortcut = _shortcut_lines(tree)
        forward_lines = {ln for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "forward"
                         for ln in range(node.lineno, node.end_lineno + 1)}
        counters: dict[str, int] = {}

        def add(op: str, new_tree: ast.Module, line: int, what: str) -> None:
            source = _unparsed(new_tree)
            if (cell, source) in seen:
                return
            seen.add((cell, source))
            n = counters.get(op, 0)
            counters[op] = n + 1
            out.append(Mutant(f"{cell}:{op}:{n}", cell, line, what, source, line in shortcut))

        statements = list(_statements(tree.body))
        for index, (stmt, body) in enumerate(statements):
            code = ast.unparse(stmt).split("\n")[0][:70]
            if not isinstance(stmt, (ast.FunctionDef, ast.If, ast.Return)):
                new = copy.deepcopy(tree)
                new_stmt = _find(new, stmt, tree)
                parent = _body_of(new, new_stmt)
                parent[parent.index(new_stmt)] = ast.Pass()
                add("drop", new, stmt.lineno, f"`{code}` dropped")
                at = body.index(stmt)
                if at + 1 < len(body) and not isinstance(body[at + 1], (ast.FunctionDef, ast.If, ast.Return)):
                    new = copy.deepcopy(tree)
                    new_stmt = _find(new, stmt, tree)
                    parent = _body_of(new, new_stmt)
                    i = parent.index(new_stmt)
                    parent[i], parent[i + 1] = parent[i + 1], parent[i]
                    add("swap", new, stmt.lineno, f"`{code}` moved after the next statement")
            for op, node, replacement, words in _expression_sites(stmt, stmt.lineno in forward_lines):
                new = copy.deepcopy(tree)
                target = _find(new, node, tree)
                new = _Replace(target, replacement).visit(new)
                add(op, new, getattr(node, "lineno", stmt.lineno), f"{words} in `{code}`")
    return out


def _find(new_tree: ast.AST, node: ast.AST, old_tree: ast.AST) -> ast.AST:
    """The node of a deep copy that stands where `node` stands in the original."""
    old_nodes, new_nodes = list(ast.walk(old_tree)), list(ast.walk(new_tree))
    return new_nodes[next(i for i, n in enumerate(old_nodes) if n is node)]


def _body_of(tree: ast.AST, stmt: ast.stmt) -> list:
    for node in ast.walk(tree):
        for name in ("body", "orelse"):
            body = getattr(node, name, None)
            if isinstance(body, list) and any(s is stmt for s in body):
                return body
    raise LookupError("statement not found")


def solution_cells() -> dict[str, str]:
    """The answer cells of the solution, as a correct student submits them."""
    import nbformat

    from autograder.blanks import strip_markers
    from autograder.course import COURSE

    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
             for c in nbformat.read(COURSE.source(ASSIGNMENT) / NOTEBOOK, as_version=4).cells}
    return {cell: strip_markers(cells[cell]) for cell in ANSWER_CELLS}


def notebook_with(cells: dict[str, str]) -> bytes:
    """The released notebook with these answer cells: a student's submission."""
    import nbformat

    from autograder.course import COURSE

    nb = nbformat.read(COURSE.release(ASSIGNMENT) / NOTEBOOK, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in cells:
            cell.source = cells[grade_id]
    return (nbformat.writes(nb) + "\n").encode()


# ---- the oracle (plain PyTorch, no grader code) -----------------------------------------------------

BLOCK_CONFIGS = [((64, 64, 1), (2, 64, 8, 8)), ((64, 128, 2), (2, 64, 8, 8)), ((8, 8, 1), (3, 8, 9, 7)),
                 ((8, 16, 1), (3, 8, 9, 7)), ((16, 8, 1), (3, 16, 9, 7)), ((8, 8, 2), (3, 8, 9, 7)),
                 ((8, 8, 3), (3, 8, 11, 7)), ((8, 16, 2), (3, 8, 10, 10)), ((16, 8, 2), (3, 16, 10, 10)),
                 ((3, 8, 1), (2, 3, 6, 6)), ((12, 12), (2, 12, 9, 9)), ((16, 32, 2), (1, 16, 7, 5))]
DEVICE_OBJECTS = ("resnet_model", "images", "block_same_dim", "block_change_dim", "input_tensor_1", "input_tensor_2")


def _device_name(args: tuple, kwargs: dict) -> str | None:
    import torch

    for value in list(args) + [kwargs.get("device")]:
        if isinstance(value, (str, torch.device)):
            try:
                device = torch.device(value)
            except RuntimeError:
                return f"invalid {value!r}"
            return "cuda" if device.type == "cuda" and device.index in (None, 0) else str(device)
    return None


@contextmanager
def _gpu_world(record: dict):
    """torch.cuda.is_available() says True; .to() and .cuda() record the device asked for (for a
    model, for each of its parameters and buffers) and move nothing, so the notebook runs on, on
    the CPU; a model called at top level on an input that is on another device than its parameters
    is recorded as it would raise on a real GPU."""
    import torch
    from torch.nn.modules import module as module_api

    saved = (torch.cuda.is_available, torch.nn.Module.to, torch.nn.Module.cuda, torch.Tensor.to, torch.Tensor.cuda)
    mismatches: list[str] = []
    record["mismatches"] = mismatches
    depth = [0]

    def place(obj, name):
        record[id(obj)] = (name, obj)  # the object is kept: its id is not reused while the run lasts

    def where(obj) -> str:
        return record.get(id(obj), ("cpu",))[0]

    def module_to(self, *args, **kwargs):
        name = _device_name(args, kwargs)
        if name:
            place(self, name)
            for tensor in list(self.parameters()) + list(self.buffers()):
                place(tensor, name)
        return self

    def tensor_to(self, *args, **kwargs):
        name = _device_name(args, kwargs)
        if name:
            place(self, name)
            return self
        return saved[3](self, *args, **kwargs)

    def to_cuda(self, *args, **kwargs):
        name = "cuda" if not args or args[0] in (None, 0) else f"cuda:{args[0]}"
        if isinstance(self, torch.nn.Module):
            return module_to(self, name)
        place(self, name)
        return self

    def before(module, args):
        if depth[0] == 0:
            params = {where(p) for p in module.parameters()}
            inputs = {where(a) for a in args if isinstance(a, torch.Tensor)}
            if params and inputs and len(params | inputs) > 1:
                mismatches.append(f"{type(module).__name__} with parameters on {'/'.join(sorted(params))} called on "
                                  f"an input on {'/'.join(sorted(inputs))}")
        depth[0] += 1

    def after(module, args, output):
        depth[0] -= 1

    torch.cuda.is_available = lambda: True
    torch.nn.Module.to, torch.nn.Module.cuda, torch.Tensor.to, torch.Tensor.cuda = module_to, to_cuda, tensor_to, to_cuda
    handles = [module_api.register_module_forward_pre_hook(before),
               module_api.register_module_forward_hook(after, always_call=True)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.cuda.is_available, torch.nn.Module.to, torch.nn.Module.cuda, torch.Tensor.to, torch.Tensor.cuda = saved


def _placement(record: dict, obj) -> str:
    """Where the run put an object: a model is where its parameters and buffers are."""
    import torch

    if isinstance(obj, torch.nn.Module):
        tensors = list(obj.parameters()) + list(obj.buffers())
        return "/".join(sorted({record.get(id(t), ("cpu",))[0] for t in tensors})) or "cpu"
    return record.get(id(obj), ("cpu",))[0]


def _run_cells(cells: dict[str, str], world: str) -> tuple[dict, dict, dict, dict]:
    """Run the answer cells in a fresh namespace: (namespace, errors, printed text, devices)."""
    ns: dict = {"__name__": "__main__"}
    errors, printed, record = {}, {}, {}
    context = _gpu_world(record) if world == "gpu" else nullcontext()
    with context:
        for cell in ANSWER_CELLS:
            text = io.StringIO()
            try:
                with redirect_stdout(text), redirect_stderr(io.StringIO()):
                    exec(compile(cells[cell], f"<{cell}>", "exec"), ns)
            except BaseException as exc:  # noqa: BLE001  a mutant may raise anything
                errors[cell] = type(exc).__name__
            printed[cell] = text.getvalue()
    return ns, errors, printed, record


def _same(a, b) -> bool:
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.allclose(a.detach().float(), b.detach().float(), rtol=1e-4, atol=1e-5))
    return a == b


def _block_facts(cls, args, shape, solution_state=None) -> dict:
    """What a teacher compares of one block: everything a forward and a backward show."""
    import torch

    facts: dict = {}
    try:
        torch.manual_seed(7)
        block = cls(*args)
        state = block.state_dict()
        facts["state"] = sorted((k, tuple(v.shape)) for k, v in state.items())  # the order layers are made in is free
        if solution_state is not None:
            block.load_state_dict(solution_state)
        generator = torch.Generator().manual_seed(11)
        x = torch.randn(*shape, generator=generator).requires_grad_(True)
        block.train()
        y = block(x)
        facts["train"] = y.detach().clone()
        w = torch.randn(y.shape, generator=generator)
        (y * w).sum().backward()
        facts["grad_x"] = x.grad.clone()
        facts["grads"] = {k: (p.grad.clone() if p.grad is not None else None) for k, p in block.named_parameters()}
        facts["buffers"] = {k: b.clone() for k, b in block.named_buffers()}
        block.eval()
        with torch.no_grad():
            facts["eval"] = block(torch.randn(*shape, generator=generator))
    except BaseException as exc:  # noqa: BLE001
        facts["raised"] = type(exc).__name__
    return facts


def _compare_facts(got: dict, want: dict) -> list[str]:
    out = []
    for key in ("raised", "state", "train", "grad_x", "eval"):
        if (key in got) != (key in want) or (key in got and not _same(got[key], want[key])):
            out.append(key)
    for key in ("grads", "buffers"):
        a, b = got.get(key, {}), want.get(key, {})
        if set(a) != set(b) or any((a[k] is None) != (b[k] is None) or (a[k] is not None and not _same(a[k], b[k]))
                                   for k in a):
            out.append(key)
    return out


def _layer_facts(model) -> dict:
    import torch

    out = {}
    for name, child in model.named_children():
        facts = [type(child).__name__]
        if isinstance(child, torch.nn.Conv2d):
            facts += [child.in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                      child.dilation, child.groups, child.bias is not None, child.padding_mode]
        elif isinstance(child, torch.nn.Linear):
            facts += [child.in_features, child.out_features, child.bias is not None]
        elif isinstance(child, torch.nn.MaxPool2d):
            facts += [child.kernel_size, child.stride, child.padding]
        out[name] = facts
    return out


class Oracle:
    """Observations of the solution, and of any mutant against them."""

    def __init__(self, solution: dict[str, str]) -> None:
        self.solution = solution
        self.base = {world: _run_cells(solution, world) for world in ("cpu", "gpu")}
        ns = self.base["cpu"][0]
        self.block_states = {}
        self.block_facts = {}
        for args, shape in BLOCK_CONFIGS:
            import torch

            torch.manual_seed(7)
            self.block_states[args] = ns["ResidualBlock"](*args).state_dict()
            self.block_facts[args] = _block_facts(ns["ResidualBlock"], args, shape, self.block_states[args])

    def differences(self, cells: dict[str, str]) -> dict[str, list[str]]:
        """For each observation group that differs from the solution, what differs."""
        import torch

        runs = {world: _run_cells(cells, world) for world in ("cpu", "gpu")}
        # A cell that raises only on this GPU-less machine (the device hard-coded to the GPU) is a
        # device mistake: the other parts are compared as they are where a GPU is said to exist.
        here = "gpu" if set(runs["cpu"][1].items()) - set(runs["gpu"][1].items()) else "cpu"
        ns, errors, printed, _ = runs[here]
        base_ns, base_errors, base_printed, _ = self.base[here]
        out: dict[str, list[str]] = {}

        block = []
        cls = ns.get("ResidualBlock")
        for args, shape in BLOCK_CONFIGS:
            if not isinstance(cls, type):
                block.append("no ResidualBlock class")
                break
            got = _block_facts(cls, args, shape, self.block_states[args])
            if "state" in got and got["state"] != self.block_facts[args]["state"]:
                got = {"state": got["state"]}
            diff = _compare_facts(got, self.block_facts[args])
            if diff:
                block.append(f"{args}: {', '.join(diff)}")
        if block:
            out["block"] = block

        demo = []
        for name in ("output_tensor_1", "output_tensor_2"):  # the inputs are the scaffold's means, not results
            a, b = ns.get(name), base_ns.get(name)
            if not (isinstance(a, torch.Tensor) and a.shape == b.shape):
                demo.append(f"{name} shape")
        for k, block_name in ((1, "block_same_dim"), (2, "block_change_dim")):
            inp, outp, blk = ns.get(f"input_tensor_{k}"), ns.get(f"output_tensor_{k}"), ns.get(block_name)
            try:
                with torch.no_grad():
                    again = blk(inp)
                if not _same(again, outp):
                    demo.append(f"output_tensor_{k} is not {block_name}(input_tensor_{k})")
            except BaseException:  # noqa: BLE001
                demo.append(f"output_tensor_{k} cannot be recomputed")
        shown = str(base_ns["output_tensor_2"].shape)  # the exercise: print output_tensor_2's shape
        if (shown in printed.get("residual_block_demo", "")) != (shown in base_printed.get("residual_block_demo", "")):
            demo.append("the printed shape of output_tensor_2")
        if errors.get("residual_block_demo") != base_errors.get("residual_block_demo"):
            demo.append(f"the cell raised {errors.get('residual_block_demo')}")
        if demo:
            out["demo"] = demo

        resnet = []
        model, base_model = ns.get("resnet_model"), base_ns.get("resnet_model")
        if not isinstance(model, torch.nn.Module):
            resnet.append("no resnet_model")
        else:
            if _layer_facts(model) != _layer_facts(base_model):
                resnet.append("layers")
            state = sorted((k, tuple(v.shape)) for k, v in model.state_dict().items())
            base_state = sorted((k, tuple(v.shape)) for k, v in base_model.state_dict().items())
            if state != base_state:
                resnet.append("state")
            else:
                try:
                    model.load_state_dict(base_model.state_dict())
                    model.eval()
                    base_model.eval()
                    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
                    with torch.no_grad():
                        if not _same(model(x), base_model(x)):
                            resnet.append("output with the solution's weights")
                except BaseException as exc:  # noqa: BLE001
                    resnet.append(f"forward raised {type(exc).__name__}")
        for name in ("images", "output"):
            a, b = ns.get(name), base_ns.get(name)
            if not (isinstance(a, torch.Tensor) and a.shape == b.shape):
                resnet.append(f"{name} shape")
        if errors.get("resnet18_adaptation") != base_errors.get("resnet18_adaptation"):
            resnet.append(f"the cell raised {errors.get('resnet18_adaptation')}")
        if resnet:
            out["resnet"] = resnet

        device = []
        for world in ("cpu", "gpu"):
            w_ns, w_errors, _, record = runs[world]
            b_ns, b_errors, _, b_record = self.base[world]
            if str(w_ns.get("device")) != str(b_ns.get("device")):
                device.append(f"{world}: device is {w_ns.get('device')}")
            for name in DEVICE_OBJECTS:
                got = _placement(record, w_ns.get(name)) if name in w_ns else "missing"
                want = _placement(b_record, b_ns.get(name))
                if got != want and got != "missing":
                    device.append(f"{world}: {name} on {got}")
            if record.get("mismatches", []) != b_record.get("mismatches", []):
                device += [f"{world}: {m}" for m in record.get("mismatches", [])[:3]]
            for cell in ANSWER_CELLS:
                if w_errors.get(cell) != b_errors.get(cell) and world == "cpu" and cell == "setup":
                    device.append(f"{world}: the setup cell raised {w_errors.get(cell)}")
            if world == "cpu":
                for cell in ANSWER_CELLS:
                    if w_errors.get(cell) and not runs["gpu"][1].get(cell):
                        device.append(f"cpu: {cell} raised {w_errors[cell]} (only without a GPU)")
        if device:
            out["device"] = sorted(set(device))
        return out


def oracle_worker() -> None:
    """`python -m assignments.notebook10.audit --oracle`: JSON lines in (mutant id and cells), JSON lines out."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(1)
    from autograder.sandboxed import standin

    root = standin.configured_root()  # the data the sandbox is given, found the same way
    if root is not None:
        standin.activate(root)
    oracle = Oracle(solution_cells())
    for line in sys.stdin:
        job = json.loads(line)
        try:
            answer = {"id": job["id"], "differs": oracle.differences(job["cells"])}
        except BaseException as exc:  # noqa: BLE001
            answer = {"id": job["id"], "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def run_oracle(jobs: list[tuple[str, dict[str, str]]], workers: int) -> dict[str, dict]:
    """The oracle's verdicts, `workers` processes at a time."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    procs = []
    shares = [jobs[i::workers] for i in range(workers)]
    for share in shares:
        proc = subprocess.Popen([sys.executable, "-m", "assignments.notebook10.audit", "--oracle"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=env)
        procs.append((proc, share))
    verdicts: dict[str, dict] = {}
    import threading

    def feed(proc, share):
        for key, cells in share:
            proc.stdin.write(json.dumps({"id": key, "cells": cells}) + "\n")
        proc.stdin.close()

    threads = [threading.Thread(target=feed, args=pair, daemon=True) for pair in procs]
    for t in threads:
        t.start()
    for proc, _ in procs:
        for line in proc.stdout:
            answer = json.loads(line)
            verdicts[answer["id"]] = answer
        proc.wait()
    missing = [key for key, _ in jobs if key not in verdicts]
    for key in missing:
        verdicts[key] = {"id": key, "error": "the oracle process ended before this mutant"}
    return verdicts


# ---- the audit --------------------------------------------------------------------------------------

@dataclass
class Verdict:
    mutant: Mutant
    differs: dict[str, list[str]] | None  # None: the oracle failed on it
    scores: dict[str, float]
    own: list[str] = field(default_factory=list)
    kind: str = ""  # equivalent | killed | survivor | charged-elsewhere | penalised-equivalent | oracle-error


def own_items(mutant: Mutant, differs: dict[str, list[str]]) -> list[str]:
    items = []
    if "block" in differs:
        items.append("shortcut_projection" if mutant.shortcut_site else "residual_block_shapes")
    items += [GROUP_ITEM[g] for g in ("demo", "resnet", "device") if g in differs]
    return sorted(set(items), key=ITEMS.index)


def audit(ids: tuple[str, ...] | None = None, workers: int = 2, progress=print) -> dict:
    from autograder import engine

    solution = solution_cells()
    every = mutants(solution)
    chosen = [m for m in every if ids is None or m.id in ids]
    if ids is not None:
        unknown = sorted(set(ids) - {m.id for m in chosen})
        if unknown:
            raise SystemExit(f"autograder audit: no mutant {', '.join(unknown)} (the solution changed?)")
    control = {cell: _unparsed(ast.parse(solution[cell])) for cell in ANSWER_CELLS}
    progress(f"{len(chosen)} of {len(every)} mutants; the oracle runs them in plain PyTorch ...")
    started = time.perf_counter()
    verdicts = run_oracle([("control", control)] + [(m.id, dict(solution, **{m.cell: m.source})) for m in chosen],
                          workers)
    oracle_seconds = time.perf_counter() - started
    progress(f"... {oracle_seconds:.0f} s; the engine grades them as one class ...")
    started = time.perf_counter()
    notebooks = {"control": notebook_with(control)}
    notebooks.update({m.id: notebook_with(dict(solution, **{m.cell: m.source})) for m in chosen})

    results = engine.grade(notebooks, warm=True, workers=workers, assignment=ASSIGNMENT)
    grading_seconds = time.perf_counter() - started

    item_max = {k: full for k, (_, full) in results["control"].item_scores().items()}
    out: list[Verdict] = []
    for m in chosen:
        scores = {k: s for k, (s, _) in results[m.id].item_scores().items()}
        v = verdicts[m.id]
        if "error" in v:
            out.append(Verdict(m, None, scores, kind="oracle-error"))
            continue
        differs = v["differs"]
        own = own_items(m, differs)
        full = all(abs(scores[i] - item_max[i]) < 1e-9 for i in ITEMS)
        if not differs:
            kind = "equivalent" if full else "penalised-equivalent"
        elif any(scores[i] < item_max[i] - 1e-9 for i in own):
            kind = "killed"
        else:
            kind = "survivor" if full else "charged-elsewhere"
        out.append(Verdict(m, differs, scores, own, kind))
    control_scores = {k: s for k, (s, _) in results["control"].item_scores().items()}
    control_ok = not verdicts["control"].get("differs") and "error" not in verdicts["control"] and \
        all(abs(control_scores[i] - item_max[i]) < 1e-9 for i in ITEMS)
    return {"verdicts": out, "control_ok": control_ok, "control": control_scores, "total": len(every),
            "oracle_seconds": oracle_seconds, "grading_seconds": grading_seconds}


def summary(report: dict) -> str:
    verdicts = report["verdicts"]
    count = {k: sum(v.kind == k for v in verdicts) for k in
             ("equivalent", "penalised-equivalent", "killed", "survivor", "charged-elsewhere", "oracle-error")}
    mistakes = count["killed"] + count["survivor"] + count["charged-elsewhere"]
    lines = [f"autograder audit: {len(verdicts)} mutants of the solution's answer cells (of {report['total']}); "
             f"oracle {report['oracle_seconds']:.0f} s, grading {report['grading_seconds']:.0f} s",
             f"  control (the solution as the mutants are written): "
             f"{'10/10 and equal to the solution' if report['control_ok'] else 'WRONG: ' + str(report['control'])}",
             f"  equivalent (the oracle sees no difference): {count['equivalent'] + count['penalised-equivalent']}; "
             f"penalised by the grader: {count['penalised-equivalent']}",
             f"  mistakes: {mistakes}; killed in their own item: {count['killed']}"
             + (f" ({100 * count['killed'] / mistakes:.1f}%)" if mistakes else ""),
             f"  survivors (full marks in the items the mistake belongs to): {count['survivor']}",
             f"  charged only in another item: {count['charged-elsewhere']}"]
    if count["oracle-error"]:
        lines.append(f"  the oracle failed on: {count['oracle-error']}")
    for kind in ("survivor", "charged-elsewhere", "penalised-equivalent", "oracle-error"):
        for v in verdicts:
            if v.kind == kind:
                scores = " / ".join(f"{v.scores[i]:g}" for i in ITEMS)
                seen = "; ".join(g + ": " + ", ".join(d[:3]) for g, d in (v.differs or {}).items()) or "-"
                lines.append(f"  [{kind}] {v.mutant.id} (line {v.mutant.line}): {v.mutant.what}; oracle: {seen}; "
                             f"grader: {scores}")
    return "\n".join(lines)


def to_json(report: dict) -> dict:
    return {"control_ok": report["control_ok"], "total": report["total"],
            "mutants": [{"id": v.mutant.id, "cell": v.mutant.cell, "line": v.mutant.line, "what": v.mutant.what,
                         "kind": v.kind, "own_items": v.own, "differs": v.differs, "scores": v.scores}
                        for v in report["verdicts"]]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subset", action="store_true",
                        help=f"only the {len(SUBSET)} mutants CI grades (about a minute), not all of them")
    parser.add_argument("--workers", type=int, default=2, help="notebooks graded (and oracle processes) at once")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write every verdict here")


def run(args: argparse.Namespace) -> int:
    """Exit status 0 when the control keeps 10/10 and no equivalent mutant loses points;
    1 otherwise. Survivors are listed, not failed on (README, "What the audit finds")."""
    report = audit(SUBSET if args.subset else None, workers=args.workers)
    print(summary(report))
    if args.json:
        args.json.write_text(json.dumps(to_json(report), indent=1) + "\n")
        print(f"wrote {args.json}")
    bad = not report["control_ok"] or any(v.kind in ("penalised-equivalent", "oracle-error") for v in report["verdicts"])
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder audit")
    parser.add_argument("--oracle", action="store_true", help=argparse.SUPPRESS)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.oracle:
        oracle_worker()
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
