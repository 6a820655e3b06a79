"""StripBlankMarkers: removes ``# STUDENT SEES:`` comments from the solutions handed out.

Registered in ``GenerateSolution.preprocessors`` (``nbgrader_config.py``).
"""

from __future__ import annotations

from typing import Any

from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.blanks import strip_markers


class StripBlankMarkers(NbGraderPreprocessor):
    def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> tuple[Any, Any]:
        if cell.cell_type == "code":
            cell.source = strip_markers(cell.source)
        return cell, resources
