"""Turning a submitted notebook into the runner's plan (trusted side).

The student's code cells run in their order. The graded items' probes run at the places of
the items' test cells, which come from the *source* notebook, not the submission: a student
who edits, moves or deletes a test cell changes nothing. The test cells' own code never runs
(the graders replace it), so asserts the student blanked out do not matter either.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from autograder.course import COURSE, NOTEBOOK, Course
from autograder.graders import grader_modules

DEFAULT_SEED = 20261126


class NotebookUnreadable(ValueError):
    pass


@dataclass(frozen=True)
class SourceOrder:
    """The graded cells of the source notebook, in order, which of them are tests, and the
    sources of its plain (not graded) code cells, the instructor's demonstrations."""

    order: tuple[str, ...]
    tests: frozenset[str]
    points: dict[str, float]
    demos: frozenset[str] = frozenset()

    @classmethod
    def of(cls, course: Course = COURSE) -> "SourceOrder":
        nb = nbformat.read(course.source() / NOTEBOOK, as_version=4)
        order, tests, pts, demos = [], set(), {}, set()
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if "grade_id" in meta:
                order.append(meta["grade_id"])
                if meta.get("grade") and cell.cell_type == "code":
                    tests.add(meta["grade_id"])
                    pts[meta["grade_id"]] = float(meta.get("points", 0))
            elif cell.cell_type == "code":
                demos.add(cell.source.strip())
        return cls(tuple(order), frozenset(tests), pts, frozenset(demos))


def read_notebook(raw: bytes | str | nbformat.NotebookNode) -> nbformat.NotebookNode:
    if isinstance(raw, nbformat.NotebookNode):
        return raw
    try:
        nb = nbformat.reads(raw if isinstance(raw, str) else raw.decode("utf-8"), as_version=4)
    except Exception as exc:  # JSON, encoding or schema errors all mean the same to a student
        raise NotebookUnreadable(f"the file is not a readable Jupyter notebook ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}). Re-download it from Jupyter with File > Save, and submit "
                                 "the .ipynb file itself.") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookUnreadable("the notebook has no list of cells.")
    return nb


def build(nb: nbformat.NotebookNode, seed: int = DEFAULT_SEED, source: SourceOrder | None = None,
          cell_seconds: float = 30.0) -> dict:
    """The plan for one notebook (see runner.py); `cells[i]["nb_index"]` maps back to the notebook."""
    source = source or SourceOrder.of()
    modules = {m.CELL: m for m in grader_modules()}
    position = {gid: i for i, gid in enumerate(source.order)}
    pending = [t for t in source.order if t in source.tests]
    cells: list[dict] = []

    def flush(before: int) -> None:
        while pending and position[pending[0]] < before:
            item = pending.pop(0)
            module = modules[item]
            cells.append({"kind": "probe", "item": item, "probes": module.probes(seed), "worlds": module.WORLDS})

    for nb_index, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        metadata = cell.get("metadata")
        meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
        meta = meta if isinstance(meta, dict) else {}  # a submission can hold anything here
        gid = meta.get("grade_id") if isinstance(meta.get("grade_id"), str) else None
        if gid in position:
            flush(position[gid] + (1 if gid in source.tests else 0))
        if gid in source.tests or meta.get("grade"):
            continue  # test cells are the graders' business, whatever the submission put in them
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else str(src)
        cells.append({"kind": "code", "source": text, "grade_id": gid, "nb_index": nb_index,
                      "demo": gid is None and text.strip() in source.demos})
    flush(len(source.order) + 1)
    _mark_skippable(cells)
    return {"cells": cells, "worlds": ["real", "counterfactual"], "cell_seconds": cell_seconds, "seed": seed}


def _names(source: str) -> tuple[set[str], set[str]]:
    """Names a cell binds and names it reads (None, None when it does not parse)."""
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return set(), {"*"}
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, (ast.Store, ast.Del)) else read).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            read.add("*")
    return bound, read


def _mark_skippable(cells: list[dict]) -> None:
    """An instructor's demonstration cell, unchanged by the student, that no graded part can
    depend on is not run while grading (`skip`): after the last check, or when no later cell
    before the last check reads a name it binds. It saves seconds per submission; the
    autograded notebook says the cell was not run."""
    last_probe = max((i for i, c in enumerate(cells) if c["kind"] == "probe"), default=-1)
    for i, cell in enumerate(cells):
        if cell["kind"] != "code" or not cell["demo"]:
            continue
        if i > last_probe:
            cell["skip"] = True
            continue
        bound, _ = _names(cell["source"])
        later = set().union(*(_names(c["source"])[1] for c in cells[i + 1:last_probe] if c["kind"] == "code"))
        cell["skip"] = not (bound & later) and "*" not in later
