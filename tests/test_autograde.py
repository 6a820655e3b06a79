"""`autograder autograde`: a class in parallel, into nbgrader's gradebook, resumable after kill -9."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from autograder import assignment
from assignments.notebook10 import NOTEBOOK
from tests.conftest import ITEM_CELLS
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


# --- every student folder ends graded or listed; what the terminal says ------------------------

CORRECT = "correct/correct_solution_as_released_success_score_full.ipynb"
LOOP = "while True:\n    pass\n"


def _with_a_loop(dest):
    """The correct notebook with a cell that never ends in the middle (not a graded cell)."""
    import nbformat

    nb = nbformat.read(CASES / CORRECT, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    nb.cells.insert(code[len(code) // 2], nbformat.v4.new_code_cell(LOOP))
    nbformat.write(nb, dest)
    return dest


@pytest.fixture(scope="module")
def odd_class(tmp_path_factory):
    """ada (as asked), copy (notebook10-Copy1.ipynb, a file and a timestamp beside it), loop (a
    cell that never ends), garbled (not JSON), two (two notebooks, none of them notebook10.ipynb),
    none (no notebook): graded in this process with the suite's limits, then generate_feedback."""
    import io

    from autograder import autograde
    from tests.conftest import TEST_LIMITS

    root = tmp_path_factory.mktemp("odd")
    course = make_class(root, {"ada": CORRECT, "loop": _with_a_loop(root / "loop.ipynb")})
    copy = course.submitted("copy")
    copy.mkdir(parents=True)
    shutil.copy(CASES / CORRECT, copy / "notebook10-Copy1.ipynb")
    (copy / "notes.txt").write_text("my notes\n")
    (copy / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC\n")
    course.submitted("two").mkdir(parents=True)
    for name in ("notebook10-1.ipynb", "notebook10-2.ipynb"):
        shutil.copy(CASES / CORRECT, course.submitted("two") / name)
    course.submitted("none").mkdir(parents=True)
    course.submitted("garbled").mkdir(parents=True)
    (course.submitted("garbled") / NOTEBOOK).write_text("{ not a notebook")
    summary = autograde.main(assignment="notebook10", course=course, workers=2, limits=TEST_LIMITS)
    out = io.StringIO()
    autograde.print_summary(summary, stream=out)
    feedback = assignment.nbgrader("generate_feedback", "notebook10", course=course)
    return course, summary, out.getvalue(), feedback


@pytest.mark.slow
def test_the_only_notebook_of_a_folder_is_graded_as_the_assignments_and_the_others_are_listed(odd_class):
    import nbformat

    course, summary, out, feedback = odd_class
    assert sorted(summary.graded) == ["ada", "copy", "garbled", "loop"]
    assert sorted(summary.refused) == ["none", "two"]
    assert "copy: graded notebook10-Copy1.ipynb (the only notebook in the folder)" in out
    assert "two: not graded: no notebook10.ipynb in its notebook10 folder but 2 notebooks" in out
    assert "none: not graded: no notebook10.ipynb" in out
    scores = item_scores(course)
    assert sorted(scores) == ["ada", "copy", "garbled", "loop"]
    assert scores["copy"] == pytest.approx(EXPECTED[CORRECT]["expect"], abs=1e-6)
    assert nbformat.read(course.autograded("copy") / NOTEBOOK, as_version=4).cells  # as nbgrader names it
    assert (course.autograded("copy") / "notes.txt").read_text() == "my notes\n"
    assert not (course.root / course.STAGING).exists()
    assert feedback.ok, feedback.output[-3000:]
    assert "residual_block_shapes: 3 of 3 points" in (course.feedback("copy") / "notebook10.html").read_text()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course.gradebook}") as gb:
        assert str(gb.find_submission("notebook10", "copy").timestamp).startswith("2026-11-20 10:00:00")


@pytest.mark.slow
def test_exports_can_name_every_folder_without_a_grade(odd_class):
    from autograder import autograde

    course = odd_class[0]
    missing = autograde.ungraded(course, "notebook10")
    assert sorted(missing) == ["none", "two"]
    assert "2 notebooks" in missing["two"]
    shutil.copy(CASES / "bugs/bug_no_padding_score_partial.ipynb", course.submitted("copy") / "notebook10-Copy1.ipynb")
    (course.submitted("late") / "x").mkdir(parents=True)
    shutil.copy(CASES / CORRECT, course.submitted("late") / NOTEBOOK)
    try:
        missing = autograde.ungraded(course, "notebook10")
    finally:
        shutil.copy(CASES / CORRECT, course.submitted("copy") / "notebook10-Copy1.ipynb")
        shutil.rmtree(course.root / "submitted" / "late")
    assert sorted(missing) == ["copy", "late", "none", "two"]
    assert "changed since it was graded" in missing["copy"] and "not graded yet" in missing["late"]


