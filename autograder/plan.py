"""Turning a submitted notebook into the runner's plan (trusted side).

The student's code cells run in their order. The graded items' probes run at the places of
the items' test cells, which come from the *source* notebook, not the submission: a student
who edits, moves or deletes a test cell changes nothing. The test cells' own code never runs
(the graders replace it), so asserts the student blanked out do not matter either.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any, Callable

import nbformat
from IPython.core.inputtransformer2 import TRANSFORM_LOOP_LIMIT, TransformerManager

from autograder import plugins
from autograder.course import COURSE, Course
from autograder.plugins import Plugin
from autograder.inlineselfchecks import inline

DEFAULT_SEED = 20261126

# Planning runs in the trusted process, outside every sandbox limit, so its work is bounded.
# A student's notebook with its outputs is well under 2 MB, has this assignment's 22 cells and
# a few more, and holds a few thousand JSON values; these caps are far from that. Each bounds
# reading (nbformat validates the notebook value by value) or building the plan.
MAX_NOTEBOOK_BYTES = 20_000_000
MAX_CELLS = 2_000
MAX_CELL_SOURCE = 1_000_000  # characters in one code cell
MAX_JSON_VALUES = 1_000_000  # every value in the file, each line of an output's text included
# Of those, each key of a JSON object and each object or array in an array (a cell, an output,
# a metadata entry): nbformat takes some microseconds for each, about 30 times a line of text.
MAX_JSON_ENTRIES = 50_000
# Characters IPython may tokenize and ast may parse (a few microseconds each) while finding the
# names cells bind and read, for one notebook. The course's notebooks use at most 5,000 (only the
# cells from the first demonstration to the last check count); past the budget, the
# demonstrations still undecided run, as if nothing were skipped.
ANALYSIS_BUDGET = 200_000

_CLEAR_OUTPUTS = ("Clear the outputs (in Jupyter: Edit > Clear Outputs of All Cells, or Kernel > Restart "
                  "Kernel and Clear Outputs), save, and submit the .ipynb file again.")


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
    plugin: Plugin | None = None  # the assignment's graders (None: the course's only one)

    @classmethod
    def of(cls, course: Course = COURSE, plugin: Plugin | None = None) -> "SourceOrder":
        plugin = plugin or plugins.only(course)
        nb = nbformat.read(course.source(plugin.id) / plugin.notebook, as_version=4)
        order, tests, pts, demos = [], set(), {}, set()
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if "grade_id" in meta:
                order.append(meta["grade_id"])
                if meta.get("grade") and cell.cell_type == "code":
                    tests.add(meta["grade_id"])
                    pts[meta["grade_id"]] = float(meta.get("points", 0))
            elif cell.cell_type == "code":  # as released (the self-checks' helpers copied in)
                demos.add(inline(cell.source).strip())
        # and as the students received them: the release of an older version of this package
        released = course.release(plugin.id) / plugin.notebook
        if released.is_file():
            demos |= {c.source.strip() for c in nbformat.read(released, as_version=4).cells
                      if c.cell_type == "code" and "grade_id" not in c.metadata.get("nbgrader", {})}
        return cls(tuple(order), frozenset(tests), pts, frozenset(demos), plugin)


def read_notebook(raw: bytes | str | nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The submitted notebook, read; NotebookUnreadable says why not (the student reads it).

    Notebooks beyond the caps above are refused before nbformat validates them."""
    if isinstance(raw, nbformat.NotebookNode):
        _check_cells(raw.get("cells"))
        return raw
    size = len(raw)  # a text's characters, or, when they fit, its bytes in UTF-8
    if isinstance(raw, str) and size <= MAX_NOTEBOOK_BYTES:
        size = len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookUnreadable(f"the notebook file is {size:,} bytes ({size / 1e6:.1f} MB), more than "
                                 f"the {MAX_NOTEBOOK_BYTES:,} bytes a submission can be (a notebook with its "
                                 f"outputs is usually under 2 MB). {_CLEAR_OUTPUTS}")
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
        try:
            data = json.loads(text)
        except Exception:  # nbformat says below what is wrong, in its words
            data = None
        if data is not None:
            _check_json(data)
        nb = nbformat.reads(text, as_version=4)
    except NotebookUnreadable:
        raise
    except Exception as exc:  # JSON, encoding or schema errors all mean the same to a student
        raise NotebookUnreadable(f"the file is not a readable Jupyter notebook ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}). Re-download it from Jupyter with File > Save, and submit "
                                 "the .ipynb file itself.") from None
    if not isinstance(nb.get("cells"), list):
        raise NotebookUnreadable("the notebook has no list of cells.")
    _check_cells(nb.cells)
    return nb


