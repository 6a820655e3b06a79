"""`autograder autograde`: a class in parallel, into nbgrader's gradebook, resumable after kill -9."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from autograder import assignment
from autograder.course import NOTEBOOK
from autograder.graders import ITEM_CELLS
from tests.conftest import CASES, EXPECTED, make_class

CLASS = {f"st{i:02d}": case for i, case in enumerate([
    "correct/correct_solution_as_released_success_score_full.ipynb",
    "bugs/bug_no_padding_score_partial.ipynb",
    "hostile/hostile_zeros_of_the_right_shape_score_zero_for_blocks.ipynb",
    "correct/correct_identity_module_shortcut_success_score_full.ipynb",
    "bugs/bug_no_padding_score_partial.ipynb",
    "correct/correct_solution_as_released_success_score_full.ipynb",
    "hostile/hostile_zeros_of_the_right_shape_score_zero_for_blocks.ipynb",
    "correct/correct_identity_module_shortcut_success_score_full.ipynb",
])}


def autograde_cli(course, *args, **popen):
    cmd = [sys.executable, "-m", "autograder.cli", "autograde", "notebook10", "--course", str(course.root), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=assignment.tool_env(),
                            start_new_session=True, **popen)


def results_files(course):
    return sorted(course.root.glob("autograded/*/notebook10/notebook10.results.json"))


def item_scores(course):
    scores = assignment.gradebook_scores(course)
    return {s: {item: scores[s][cell] for item, cell in ITEM_CELLS.items()} for s in scores}


@pytest.fixture
def course(tmp_path):
    return make_class(tmp_path, CLASS)


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_without_losing_or_repeating_a_grade(course):
    first = autograde_cli(course, "--workers", "2")
    deadline = time.monotonic() + 600
    while len(results_files(course)) < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    finished_before = {p.parts[-3] for p in results_files(course)}
    assert 3 <= len(finished_before) < len(CLASS), "the kill came too late to test resuming"

    second = autograde_cli(course, "--workers", "2")
    out, err = second.communicate(timeout=900)
    assert second.returncode == 0, err
    skipped = int(out.split("already graded and unchanged ")[1].split()[0])
    assert skipped >= len(finished_before)
    assert f"graded {len(CLASS) - skipped}," in out

    scores = item_scores(course)
    assert sorted(scores) == sorted(CLASS)  # one submission per student, none lost, none doubled
    for student, case in CLASS.items():
        assert scores[student] == pytest.approx(EXPECTED[case]["expect"], abs=1e-6), student


@pytest.mark.slow
def test_only_a_changed_notebook_is_regraded_and_force_regrades_all(course):
    run = autograde_cli(course, "--workers", "2")
    out, err = run.communicate(timeout=900)
    assert run.returncode == 0, err
    shutil.copy(CASES / "bugs/bug_no_padding_score_partial.ipynb", course.submitted("st00") / NOTEBOOK)
    run = autograde_cli(course)
    out, err = run.communicate(timeout=900)
    assert f"graded 1, already graded and unchanged {len(CLASS) - 1}" in out
    assert item_scores(course)["st00"]["residual_block_shapes"] == 0.0
    run = autograde_cli(course, "--force", "--workers", "2")
    out, err = run.communicate(timeout=900)
    assert f"graded {len(CLASS)}, already graded and unchanged 0" in out
    assert "grading notebook10 [" in err  # the progress bar, with rate and ETA
    assert "ETA" in err


def _recorded(course):
    """What nbgrader holds for each student: every grade and comment, and the autograded notebook."""
    import nbformat
    from nbgrader.api import Gradebook

    recorded = {}
    with Gradebook(f"sqlite:///{course.gradebook}") as gb:
        for submission in gb.assignment_submissions("notebook10"):
            for nb in submission.notebooks:
                grades = sorted((g.name, g.auto_score, g.max_score) for g in nb.grades)
                comments = sorted((c.name, c.auto_comment) for c in nb.comments)
                cells = [(c.cell_type, c.source, [{k: v for k, v in o.items() if k != "execution_count"}
                                                  for o in c.get("outputs", [])])
                         for c in nbformat.read(course.autograded(submission.student_id) / NOTEBOOK, 4).cells]
                recorded[submission.student_id] = (grades, comments, cells)
    return recorded


@pytest.mark.slow
def test_the_parallel_run_records_what_nbgrader_autograde_records(tmp_path):
    """Same grades, comments and autograded notebooks as `nbgrader autograde` (with the sandbox
    preprocessor) writes for the same class: the parallel run's shortcuts in nbgrader's
    recording (a shared database engine, a schema checked once) change nothing it records."""
    students = dict(list(CLASS.items())[:3])
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours, theirs = make_class(tmp_path / "ours", students), make_class(tmp_path / "theirs", students)
    run = autograde_cli(ours, "--workers", "2")
    _, err = run.communicate(timeout=900)
    assert run.returncode == 0, err
    assignment.add_students(list(students), theirs)
    assignment.autograde(theirs)
    assert _recorded(ours) == _recorded(theirs)
    assert set(_recorded(ours)) == set(students)


def test_the_schema_checked_once_raises_what_jsonschema_raises():
    import jsonschema
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    from autograder.autograde import _SchemaCheckedOnce

    schema = MetadataValidatorV3().schema
    once = _SchemaCheckedOnce(jsonschema)
    good = {"schema_version": 3, "grade": True, "solution": False, "locked": True, "points": 2.0,
            "grade_id": "test_x"}
    once.validate(good, schema)
    jsonschema.validate(good, schema)
    for bad in ({**good, "points": "two"}, {**good, "grade": "yes"}, {"schema_version": 3}):
        with pytest.raises(jsonschema.ValidationError) as theirs:
            jsonschema.validate(bad, schema)
        with pytest.raises(jsonschema.ValidationError) as ours:
            once.validate(bad, schema)
        assert str(ours.value) == str(theirs.value)