@pytest.mark.slow
def test_a_cell_stopped_by_the_time_limit_is_flagged_everywhere_and_costs_no_points(odd_class):
    import json
    import re

    from autograder import report

    course, summary, out, feedback = odd_class
    assert item_scores(course)["loop"] == pytest.approx(EXPECTED[CORRECT]["expect"], abs=1e-6)
    extra = json.loads(course.results("loop").read_text())["extra_data"]
    assert [(c["seconds"], c["line"], c["code"]) for c in extra["timed_out"]] == [(10.0, 1, "while True:")]
    assert "time limit" in extra["needs_review"]
    # the terminal: a row per student with its flags, the mean, and the list
    rows = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in
            ("student", "ada", "copy", "garbled", "loop")}
    assert "shapes/3" in rows["student"] and "total" in rows["student"] and "flags" in rows["student"]
    assert rows["loop"].split()[1:6] == ["3.00", "3.00", "2.00", "2.00", "10.00"]
    assert "timed out" in rows["loop"] and "review" in rows["loop"] and "timed out" not in rows["ada"]
    assert "other notebook" in rows["copy"]
    assert "mean of 4: 7.50 / 10" in out
    assert re.search(r"unreadable \(1\):\n  garbled: This submission could not be graded: ", out)
    assert "unreadable" in out.split("\ngarbled ")[1].splitlines()[0]
    label = extra["timed_out"][0]["label"]
    assert re.search(rf"timed out \(1;.*\n  loop: {label} stopped after 10 s", out)
    assert re.search(r"flagged for review \(\d\):\n(  .*\n)*  loop: needs review: .*time limit", out)
    # the report's review list
    record = report.load(course, "notebook10")
    flagged = {s.student: s.needs_review for s in record.students if s.needs_review}
    assert [s for s, why in flagged.items() if "time limit" in why] == ["loop"]
    # the student's feedback: the sentence, at that cell, and nothing of the grader's
    assert feedback.ok, feedback.output[-3000:]
    page = (course.feedback("loop") / "notebook10.html").read_text()
    assert "This cell ran longer than 10 s and was stopped at line 1: `while True:`; the cells after it ran " \
           "without what it would have made." in page
    assert "CellTimeout" not in page and "/autograder/" not in page and str(course.root) not in page
    assert "CellTimeout" not in json.loads(course.results("loop").read_text())["output"]


@pytest.mark.parametrize("printed, kept", [
    pytest.param("before\nTraceback (most recent call last):\n  Cell In[3], line 2\n    while True:\nCellTimeout\n\n",
                 "before\n", id="the-interrupt"),
    pytest.param("x\nTraceback (most recent call last):\n  File a\nKeyError: 1\nTraceback (most recent call last):\n"
                 "  Cell In[3]\nautograder.student_side.CellTimeout: the cell ran past its time limit\n",
                 "x\nTraceback (most recent call last):\n  File a\nKeyError: 1\n", id="the-students-own-traceback-stays"),
    pytest.param("Traceback (most recent call last):\n  x\nKeyError: CellTimeout\n",
                 "Traceback (most recent call last):\n  x\nKeyError: CellTimeout\n", id="a-message-that-names-it"),
    pytest.param("printed only\n", "printed only\n", id="no-traceback"),
])
def test_a_stopped_cell_shows_what_it_printed_without_the_interrupts_traceback(printed, kept):
    from autograder.sandboxautograde import without_timeout_traceback

    assert without_timeout_traceback(printed) == kept


@pytest.mark.slow
def test_a_rerun_regrades_nothing_and_still_shows_the_whole_class(odd_class):
    import io

    from autograder import autograde
    from tests.conftest import TEST_LIMITS

    course = odd_class[0]
    summary = autograde.main(assignment="notebook10", course=course, workers=2, limits=TEST_LIMITS)
    out = io.StringIO()
    autograde.print_summary(summary, stream=out)
    assert summary.graded == [] and sorted(summary.skipped) == ["ada", "copy", "garbled", "loop"]
    assert "graded 0, already graded and unchanged 4" in out.getvalue()
    assert "mean of 4: 7.50 / 10" in out.getvalue() and "timed out (1;" in out.getvalue()
    assert "copy: graded notebook10-Copy1.ipynb (the only notebook in the folder)" in out.getvalue()
