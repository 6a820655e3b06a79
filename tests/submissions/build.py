"""Writes the case notebooks of tests/submissions/ and expected.json from the CASES lists.

    .venv/bin/python -m tests.submissions.build

tests/test_submissions.py fails when the committed notebooks differ from what this writes.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat

from autograder.blanks import strip_markers
from autograder.course import COURSE
from assignments.notebook10 import NOTEBOOK
from tests.submissions.case import Case, Delete, InsertAfter, RawFile, Replace, Sub
from tests.submissions.cases_accuracy import CASES as ACCURACY
from tests.submissions.cases_bugs import CASES as BUGS
from tests.submissions.cases_correct import CASES as CORRECT
from tests.submissions.cases_hostile import CASES as HOSTILE
from tests.submissions.cases_integrity import CASES as INTEGRITY
from tests.submissions.cases_integrity2 import CASES as INTEGRITY2
from tests.submissions.cases_integrity3 import CASES as INTEGRITY3

HERE = Path(__file__).parent
CASES: list[Case] = CORRECT + BUGS + HOSTILE + INTEGRITY + ACCURACY + INTEGRITY2 + INTEGRITY3


def base_notebook() -> nbformat.NotebookNode:
    """The release with every exercise cell holding the solution: a correct student's notebook."""
    source = {c.metadata.get("nbgrader", {}).get("grade_id"): c
              for c in nbformat.read(COURSE.source() / NOTEBOOK, as_version=4).cells}
    nb = nbformat.read(COURSE.release() / NOTEBOOK, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = strip_markers(source[meta["grade_id"]].source)
    return nb


def _index(nb: nbformat.NotebookNode, cell_id: str) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == cell_id:
            return i
    raise KeyError(f"no cell {cell_id!r}")


def apply(case: Case) -> str:
    """The case's file content."""
    nb = copy.deepcopy(base_notebook())
    for edit in case.edits:
        if isinstance(edit, RawFile):
            return edit.text
        if isinstance(edit, Sub):
            cell = nb.cells[_index(nb, edit.cell)]
            if edit.old not in cell.source:
                raise ValueError(f"{case.name}: {edit.old!r} is not in cell {edit.cell}")
            cell.source = cell.source.replace(edit.old, edit.new)
        elif isinstance(edit, Replace):
            nb.cells[_index(nb, edit.cell)].source = edit.source
        elif isinstance(edit, InsertAfter):
            at = len(nb.cells) if edit.cell is None else _index(nb, edit.cell) + 1
            nb.cells.insert(at, nbformat.v4.new_code_cell(edit.source, id=f"extra-{at}"))
        elif isinstance(edit, Delete):
            del nb.cells[_index(nb, edit.cell)]
    return nbformat.writes(nb) + "\n"


def path_of(case: Case) -> Path:
    return HERE / case.group / f"{case.name}.ipynb"


def expected_json() -> str:
    return json.dumps({f"{c.group}/{c.name}.ipynb": {"expect": c.expected(), "why": c.why, "review": c.review}
                       for c in CASES}, indent=1) + "\n"


def main() -> int:
    names = [(c.group, c.name) for c in CASES]
    if len(set(names)) != len(names):
        raise SystemExit("two cases share a name")
    for group in ("correct", "bugs", "hostile"):
        (HERE / group).mkdir(exist_ok=True)
        for old in (HERE / group).glob("*.ipynb"):
            old.unlink()
    for case in CASES:
        path_of(case).write_text(apply(case))
    (HERE / "expected.json").write_text(expected_json())
    print(f"wrote {len(CASES)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
