"""The nbgrader front door: real nbgrader, real gradebook; same scores as `autograder grade`."""

import html
import json
import sys

import pytest

from autograder import assignment, engine
from assignments.notebook10 import NOTEBOOK
from tests.conftest import ITEM_CELLS
from tests.conftest import CASES, EXPECTED, TEST_LIMITS, make_class

STUDENTS = {
    "ada": "correct/correct_solution_as_released_success_score_full.ipynb",
    "ben": "bugs/bug_no_padding_score_partial.ipynb",
    "cy": "hostile/hostile_zeros_of_the_right_shape_score_zero_for_blocks.ipynb",
    "dan": "hostile/hostile_exec_compiled_frame_walk_patches_probes_score_blank_release.ipynb",
    "fay": "bugs/bug_setup_functional_typo_score_partial.ipynb",
}
# ben's notebook (no padding): what the catalogue expects, item by item, added up (7 of 10: the main-path
# mistake costs the shapes item only).
BEN_TOTAL = sum(EXPECTED[STUDENTS["ben"]]["expect"].values())


@pytest.fixture(scope="module")
def autograde_run(tmp_path_factory):
    """The class graded by plain `nbgrader autograde`, and what that command printed."""
    course = make_class(tmp_path_factory.mktemp("course"), STUDENTS)
    config = course.config_file.read_text() + (
        f"\nc.GradingConfig.cell_seconds = {TEST_LIMITS.cell_seconds}"
        f"\nc.GradingConfig.submission_seconds = {TEST_LIMITS.submission_seconds}\n")
    course.config_file.write_text(config)
    assignment.add_students(list(STUDENTS), course)
    return course, assignment.autograde(course)


@pytest.fixture(scope="module")
def autograded_course(autograde_run):
    return autograde_run[0]


@pytest.mark.slow
@pytest.mark.xfail(sys.version_info >= (3, 13), strict=True,
                   reason="every SQLAlchemy that imports on Python 3.13 (2.0.31 on) warns; see pyproject.toml")
def test_nbgrader_autograde_prints_no_sqlalchemy_warning(autograde_run):
    # nbgrader 0.9.6 builds each submission in a way SQLAlchemy 2.0.19 and later warn about, once per
    # submission and relationship ("SAWarning: Object of type <SubmittedAssignment> not in session");
    # pyproject.toml pins the last release that does not.
    course, run = autograde_run
    output = run.output
    assert all(f"Autograding {course.autograded(s) / NOTEBOOK}" in output for s in STUDENTS), output[-2000:]
    assert "SAWarning" not in output and "not in session" not in output, output[-4000:]


@pytest.mark.slow
def test_nbgrader_autograde_stores_the_expected_item_scores_in_the_gradebook(autograded_course):
    scores = assignment.gradebook_scores(autograded_course)
    for student, case in STUDENTS.items():
        got = {item: scores[student][cell] for item, cell in ITEM_CELLS.items()}
        assert got == pytest.approx(EXPECTED[case]["expect"], abs=1e-6), student


@pytest.mark.slow
def test_both_front_doors_give_the_same_scores(autograded_course):
    scores = assignment.gradebook_scores(autograded_course)
    cli = engine.grade({s: (CASES / c).read_bytes() for s, c in STUDENTS.items()}, assignment="notebook10", limits=TEST_LIMITS)
    for student in STUDENTS:
        door_one = {cell: scores[student][cell] for cell in ITEM_CELLS.values()}
        door_two = {ITEM_CELLS[item]: score for item, (score, _) in cli[student].item_scores().items()}
        assert door_one == pytest.approx(door_two, abs=1e-6), student


@pytest.mark.slow
def test_the_autograded_notebook_shows_each_check_and_writes_results(autograded_course):
    import nbformat

    nb = nbformat.read(autograded_course.autograded("ben") / NOTEBOOK, as_version=4)
    test_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_residual_block_shapes")
    text = "".join(o.get("text", "") for o in test_cell.outputs)
    assert "residual_block_shapes: 0 of 3 points" in text
    assert "padding=1" in text
    results = json.loads((autograded_course.autograded("ben") / "notebook10.results.json").read_text())
    assert results["score"] == pytest.approx(BEN_TOTAL)