def _json_counts(data: Any, max_values: int, max_entries: int) -> tuple[int, int]:
    """The values below the top of `data` (parsed JSON), and of them the entries (each key of
    an object, each object or array in an array); counting stops past either maximum."""
    values = entries = 0
    stack = [data]
    while stack:
        item = stack.pop()
        values += len(item)
        if values > max_values:
            break
        children = item.values() if isinstance(item, dict) else item
        nested = [child for child in children if isinstance(child, (dict, list))]
        entries += len(item) if isinstance(item, dict) else len(nested)
        if entries > max_entries:
            break
        stack += nested
    return values, entries


def _check_json(data: Any) -> None:
    """The caps, on the file's JSON before nbformat reads it (cells of format 4, or of the
    worksheets of older formats, which nbformat converts)."""
    if not isinstance(data, (dict, list)):
        return
    values, entries = _json_counts(data, MAX_JSON_VALUES, MAX_JSON_ENTRIES)
    if values > MAX_JSON_VALUES or entries > MAX_JSON_ENTRIES:
        what = (f"{MAX_JSON_VALUES:,} JSON values (cells, outputs, lines of output, metadata entries)"
                if values > MAX_JSON_VALUES else
                f"{MAX_JSON_ENTRIES:,} JSON entries (cells, outputs and their fields, metadata entries)")
        raise NotebookUnreadable(f"the notebook holds more than {what}: far more than a notebook of this "
                                 f"assignment, almost always because of a very long output. {_CLEAR_OUTPUTS}")
    if not isinstance(data, dict):
        return
    cells = list(data["cells"]) if isinstance(data.get("cells"), list) else []
    for sheet in data["worksheets"] if isinstance(data.get("worksheets"), list) else []:
        if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list):
            cells += sheet["cells"]
    _check_cells(cells, ("source", "input"))


def _check_cells(cells: Any, keys: tuple[str, ...] = ("source",)) -> None:
    if not isinstance(cells, list):
        return
    if len(cells) > MAX_CELLS:
        raise NotebookUnreadable(f"the notebook has {len(cells):,} cells, more than the {MAX_CELLS:,} a "
                                 "submission can have (this assignment has a few dozen). Delete the cells you do "
                                 "not need, save, and submit the .ipynb file again.")
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        for key in keys:
            src = cell.get(key, "")
            chars = sum(len(s) for s in src if isinstance(s, str)) if isinstance(src, list) else len(str(src))
            if chars > MAX_CELL_SOURCE:
                raise NotebookUnreadable(f"code cell {number} (counting every cell from the top) holds "
                                         f"{chars:,} characters, more than the {MAX_CELL_SOURCE:,} one cell can "
                                         "hold. Shorten it (load large data from a file instead of pasting it "
                                         "into the cell), save, and submit the .ipynb file again.")


