import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import plugins
from autograder.sandboxed import standin
from autograder.course import COURSE, Course
from assignments.notebook10 import NOTEBOOK
from autograder.sandbox import Limits

# Every kernel and nbgrader process the tests start finds the offline stand-in.
os.environ.setdefault(standin.ENV, str(COURSE.data_dir))
if not standin.is_current(Path(os.environ[standin.ENV])):
    standin.write(Path(os.environ[standin.ENV]))


@pytest.fixture(scope="session")
def source_nb():
    return nbformat.read(COURSE.source() / NOTEBOOK, as_version=4)


@pytest.fixture(scope="session")
def release_nb():
    return nbformat.read(COURSE.release() / NOTEBOOK, as_version=4)


def copy_course(dest: Path) -> Course:
    """A fresh course directory holding only what an instructor writes: config and source/."""
    shutil.copy2(COURSE.config_file, dest / "nbgrader_config.py")
    shutil.copytree(COURSE.source(), Course(dest).source())
    return Course(dest)


CASES = Path(__file__).parent / "submissions"
EXPECTED = json.loads((CASES / "expected.json").read_text())  # case name -> expected per-item scores and why
# Shorter than the defaults so that the hanging cases do not make the suite crawl.
TEST_LIMITS = Limits(cell_seconds=10, submission_seconds=60)
ITEM_CELLS = plugins.get("notebook10").items  # item -> its test cell, in order


@pytest.fixture(scope="session")
def graded_catalogue():
    """Every case notebook of tests/submissions graded once (warm path), shared by the modules that
    compare with the grader's verdicts."""
    from autograder import engine

    notebooks = {name: (CASES / name).read_bytes() for name in EXPECTED}
    return engine.grade(notebooks, assignment="notebook10", limits=TEST_LIMITS, warm=True, workers=2)


def make_class(root: Path, students: dict[str, Path | str]) -> Course:
    """A course with its release generated and each student's notebook submitted: a case under
    tests/submissions/ by its relative name, or any notebook by its path."""
    from autograder import assignment

    course = copy_course(root)
    assignment.generate_release(course)
    for student, notebook in students.items():
        target = course.submitted(student)
        target.mkdir(parents=True)
        shutil.copy(notebook if isinstance(notebook, Path) else CASES / notebook, target / NOTEBOOK)
    return course


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory):
    """The course regenerated from source/ by nbgrader (read-only for the tests that use it)."""
    from autograder import assignment

    course = copy_course(tmp_path_factory.mktemp("course"))
    assignment.generate_release(course)
    assignment.generate_solutions(course)
    return course