@pytest.mark.slow
def test_feedback_and_export_work_as_usual_and_show_no_grader_code(autograded_course):
    assignment._require(assignment.nbgrader("generate_feedback", "notebook10", course=autograded_course), "feedback")
    page = (autograded_course.feedback("ben") / "notebook10.html").read_text()
    assert "padding=1" in page
    for secret in ("make_block_params", "HIDDEN_CASES", "def test_", "nb10_sandbox"):
        assert secret not in page
    # a cell that stopped is said in words, with the student's line, and no traceback through the grader's
    # or the libraries' files
    assert "[grader] This cell stopped with RuntimeError: The size of tensor a (30)" in page
    assert "It was raised at line 34 of cell `residual_block`: out += self.shortcut(x)" in page
    for internal in ("/site-packages/", "/.venv/", "/grader/", "nb10_sandbox", "Traceback (most recent call last)"):
        assert internal not in page, internal
    # one typo in the setup's imports: the feedback names that line as the cause of what fails after it
    fay = html.unescape((autograded_course.feedback("fay") / "notebook10.html").read_text())
    said = "Cell `setup` stopped with ModuleNotFoundError: No module named 'torch.nn.Functional' at line 14"
    assert said in fay and "fix it first" in fay, [line for line in fay.splitlines() if "stopped" in line][:5]
    # the results.json beside each autograded notebook holds the review reasons: the instructor's only
    handed_back = sorted(p.name for p in (autograded_course.root / "feedback").rglob("*") if p.is_file())
    assert handed_back and not [name for name in handed_back if name.endswith(".results.json")], handed_back
    assignment._require(assignment.nbgrader("export", course=autograded_course), "export")
    csv = (autograded_course.root / "grades.csv").read_text()
    assert f"ben,,,,{BEN_TOTAL:.1f},0.0,{BEN_TOTAL:.1f},10.0" in csv


@pytest.mark.slow
def test_a_submission_marked_for_review_is_flagged_in_the_gradebook_with_the_reasons(autograded_course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{autograded_course.gradebook}") as gb:
        flags = {s: gb.find_submission_notebook("notebook10", "notebook10", s).flagged for s in STUDENTS}
        comments = [c.auto_comment or "" for c in gb.find_submission_notebook("notebook10", "notebook10", "dan").comments]
    assert flags == {s: EXPECTED[c]["review"] for s, c in STUDENTS.items()}
    assert any(c.startswith("Marked for review by the autograder: ") and "frame" in c for c in comments), comments
    import nbformat

    from autograder.results import STUDENT_REVIEW_NOTE

    nb = nbformat.read(autograded_course.autograded("dan") / NOTEBOOK, as_version=4)
    shown = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert STUDENT_REVIEW_NOTE in shown and "frame" not in shown.split(STUDENT_REVIEW_NOTE)[1][:200]


def test_a_library_warning_in_the_feedback_names_its_file_not_where_it_is_installed():
    from autograder.sandboxautograde import INSTALL_PATH

    warning = ("/work/main/.venv/lib/python3.11/site-packages/torch/utils/data/dataloader.py:759: UserWarning: "
               "pin_memory_device is deprecated\n  warnings.warn(\n")
    assert INSTALL_PATH.sub("", warning).startswith("torch/utils/data/dataloader.py:759: UserWarning")
    assert INSTALL_PATH.sub("", "/usr/lib/python3/dist-packages/numpy/x.py:1: W") == "numpy/x.py:1: W"


def test_the_plain_doors_zygote_is_shared_then_closed_once_idle(monkeypatch):
    """Plain `nbgrader autograde` forks each notebook from one zygote, which is closed once unused
    for DOOR_IDLE_SECONDS (formgrader runs autograde inside a server that lives on) and started
    again when needed."""
    import os
    import time

    from autograder import sandboxautograde

    if os.geteuid() != 0:
        pytest.skip("the warm sandbox needs root; as a normal user each notebook runs in a fresh sandbox")
    monkeypatch.setattr(sandboxautograde, "DOOR_IDLE_SECONDS", 0.5)
    try:
        with sandboxautograde.door_pool(False) as pool:
            assert pool is not None and pool.wait_ready()
            zygotes = list(pool._procs)
        with sandboxautograde.door_pool(False) as again:
            assert again is pool  # the next notebook, at once: the same zygote
        time.sleep(2)
        assert all(proc.poll() is not None for proc in zygotes), "an idle zygote was left running"
        with sandboxautograde.door_pool(False) as fresh:
            assert fresh is not pool and fresh is not None
    finally:
        sandboxautograde._close_door_pools()
