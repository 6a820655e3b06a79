"""InlineBlanks: nbgrader's ClearSolutions, plus inline ``___`` blanks.

Registered in ``nbgrader_config.py`` in place of ClearSolutions in
``GenerateAssignment.preprocessors``. Lines marked ``# STUDENT SEES: ...`` (see
``autograder.blanks``) become the student's scaffold with ``___`` blanks. nbgrader's own
``### BEGIN SOLUTION`` regions keep working, and a solution cell with neither keeps nbgrader's
behaviour (replaced by its code stub).
"""

from __future__ import annotations

from typing import Any

from nbgrader import utils
from nbgrader.preprocessors import ClearSolutions

from autograder.blanks import BlankMarkerError, blank_source


class InlineBlanks(ClearSolutions):
    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> tuple[Any, Any]:
        if cell.cell_type != "code":
            return super().preprocess_cell(cell, resources, cell_index)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", f"cell {cell_index}")
        try:
            student, blanks = blank_source(cell.source)
        except BlankMarkerError as exc:
            self.log.error("In cell %s: %s", grade_id, exc)
            raise RuntimeError(f"cell {grade_id}: {exc}") from None
        if not blanks:
            return super().preprocess_cell(cell, resources, cell_index)
        if not utils.is_solution(cell):
            raise RuntimeError(
                f"cell {grade_id} has inline blanks but is not a solution cell; mark it as "
                "'Autograded answer' (nbgrader metadata solution: true) so it gets an id.")
        cell.source = student
        # nbgrader regions may sit in the same cell; they are cleared as usual
        self._replace_solution_region(cell, resources["language"])
        return cell, resources
