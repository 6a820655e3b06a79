"""The course directory layout, in one place (like nbgrader's CourseDirectory).

The repository root is an nbgrader course directory. Every path the package uses is built
here, so that no module joins course paths by hand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ASSIGNMENT = "notebook10"
NOTEBOOK = "notebook10.ipynb"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Course:
    """Paths of one nbgrader course directory (by default, this repository)."""

    root: Path = REPO_ROOT

    def source(self, assignment: str = ASSIGNMENT) -> Path:
        return self.root / "source" / assignment

    def assignments(self) -> list[str]:
        """The assignment ids this course has (folders under source/)."""
        return sorted(p.name for p in (self.root / "source").glob("*") if p.is_dir())

    def release(self, assignment: str = ASSIGNMENT) -> Path:
        return self.root / "release" / assignment

    def solutions(self, assignment: str = ASSIGNMENT) -> Path:
        return self.root / "solutions" / assignment

    def submitted(self, student: str = "*", assignment: str = ASSIGNMENT) -> Path:
        return self.root / "submitted" / student / assignment

    def autograded(self, student: str = "*", assignment: str = ASSIGNMENT) -> Path:
        return self.root / "autograded" / student / assignment

    @staticmethod
    def notebook(assignment: str = ASSIGNMENT) -> str:
        """The file name of an assignment's notebook: the assignment's id, as nbgrader courses name it."""
        return f"{assignment}.ipynb"

    def results(self, student: str, assignment: str = ASSIGNMENT) -> Path:
        """The Gradescope-style results.json grading writes next to the autograded notebook."""
        return self.autograded(student, assignment) / f"{assignment}.results.json"

    STAGING = ".autograde-staging"  # nbgrader's submitted folder for a notebook under another name

    @property
    def staging(self) -> Path:
        return self.root / self.STAGING

    def staged(self, student: str = "*", assignment: str = ASSIGNMENT) -> Path:
        """Where `autograder autograde` shows nbgrader a submission whose notebook has another
        name (as NOTEBOOK), for the moment nbgrader records it."""
        return self.staging / student / assignment

    def feedback(self, student: str = "*", assignment: str = ASSIGNMENT) -> Path:
        return self.root / "feedback" / student / assignment

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
