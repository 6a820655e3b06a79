"""SandboxAutograde: nbgrader's autograde step, with our engine in place of in-kernel execution.

Registered in ``nbgrader_config.py`` instead of ``Execute`` in
``Autograde.autograde_preprocessors``. nbgrader still reads the submission, restores the
test cells from the gradebook, saves the scores and builds feedback; this step only decides
what the cells show. Each test cell gets one line per check and, as its result, the item's
score (nbgrader's partial credit); each other code cell gets what it printed in the sandbox.
The engine's Gradescope-style results are written next to the autograded notebook.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float, Integer

from autograder import engine, plan, results, sandbox


SKIPPED = ("[grader] Not run while grading: an unchanged demonstration cell from the assignment that no "
           "graded part depends on. Run it yourself to see its output.\n")


class SandboxAutograde(NbGraderPreprocessor):
    seed = Integer(plan.DEFAULT_SEED, help="Seed of the hidden checks (recorded in the results).").tag(config=True)
    cell_seconds = Float(sandbox.Limits.cell_seconds, help="Time limit of one cell.").tag(config=True)
    submission_seconds = Float(sandbox.Limits.submission_seconds,
                               help="Time limit of a whole submission.").tag(config=True)
    unsafe_no_sandbox = Bool(False, help="Run submissions WITHOUT isolation (only on a trusted machine).").tag(config=True)

    # Results already computed by `autograder autograde` (in this process), keyed by student:
    # nbgrader then only records them. Plain `nbgrader autograde` grades here itself.
    precomputed: ClassVar[dict[str, engine.Result]] = {}

    def preprocess(self, nb: Any, resources: Any) -> tuple[Any, Any]:
        student = resources.get("nbgrader", {}).get("student", "submission")
        result = self.precomputed.get(student)
        if result is None:
            limits = sandbox.Limits(cell_seconds=self.cell_seconds, submission_seconds=self.submission_seconds)
            result = engine.grade({student: nb}, seed=self.seed, limits=limits, unsafe=self.unsafe_no_sandbox)[student]
        self.log.info("%s: %s / %s", student, result.score, result.max_score)
        if result.problem:
            self.log.warning("%s needs review: %s", student, result.problem)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                cell.outputs = self._outputs(cell, index, result)
        name = resources.get("unique_key", "notebook")
        resources.setdefault("outputs", {})[f"{name}.results.json"] = (
            json.dumps(results.gradescope(result), indent=2) + "\n").encode()
        return nb, resources

    @staticmethod
    def _outputs(cell: Any, index: int, result: engine.Result) -> list:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        item = results.item_of_cell(grade_id)
        if item is not None:
            text, score, _ = results.cell_report(result, item)
            return [nbformat.v4.new_output("stream", name="stdout", text=text),
                    nbformat.v4.new_output("execute_result", data={"text/plain": f"{score:g}"}, execution_count=None)]
        ran = result.cells.get(index)
        if index in result.skipped:
            return [nbformat.v4.new_output("stream", name="stdout", text=SKIPPED)]
        if ran is None:
            return []
        text = ran.get("output", "")
        error = ran.get("error")
        if error:
            where = f" at line {error['line']}: {error['code']}" if error.get("code") else ""
            text += f"\n[grader] this cell stopped with {error['type']}{where}\n  {error['message']}\n"
        return [nbformat.v4.new_output("stream", name="stdout", text=text)] if text else []
