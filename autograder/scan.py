"""A look at the submission's source for the tools of an attack on the grader (trusted side).

The sandbox stops what it can and the grader recomputes every number it can; what remains
possible in principle needs the notebook's own process memory or the interpreter's internals
(see README, "What a hostile submission could still do"). The code for that is unlike anything an
exercise on residual blocks needs: frames, function globals and closures, raw memory addresses,
ctypes, torch's dispatch and function modes, code built at run time. Any use of these marks
the submission for a person to read; it never changes a score.
"""

from __future__ import annotations

import ast

from IPython.core.inputtransformer2 import TransformerManager

ATTRIBUTES = frozenset((
    "f_back", "f_globals", "f_locals", "f_code", "f_builtins", "tb_frame", "tb_next", "gi_frame", "cr_frame",
    "ag_frame", "gi_code", "__globals__", "__closure__", "cell_contents", "__code__", "__subclasses__",
    "__array_interface__", "__array_struct__", "_getframe", "_current_frames", "currentframe", "settrace",
    "setprofile", "addaudithook", "_exit", "dup2", "from_address", "pythonapi", "__torch_function__",
    "__torch_dispatch__", "_make_wrapper_subclass", "_make_subclass", "PyThreadState_SetAsyncExc",
    "_construct_storage_from_data_pointer", "__builtins__", "register_at_fork", "set_asyncgen_hooks", "ctypes",
    "as_strided", "stride_tricks", "ctypeslib", "callbacks", "_current_frames", "get_referrers", "get_referents",
    "get_objects", "set_threshold",
))
NAMES = frozenset(("exec", "eval", "compile", "__import__", "TorchFunctionMode", "TorchDispatchMode",
                   "BaseTorchFunctionMode", "__builtins__"))
MODULES = frozenset(("ctypes", "_ctypes", "inspect", "importlib", "marshal", "mmap", "_thread", "faulthandler",
                     "_signal", "cffi", "dis", "codeop", "_posixsubprocess", "nb10_sandbox", "autograder"))
TEXT = ("/proc/self", "/proc/thread-self", "/dev/fd", "__array_interface__", "nb10_sandbox", "_getframe", "f_back",
        "__globals__", "/grader", "as_strided", "/maps", "/mem")


LIBRARY_ROOTS = ("torch", "nn", "F", "torchvision")
LIBRARY_SETTINGS = ("torch.backends.",)  # switches a notebook may honestly set (cudnn.benchmark, ...)


def _library_attribute(node: ast.AST, attribute: bool = True) -> bool:
    """An attribute of torch itself (torch.nn.Module.__call__, F.relu, nn.Module, ...): what an
    honest notebook reads but never replaces."""
    if attribute and not isinstance(node, ast.Attribute):
        return False
    base = node
    while isinstance(base, ast.Attribute):
        base = base.value
    if not (isinstance(base, ast.Name) and base.id in LIBRARY_ROOTS):
        return False
    return not ast.unparse(node).startswith(LIBRARY_SETTINGS)


def _source(cell_source: str) -> str:
    try:
        return TransformerManager().transform_cell(cell_source)
    except Exception:
        return cell_source


def scan_cell(cell_source: str) -> list[tuple[str, int]]:
    """(what, line) for each use of an attack's tools in one cell."""
    try:
        tree = ast.parse(_source(cell_source))
    except (SyntaxError, ValueError):
        return []
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES:
            found.append((f".{node.attr}", line))
        elif isinstance(node, ast.Name) and node.id in NAMES:
            found.append((node.id, line))
        elif isinstance(node, ast.Import):
            found += [(f"import {a.name}", line) for a in node.names if a.name.split(".")[0] in MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in MODULES:
            found.append((f"from {node.module} import", line))
        elif isinstance(node, ast.ImportFrom) and node.module and \
                any(a.name in NAMES or a.name in ATTRIBUTES for a in node.names):
            found.append((f"from {node.module} import {', '.join(a.name for a in node.names)}", line))
        elif isinstance(node, ast.keyword) and node.arg == "dir_fd":
            found.append(("dir_fd=", line))
        elif isinstance(node, (ast.Assign, ast.AugAssign)) and any(
                isinstance(t, ast.Attribute) and t.attr == "__class__"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
            found.append(("an object's __class__ replaced", line))
        elif isinstance(node, (ast.Assign, ast.AugAssign)) and any(
                _library_attribute(t) for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
            target = next(t for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                          if _library_attribute(t))
            found.append((f"torch's own {ast.unparse(target)} replaced", line))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") \
                and node.args and _library_attribute(node.args[0], attribute=False):
            found.append((f"{node.func.id}() on torch's own {ast.unparse(node.args[0])}", line))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "type" \
                and len(node.args) == 3:
            found.append(("type(name, bases, namespace): a class made at run time", line))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
            found += [(f"the text {needle!r}", line) for needle in TEXT if needle in text.replace("/meminfo", "")]
    return found


def scan(plan: dict) -> list[str]:
    """Review reasons for the submission's code cells (the instructor's unchanged cells are not read)."""
    reasons: list[str] = []
    for cell in plan["cells"]:
        if cell["kind"] != "code" or cell.get("demo"):
            continue
        where = f"cell `{cell['grade_id']}`" if cell.get("grade_id") else f"code cell {cell['nb_index'] + 1}"
        uses = sorted({what for what, _ in scan_cell(cell["source"])})
        if uses:
            reasons.append(f"{where} uses what an attack on the grader needs, not this exercise: {', '.join(uses[:8])}"
                           + (f" and {len(uses) - 8} more" if len(uses) > 8 else ""))
    return reasons[:20]
