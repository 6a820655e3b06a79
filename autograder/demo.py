"""`make demo`: generate the student release, validate the solution, and show the release
stopping at its blanks. Prints a short summary."""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from autograder import assignment, plugins, report
from autograder.course import ASSIGNMENT, COURSE, NOTEBOOK, Course


def run_release_cells(course: Course = COURSE) -> list[tuple[str, str]]:
    """Run each exercise cell of the release, as a student who has filled every earlier blank.

    One kernel goes through the notebook in order. Each solution cell is run twice: first as
    released (its outcome is recorded: the error at its first blank), then as in the source, so
    that the next exercise starts from correct earlier work. Returns (grade_id, outcome) pairs.
    """
    release = nbformat.read(course.release() / NOTEBOOK, as_version=4)
    source = {c.metadata.get("nbgrader", {}).get("grade_id"): c
              for c in nbformat.read(course.source() / NOTEBOOK, as_version=4).cells}
    client = NotebookClient(release, kernel_name="python3", allow_errors=True, timeout=120,
                            resources={"metadata": {"path": str(course.release())}})
    client.km = client.create_kernel_manager()
    rows = []
    # IPC sockets in a private folder, not TCP: the kernel then has no reason to warn that it
    # "is running over TCP without encryption" in the demo's output
    with tempfile.TemporaryDirectory() as sockets:
        client.km.transport, client.km.ip = "ipc", str(Path(sockets) / "kernel")
        with client.setup_kernel(env=assignment.tool_env(course)):
            for index, cell in enumerate(release.cells):
                meta = cell.metadata.get("nbgrader", {})
                if cell.cell_type != "code" or meta.get("grade"):
                    continue
                client.execute_cell(cell, index)
                if not meta.get("solution"):
                    continue
                errors = [o for o in cell.outputs if o.output_type == "error"]
                rows.append((meta["grade_id"], f"{errors[0].ename}: {errors[0].evalue}" if errors else
                             "ran: a definition only; its blanks stop the first cell that uses it"))
                filled = nbformat.from_dict(source[meta["grade_id"]])
                client.execute_cell(filled, index)
    return rows


# The bundled example class: real submissions from the test catalogue, one per kind of outcome.
EXAMPLE_CLASS = {
    "ada": "tests/submissions/correct/correct_solution_as_released_success_score_full.ipynb",
    "ben": "tests/submissions/bugs/bug_no_padding_score_partial.ipynb",
    "cy": "tests/submissions/hostile/hostile_zeros_of_the_right_shape_score_zero_for_blocks.ipynb",
    "dee": "tests/submissions/correct/correct_identity_module_shortcut_success_score_full.ipynb",
    "eve": "release/notebook10/notebook10.ipynb",
}


CATALOGUE = "tests/submissions/expected.json"  # each case's expected item scores (tests/test_submissions.py)


def expected_totals(root: Path = COURSE.root) -> dict[str, float]:
    """What each example student must score, from the test catalogue's expectations (the blank
    release earns nothing): a demo on a machine where grading is broken fails."""
    catalogue = json.loads((root / CATALOGUE).read_text())
    prefix = "tests/submissions/"
    return {student: sum(catalogue[path.removeprefix(prefix)]["expect"].values()) if path.startswith(prefix) else 0.0
            for student, path in EXAMPLE_CLASS.items()}


def grade_example_class(course: Course = COURSE) -> dict[str, dict[str, float]]:
    """Copy the example class into submitted/, run `nbgrader autograde`, read the gradebook."""
    assignment.add_students(list(EXAMPLE_CLASS), course)
    for student, path in EXAMPLE_CLASS.items():
        target = course.submitted(student)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(course.root / path, target / NOTEBOOK)
    assignment.autograde(course, ASSIGNMENT, "--force")
    return assignment.gradebook_scores(course)