def build(nb: nbformat.NotebookNode, seed: int = DEFAULT_SEED, source: SourceOrder | None = None,
          cell_seconds: float = 30.0) -> dict:
    """The plan for one notebook (see runner.py); `cells[i]["nb_index"]` maps back to the notebook."""
    source = source or SourceOrder.of()
    modules = {m.CELL: m for m in (source.plugin or plugins.only()).grader_modules()}
    position = {gid: i for i, gid in enumerate(source.order)}
    pending = [t for t in source.order if t in source.tests]
    cells: list[dict] = []

    def flush(before: int) -> None:
        while pending and position[pending[0]] < before:
            item = pending.pop(0)
            module = modules[item]
            specs = [dict(spec, worlds=spec.get("worlds", list(module.WORLDS))) for spec in module.probes(seed)]
            worlds = [w for w in ("real", "counterfactual")
                      if w in module.WORLDS or any(w in spec["worlds"] for spec in specs)]
            cells.append({"kind": "probe", "item": item, "probes": specs, "worlds": worlds})

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
    return {"cells": cells, "worlds": ["real", "counterfactual"], "cell_seconds": cell_seconds, "seed": seed,
            "assignment": (source.plugin or plugins.only()).id}


class _OverBudget(Exception):
    pass


class _Analysis:
    """Finds the names cells bind and read, each distinct source once, within a budget of
    characters tokenized and parsed (`_OverBudget` when it runs out)."""

    def __init__(self, budget: int) -> None:
        self.left = budget
        self.found: dict[str, tuple[set[str], set[str]]] = {}

    def charge(self, chars: int) -> None:
        self.left -= chars
        if self.left < 0:
            raise _OverBudget

    def names(self, source: str) -> tuple[set[str], set[str]]:
        if source not in self.found:
            self.found[source] = _names(source, self.charge)
        return self.found[source]


class _Transformer(TransformerManager):
    """IPython's, with each round of its token transforms charged: it tokenizes the whole cell
    again for each line of IPython syntax (`!cmd`, `%magic`, `name?`), up to 500 times."""

    def __init__(self, charge: Callable[[int], None]) -> None:
        super().__init__()
        self.charge = charge

    def do_token_transforms(self, lines: list[str]) -> list[str]:  # IPython's loop, charged
        for _ in range(TRANSFORM_LOOP_LIMIT):
            self.charge(sum(map(len, lines)))
            changed, lines = self.do_one_token_transform(lines)
            if not changed:
                return lines
        raise RuntimeError(f"Input transformation still changing after {TRANSFORM_LOOP_LIMIT} iterations.")


def _names(source: str, charge: Callable[[int], None] = lambda chars: None) -> tuple[set[str], set[str]]:
    """Names a cell binds and names it reads (nothing and {"*"}, everything, when it does not
    parse: IPython gives up on it, or ast.parse finds it nested too deep)."""
    try:
        code = _Transformer(charge).transform_cell(source)
        charge(len(code))
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RuntimeError, MemoryError):  # RecursionError is a RuntimeError
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
    autograded notebook says the cell was not run.

    One pass from the last check back to the first demonstration before it: each cell's names
    are found once (a cell that reads "*" decides every demonstration before it), within
    ANALYSIS_BUDGET. Demonstrations still undecided when the budget runs out run."""
    last_probe = max((i for i, c in enumerate(cells) if c["kind"] == "probe"), default=-1)
    demos = [i for i, c in enumerate(cells) if c["kind"] == "code" and c["demo"]]
    for i in demos:
        cells[i]["skip"] = i > last_probe
    before = [i for i in demos if i < last_probe]
    if not before:
        return
    analysis = _Analysis(ANALYSIS_BUDGET)
    later: set[str] = set()  # what the code cells after this one, before the last check, read
    try:
        for i in range(last_probe - 1, before[0] - 1, -1):
            cell = cells[i]
            if cell["kind"] != "code":
                continue
            if cell["demo"]:
                cell["skip"] = not (analysis.names(cell["source"])[0] & later)
            reads = analysis.names(cell["source"])[1]
            if "*" in reads:
                return  # every demonstration before this cell runs (marked so above)
            later |= reads
    except _OverBudget:
        return
