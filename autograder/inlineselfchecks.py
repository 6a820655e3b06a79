"""InlineSelfChecks: the self-checks' helpers, copied into the student's notebook at release.

The source notebook's helper cell imports them:

    from autograder.graders.messages import *
    from autograder.selfcheck import *

Registered in ``nbgrader_config.py`` first in ``GenerateAssignment.preprocessors`` and
``GenerateSolution.preprocessors``, this replaces each such line with the module's own source
(its docstring and its imports of this package left out), so that the release runs anywhere (Colab
included) without this package, and a self-check words each mistake with the graders' own code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

PACKAGE = Path(__file__).parent
MODULES = {"autograder.graders.messages": PACKAGE / "graders" / "messages.py",
           "autograder.selfcheck": PACKAGE / "selfcheck.py"}
IMPORT_LINE = re.compile(r"^from (autograder(?:\.graders)?\.\w+) import \*.*$", re.MULTILINE)


def module_body(path: Path) -> str:
    """The module's source without its docstring and without its imports from this package."""
    source = path.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    drop: set[int] = set()
    for node in tree.body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and \
            isinstance(node.value.value, str) and node is tree.body[0]
        ours = isinstance(node, ast.ImportFrom) and (node.module or "").startswith("autograder")
        if docstring or ours:
            drop.update(range(node.lineno - 1, node.end_lineno))
            if ours and node.lineno >= 2 and lines[node.lineno - 2].lstrip().startswith("#"):
                drop.add(node.lineno - 2)  # the comment that explains the import
    kept = [line for i, line in enumerate(lines) if i not in drop]
    return re.sub(r"\n{3,}", "\n\n\n", "\n".join(kept)).strip("\n")


def inline(source: str) -> str:
    """A cell's source with each `from <helper module> import *` replaced by that module's code."""
    def replace(match: re.Match) -> str:
        path = MODULES.get(match.group(1))
        if path is None:
            return match.group(0)
        return f"# ---- {match.group(1)} (the grader's own code) ----\n{module_body(path)}\n"
    return IMPORT_LINE.sub(replace, source)


class InlineSelfChecks(Preprocessor):
    enabled = Bool(True).tag(config=True)  # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> tuple[Any, Any]:
        if cell.cell_type == "code":
            cell.source = inline(cell.source)
        return cell, resources