def what_went_wrong(results: dict | None, width: int = 100) -> str:
    """One line on a graded student's results: their first root cause of failure (as the class
    report counts them: a crash that another check explains is not one), shortened."""
    if not results:
        return "no results.json (see the autograded notebook)"
    causes = report.root_causes(report.StudentRecord("", {}, results=results))
    if not causes:
        return "nothing: every check passed"
    first = next(iter(causes))
    more = f" (+{len(causes) - 1} more)" if len(causes) > 1 else ""
    return textwrap.shorten(first, width - len(more), placeholder=" ...") + more


def print_score_table(scores: dict[str, dict[str, float]], course: Course = COURSE) -> None:
    item_cells = plugins.get(ASSIGNMENT, course).items
    items = list(item_cells)
    print("     " + f"{'student':<8}" + "".join(f"{i:>23}" for i in items) + f"{'total':>8}")
    for student, cells in sorted(scores.items()):
        row = [cells.get(item_cells[i], 0.0) for i in items]
        print("     " + f"{student:<8}" + "".join(f"{v:>23.2f}" for v in row) + f"{sum(row):>8.2f}")
    print("   What each one got wrong (the first root cause in their results):")
    for student in sorted(scores):
        try:
            results = json.loads(course.results(student, ASSIGNMENT).read_text())
        except (OSError, ValueError):
            results = None
        print(f"     {student:<8}{what_went_wrong(results)}")


def main(course: Course = COURSE) -> int:
    started = time.perf_counter()
    print("1. Generating the student version with `nbgrader generate_assignment notebook10` ...")
    release = assignment.generate_release(course)
    sites = assignment.blank_sites(course.source() / NOTEBOOK)
    n_blanks = sum(len(s.answers) for s in sites)
    print(f"   {release.relative_to(course.root)}: {n_blanks} blanks at {len(sites)} sites")

    print("2. Validating the solution notebook with `nbgrader validate` ...")
    solution_check = assignment.validate(course.source() / NOTEBOOK, course)
    print(f"   source/notebook10: {'passes every test cell' if solution_check.ok else 'FAILED'}")

    print("3. Validating the blank student release (it must fail) ...")
    release_check = assignment.validate(release, course)
    print(f"   release/notebook10: {'passes (unexpected!)' if release_check.ok else 'fails, as a blank release should'}")
    print("   Running it cell by cell, each exercise cell stops at its first blank:")
    for grade_id, outcome in run_release_cells(course):
        print(f"     {grade_id:<22} {outcome}")

    print("4. Grading the example class with `nbgrader autograde notebook10` (sandboxed hidden graders) ...")
    scores = grade_example_class(course)
    print_score_table(scores, course)
    want = expected_totals(course.root)
    wrong = [s for s, total in want.items() if abs(sum(scores.get(s, {}).values()) - total) > 1e-6]
    if wrong:
        print(f"   UNEXPECTED: {', '.join(wrong)} should have {', '.join(str(want[s]) for s in wrong)} "
              "points; grading is not working on this machine (see the autograded notebooks' outputs).")

    print("5. Feedback pages (`nbgrader generate_feedback`) and the class report (`autograder report`) ...")
    assignment._require(assignment.nbgrader("generate_feedback", ASSIGNMENT, "--force", course=course),
                        "nbgrader generate_feedback")
    for student in sorted(EXAMPLE_CLASS):
        print(f"   feedback: {(course.feedback(student) / 'notebook10.html').relative_to(course.root)}")
    written = report.main(assignment=ASSIGNMENT, course=course, out=course.root / "report")
    print(f"   report:   {Path(written['html']).relative_to(course.root)} (with scores.csv and four plots beside it)")

    ok = solution_check.ok and not release_check.ok and not wrong
    print(f"\nDemo {'finished' if ok else 'FAILED'} in {time.perf_counter() - started:.0f} s.")
    if not solution_check.ok:
        print(solution_check.output[-3000:])
    return 0 if ok else 1
