"""Instructor-side nbgrader steps for this course: release, solutions, validation, blank inventory.

Each step runs the real ``nbgrader`` command line in the course directory, with this
environment's ``bin`` on PATH (nbgrader calls ``alembic`` by name) and the offline data
stand-in switched on unless the caller chose otherwise (see ``autograder.sandboxed.standin``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.sandboxed import standin
from autograder.blanks import Blank, blank_source
from autograder.course import COURSE, Course


def tool_env(course: Course = COURSE) -> dict[str, str]:
    """The environment nbgrader and kernels run in: venv tools on PATH, stand-in data on."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    # An explicit MEDMNIST_STANDIN (even empty, meaning "use the real data") is respected.
    env.setdefault(standin.ENV, str(course.data_dir))
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    return env


@dataclass
class Run:
    ok: bool
    output: str


def nbgrader(*args: str, course: Course = COURSE, timeout: float = 600) -> Run:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course.root, env=tool_env(course),
                          capture_output=True, text=True, timeout=timeout)
    return Run(proc.returncode == 0, proc.stdout + proc.stderr)


def _require(run: Run, what: str) -> Run:
    if not run.ok:
        raise RuntimeError(f"{what} failed:\n{run.output[-4000:]}")
    return run


def generate_release(course: Course = COURSE, assignment: str | None = None) -> Path:
    """`nbgrader generate_assignment`: source/ -> release/ (the student version)."""
    assignment = assignment or course.first_assignment
    _require(nbgrader("generate_assignment", assignment, "--force", course=course), "nbgrader generate_assignment")
    return course.release(assignment) / Course.notebook(assignment)


def generate_solutions(course: Course = COURSE, assignment: str | None = None) -> Path:
    """`nbgrader generate_solution` (which also executes): source/ -> solutions/."""
    assignment = assignment or course.first_assignment
    _require(nbgrader("db", "assignment", "add", assignment, course=course), "nbgrader db assignment add")
    _require(nbgrader("generate_solution", assignment, "--force", course=course), "nbgrader generate_solution")
    path = course.solutions(assignment) / Course.notebook(assignment)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # execution timestamps would make every regeneration a change
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return path


def validate(notebook: Path, course: Course = COURSE) -> Run:
    """`nbgrader validate`: ok means every test cell passes."""
    run = nbgrader("validate", str(notebook), course=course)
    # nbgrader validate exits 0 either way; its verdict is in the text
    return Run(run.ok and "Success! Your notebook passes all the tests." in run.output, run.output)


@dataclass(frozen=True)
class BlankSite:
    """A line of a solution cell with one or more blanks, and the answers they hide."""

    grade_id: str
    line: int
    answers: tuple[str, ...]


def blank_sites(source_notebook: Path) -> list[BlankSite]:
    """Every blanked line of the source notebook, in order."""
    nb = nbformat.read(source_notebook, as_version=4)
    sites = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        _, blanks = blank_source(cell.source)
        by_line: dict[int, list[Blank]] = {}
        for b in blanks:
            by_line.setdefault(b.line, []).append(b)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        sites += [BlankSite(grade_id, line, tuple(b.answer for b in bs)) for line, bs in by_line.items()]
    return sites


def add_students(students: list[str], course: Course = COURSE) -> None:
    for student in students:
        _require(nbgrader("db", "student", "add", student, course=course), f"nbgrader db student add {student}")


def autograde(course: Course = COURSE, assignment: str | None = None, *extra: str) -> Run:
    """`nbgrader autograde` (with our SandboxAutograde step, see nbgrader_config.py)."""
    assignment = assignment or course.first_assignment
    return _require(nbgrader("autograde", assignment, *extra, course=course, timeout=3600), "nbgrader autograde")


def gradebook_scores(course: Course = COURSE, assignment: str | None = None,
                     db_url: str | None = None) -> dict[str, dict[str, float]]:
    """Student -> grade cell id -> score, read from nbgrader's gradebook."""
    assignment = assignment or course.first_assignment
    from nbgrader.api import Gradebook

    scores: dict[str, dict[str, float]] = {}
    with Gradebook(db_url or f"sqlite:///{course.gradebook}") as gb:
        for submission in gb.assignment_submissions(assignment):
            for notebook in submission.notebooks:
                scores[submission.student_id] = {g.name: float(g.score) for g in notebook.grades}
    return scores
