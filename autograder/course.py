"""The course directory layout, in one place (like nbgrader's CourseDirectory).

The repository root is an nbgrader course directory. Every path the package uses is built
here, so that no module joins course paths by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Course:
    """Paths of one nbgrader course directory (by default, this repository).

    A method's assignment defaults to the course's first (``first_assignment``): a course with one
    assignment need not name it; the engine always names it."""

    root: Path = REPO_ROOT

    def assignments(self) -> list[str]:
        """The assignment ids this course has (folders under source/)."""
        return sorted(p.name for p in (self.root / "source").glob("*") if p.is_dir())

    @property
    def first_assignment(self) -> str:
        """The course's first assignment id: the first of source/ (in name order), else the first that
        has a plug-in (autograder/plugins.py); RuntimeError, saying what to do, when there is none."""
        from autograder import plugins

        names = self.assignments() or plugins.known(self)
        if not names:
            raise RuntimeError(f"{self.root / 'source'} holds no assignment folder: put the instructor's notebook "
                               "in source/ID/ID.ipynb, or name the assignment")
        return names[0]

    def _id(self, assignment: str | None) -> str:
        return assignment or self.first_assignment

    def source(self, assignment: str | None = None) -> Path:
        return self.root / "source" / self._id(assignment)

    def release(self, assignment: str | None = None) -> Path:
        return self.root / "release" / self._id(assignment)

    def solutions(self, assignment: str | None = None) -> Path:
        return self.root / "solutions" / self._id(assignment)

    def submitted(self, student: str = "*", assignment: str | None = None) -> Path:
        return self.root / "submitted" / student / self._id(assignment)

    def autograded(self, student: str = "*", assignment: str | None = None) -> Path:
        return self.root / "autograded" / student / self._id(assignment)

    @staticmethod
    def notebook(assignment: str) -> str:
        """The file name of an assignment's notebook: the assignment's id, as nbgrader courses name it."""
        return f"{assignment}.ipynb"

    def results(self, student: str, assignment: str | None = None) -> Path:
        """The Gradescope-style results.json grading writes next to the autograded notebook."""
        return self.autograded(student, self._id(assignment)) / f"{self._id(assignment)}.results.json"

    STAGING = ".autograde-staging"  # nbgrader's submitted folder for a notebook under another name

    @property
    def staging(self) -> Path:
        return self.root / self.STAGING

    def staged(self, student: str = "*", assignment: str | None = None) -> Path:
        """Where `autograder autograde` shows nbgrader a submission whose notebook has another
        name (as NOTEBOOK), for the moment nbgrader records it."""
        return self.staging / student / self._id(assignment)

    def feedback(self, student: str = "*", assignment: str | None = None) -> Path:
        return self.root / "feedback" / student / self._id(assignment)

    @property
    def config_file(self) -> Path:
        return self.root / "nbgrader_config.py"

    @property
    def gradebook(self) -> Path:
        return self.root / "gradebook.db"

    @property
    def data_dir(self) -> Path:
        """Where the synthetic PneumoniaMNIST stand-in lives (git-ignored, made by setup)."""
        return Path(os.environ.get("MEDMNIST_STANDIN") or self.root / ".data" / "medmnist")


COURSE = Course()


def course_here(cwd: Path | None = None) -> Course:
    """The course directory a command works on: the current folder when it holds an
    nbgrader_config.py (as nbgrader itself assumes), else this repository."""
    cwd = cwd or Path.cwd()
    return Course(cwd.resolve()) if (cwd / "nbgrader_config.py").exists() else COURSE
