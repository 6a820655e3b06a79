"""Notebook 11 as a class goes through it: released by nbgrader, graded through both doors (autograder
autograde, and plain nbgrader autograde), feedback pages, the report and a Canvas export. Nothing
of this is specific to the engine: the course only has the plug-in folder and the source."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from autograder import assignment, cli, export, report
from autograder.course import COURSE, Course

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"
STUDENTS = {  # student -> (catalogue notebook, its item scores)
    "ada": ("correct_solution_score_full", {"double_conv": 2, "down_up": 3, "unet_output": 3, "device_placement": 2}),
    "ben": ("bug_up_skip_second_score_up_only", {"double_conv": 2, "down_up": 1, "unet_output": 3,
                                                  "device_placement": 2}),
    "cy": ("bug_device_hard_coded_cpu_score_device_choice_lost", {"double_conv": 2, "down_up": 3, "unet_output": 3,
                                                                   "device_placement": 1.75}),
}
CELLS = {"double_conv": "test_double_conv", "down_up": "test_down_up_shapes", "unet_output": "test_unet_output",
         "device_placement": "test_device_placement"}


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    root = tmp_path_factory.mktemp("course11")
    shutil.copy2(COURSE.config_file, root / "nbgrader_config.py")
    shutil.copytree(COURSE.source("notebook11"), root / "source" / "notebook11")
    course = Course(root)
    assignment.generate_release(course, "notebook11")
    for student, (case, _) in STUDENTS.items():
        folder = course.submitted(student, "notebook11")
        folder.mkdir(parents=True)
        shutil.copy(SUBMISSIONS / f"{case}.ipynb", folder / "notebook11.ipynb")
    assignment.add_students(list(STUDENTS), course)
    return course


def _gradebook(course: Course) -> dict[str, float]:
    """student/item -> score, as the gradebook holds them"""
    scores = assignment.gradebook_scores(course, "notebook11")
    return {f"{s}/{item}": scores[s][cell] for s in scores for item, cell in CELLS.items()}


@pytest.mark.slow
def test_a_notebook11_class_through_both_doors_feedback_report_and_export(course, tmp_path):
    expected = {f"{student}/{item}": score for student, (_, items) in STUDENTS.items() for item, score in items.items()}
    totals = {student: sum(items.values()) for student, (_, items) in STUDENTS.items()}
    assert cli.main(["autograde", "notebook11", "--course", str(course.root)]) == 0
    assert _gradebook(course) == pytest.approx(expected)
    results = {s: json.loads(course.results(s, "notebook11").read_text()) for s in STUDENTS}
    assert {s: r["score"] for s, r in results.items()} == pytest.approx(totals)

    assert assignment.autograde(course, "notebook11", "--force").ok  # plain nbgrader, the other door
    assert _gradebook(course) == pytest.approx(expected)

    assert assignment.nbgrader("generate_feedback", "notebook11", "--force", course=course).ok
    page = (course.feedback("ben", "notebook11") / "notebook11.html").read_text()
    assert "skip" in page and "down_up" in page  # the Up message and the item's name

    written = report.main(assignment="notebook11", course=course, out=tmp_path / "report")
    rows = list(csv.DictReader(written["csv"].open()))
    assert {r["student"]: float(r["total"]) for r in rows} == pytest.approx(totals)
    page = written["html"].read_text()
    assert "no blank-site map" not in page and "torch.cat([skip, x], dim=1)" in page  # the blank-site table (sites.py)

    done = export.main(assignment="notebook11", fmt="canvas", out=tmp_path / "canvas.csv", course=course)
    table = list(csv.reader(done.written[0].open()))
    assert table[0][-1] == "notebook11" and table[1][-1] == "10"  # the grade column and its Points Possible
