"""InlineSelfChecks: the self-checks' helpers, copied into the student's notebook at release.

The source notebook's helper cell imports them from its assignment's plug-in:

    from assignments.notebook10.selfcheck import *

Registered in ``nbgrader_config.py`` first in ``GenerateAssignment.preprocessors`` and
``GenerateSolution.preprocessors``, this replaces that line with the source of the modules the
plug-in lists in ``SELF_CHECKS`` (its graders' messages, then the self-check module; docstrings
and imports of the plug-ins and of this package left out), inside one function whose locals they
become; the cell then binds only the self-check module's ``ENTRY_POINTS``. So the release runs
anywhere (Colab included) without this package, a self-check words each mistake with the graders'
own code, and a student's own names cannot change it.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

IMPORT_LINE = re.compile(r"^from assignments\.(\w+)\.selfcheck import \*.*$", re.MULTILINE)
WRAPPER = "_self_check_helpers"


def module_body(path: Path) -> str:
    """The module's source without its docstring and without its imports of the plug-ins or this package."""
    source = path.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    drop: set[int] = set()
    for node in tree.body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and \
            isinstance(node.value.value, str) and node is tree.body[0]
        ours = isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("autograder", "assignments")
        if docstring or ours:
            drop.update(range(node.lineno - 1, node.end_lineno))
            if ours and node.lineno >= 2 and lines[node.lineno - 2].lstrip().startswith("#"):
                drop.add(node.lineno - 2)  # the comment that explains the import
    kept = [line for i, line in enumerate(lines) if i not in drop]
    return re.sub(r"\n{3,}", "\n\n\n", "\n".join(kept)).strip("\n")


def helpers_source(assignment: str) -> str:
    """The plug-in's self-check modules as one function's body, and the line that binds its entry points."""
    from autograder import plugins

    plugin = plugins.get(assignment)
    files = [Path(name) for name in plugin.self_checks]
    entry_points = importlib.import_module(f"{plugin.module}.selfcheck").ENTRY_POINTS
    body = "\n\n".join(module_body(plugin.folder / name) for name in files)
    indented = "\n".join(("    " + line) if line.strip() else "" for line in body.splitlines())
    names = ", ".join(entry_points)
    shown = " and ".join(f"assignments/{assignment}/{name.as_posix()}" for name in files)
    return (f"# ---- the grader's own code: {shown} ----\n"
            f"def {WRAPPER}():\n{indented}\n    return {names}\n\n\n{names} = {WRAPPER}()\n")


def inline(source: str) -> str:
    """A cell's source with `from assignments.ID.selfcheck import *` replaced by the helpers' code."""
    return IMPORT_LINE.sub(lambda match: helpers_source(match.group(1)), source)


class InlineSelfChecks(Preprocessor):
    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> tuple[Any, Any]:
        if cell.cell_type == "code":
            cell.source = inline(cell.source)
        return cell, resources
