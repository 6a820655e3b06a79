"""`make demo`: for each assignment whose plug-in has an example class, generate the student
release, validate the solution, show the release stopping at its blanks, grade the example class
with `nbgrader autograde`, and write its feedback and the class report. Prints a short summary.

A plug-in's example class is ``EXAMPLE_CLASS`` in its ``__init__.py``: student -> (a notebook's path
from the course root, the total it must score). The totals are the catalogue's expectations, so a
demo on a machine where grading is broken fails."""

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
from autograder.course import COURSE, Course


def run_release_cells(course: Course = COURSE, assignment_id: str | None = None) -> list[tuple[str, str]]:
    """Run each exercise cell of the release, as a student who has filled every earlier blank.

    One kernel goes through the notebook in order. Each solution cell is run twice: first as
    released (its outcome is recorded: the error at its first blank), then as in the source, so
    that the next exercise starts from correct earlier work. Returns (grade_id, outcome) pairs.
    """
    assignment_id = assignment_id or course.first_assignment
    notebook = plugins.get(assignment_id, course).notebook
    release = nbformat.read(course.release(assignment_id) / notebook, as_version=4)
    source = {c.metadata.get("nbgrader", {}).get("grade_id"): c
              for c in nbformat.read(course.source(assignment_id) / notebook, as_version=4).cells}
    client = NotebookClient(release, kernel_name="python3", allow_errors=True, timeout=120,
                            resources={"metadata": {"path": str(course.release(assignment_id))}})
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


def example_class(assignment_id: str, course: Course = COURSE) -> dict[str, tuple[str, float]]:
    """The plug-in's example class: student -> (notebook path from the course root, expected total)."""
    return dict(getattr(plugins.get(assignment_id, course).load(), "EXAMPLE_CLASS", {}))


def demo_assignments(course: Course = COURSE) -> list[str]:
    """The course's assignments whose plug-in has an example class."""
    return [a for a in plugins.known(course) if a in course.assignments() and example_class(a, course)]


def grade_example_class(course: Course, assignment_id: str) -> dict[str, dict[str, float]]:
    """Copy the example class into submitted/, run `nbgrader autograde`, read the gradebook."""
    students = example_class(assignment_id, course)
    notebook = plugins.get(assignment_id, course).notebook
    assignment.add_students(list(students), course)
    for student, (path, _) in students.items():
        target = course.submitted(student, assignment_id)
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(course.root / path, target / notebook)
    assignment.autograde(course, assignment_id, "--force")
    return {student: cells for student, cells in assignment.gradebook_scores(course, assignment_id).items()
            if student in students}


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


def print_score_table(scores: dict[str, dict[str, float]], course: Course, assignment_id: str) -> None:
    item_cells = plugins.get(assignment_id, course).items
    items = list(item_cells)
    print("     " + f"{'student':<8}" + "".join(f"{i:>23}" for i in items) + f"{'total':>8}")
    for student, cells in sorted(scores.items()):
        row = [cells.get(item_cells[i], 0.0) for i in items]
        print("     " + f"{student:<8}" + "".join(f"{v:>23.2f}" for v in row) + f"{sum(row):>8.2f}")
    print("   What each one got wrong (the first root cause in their results):")
    for student in sorted(scores):
        try:
            results = json.loads(course.results(student, assignment_id).read_text())
        except (OSError, ValueError):
            results = None
        print(f"     {student:<8}{what_went_wrong(results)}")


def main(course: Course = COURSE, assignments: list[str] | None = None) -> int:
    started = time.perf_counter()
    chosen = assignments or demo_assignments(course)
    if not chosen:
        print("No assignment of this course has an example class (EXAMPLE_CLASS in assignments/ID/__init__.py).")
        return 1
    failed = [a for a in chosen if not demo_one(course, a)]
    ok = not failed
    print(f"\nDemo {'finished' if ok else 'FAILED (' + ', '.join(failed) + ')'} in {time.perf_counter() - started:.0f} s.")
    return 0 if ok else 1


def demo_one(course: Course, assignment_id: str) -> bool:
    """The demo of one assignment; True when everything came out as it must."""
    plugin = plugins.get(assignment_id, course)
    notebook = plugin.notebook
    students = example_class(assignment_id, course)
    print(f"== {assignment_id} ==")
    print(f"1. Generating the student version with `nbgrader generate_assignment {assignment_id}` ...")
    release = assignment.generate_release(course, assignment_id)
    sites = assignment.blank_sites(course.source(assignment_id) / notebook)
    n_blanks = sum(len(s.answers) for s in sites)
    print(f"   {release.relative_to(course.root)}: {n_blanks} blanks at {len(sites)} sites")

    print("2. Validating the solution notebook with `nbgrader validate` ...")
    solution_check = assignment.validate(course.source(assignment_id) / notebook, course)
    print(f"   source/{assignment_id}: {'passes every test cell' if solution_check.ok else 'FAILED'}")

    print("3. Validating the blank student release (it must fail) ...")
    release_check = assignment.validate(release, course)
    print(f"   release/{assignment_id}: "
          f"{'passes (unexpected!)' if release_check.ok else 'fails, as a blank release should'}")
    print("   Running it cell by cell, each exercise cell stops at its first blank:")
    for grade_id, outcome in run_release_cells(course, assignment_id):
        print(f"     {grade_id:<22} {textwrap.shorten(outcome, 90, placeholder=' ...')}")

    print(f"4. Grading the example class with `nbgrader autograde {assignment_id}` (sandboxed hidden graders) ...")
    scores = grade_example_class(course, assignment_id)
    print_score_table(scores, course, assignment_id)
    wrong = [s for s, (_, total) in students.items() if abs(sum(scores.get(s, {}).values()) - total) > 1e-6]
    if wrong:
        print(f"   UNEXPECTED: {', '.join(wrong)} should have {', '.join(str(students[s][1]) for s in wrong)} "
              "points; grading is not working on this machine (see the autograded notebooks' outputs).")

    print("5. Feedback pages (`nbgrader generate_feedback`) and the class report (`autograder report`) ...")
    assignment._require(assignment.nbgrader("generate_feedback", assignment_id, "--force", course=course),
                        "nbgrader generate_feedback")
    for student in sorted(students):
        page = course.feedback(student, assignment_id) / notebook.replace(".ipynb", ".html")
        print(f"   feedback: {page.relative_to(course.root)}")
    written = report.main(assignment=assignment_id, course=course, out=course.root / "report" / assignment_id)
    print(f"   report:   {Path(written['html']).relative_to(course.root)} (with scores.csv and four plots beside it)")
    if not solution_check.ok:
        print(solution_check.output[-3000:])
    return solution_check.ok and not release_check.ok and not wrong
