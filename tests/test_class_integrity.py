"""One bad folder never stops a class, and nothing outside a submission folder is read or copied.

A class of honest students plus every folder a red team placed under submitted/: a notebook that
is a folder, a FIFO, a symlink to /dev/zero, a symlink to the instructor's source, symlinks
beside a notebook (to /etc/shadow, the gradebook, a neighbour's notebook), a FIFO and a
/dev/zero timestamp.txt beside one, symlinked student and assignment folders, a student folder
named `*`, one whose name is not UTF-8, and an honest `=1+2` (whose export must not be a
formula). Both doors: `autograder autograde` and plain `nbgrader autograde`; then
`nbgrader generate_feedback`. Grading runs in a child process with a time limit (a hang fails the
test instead of hanging the suite) and memory and file-size limits (a read of /dev/zero fails it
instead of filling the machine).
"""

import csv
import io
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from autograder import assignment, export, report
from autograder.course import REPO_ROOT, Course
from assignments.notebook10 import NOTEBOOK
from tests.conftest import ITEM_CELLS
from tests.conftest import CASES, EXPECTED, TEST_LIMITS, copy_course, make_class

CORRECT = "correct/correct_solution_as_released_success_score_full.ipynb"
HONEST = {
    "ada": CORRECT,
    "ben": "bugs/bug_no_padding_score_partial.ipynb",
    "beside": "bugs/bug_fc_one_output_score_partial.ipynb",  # symlinks beside the notebook
    "pipes": "bugs/bug_no_final_relu_score_partial.ipynb",   # a FIFO and a /dev/zero timestamp.txt beside it
    "=1+2": CORRECT,                                          # honest, and its markdown tries script
}
# each refused folder (as the summary names it) -> words its reason must contain
REFUSED = {
    "dirnb": "folder",
    "fifo": "FIFO",
    "zero": "symbolic link",
    "thief": "symbolic link",
    "linkfolder": "symbolic link",
    "linkassign": "symbolic link",
    "*": "glob",
    "bad\\xff": "UTF-8",
}
CANARY = "NEIGHBOUR-CANARY-4f1c9e: only ada's own notebook has this line"
INSTRUCTOR_ONLY = b"STUDENT SEES"  # the source notebook's blank markers; never in a release or a submission
SCRIPT_CELL = ("Some **bold words survive** the sanitiser.\n\n<script>alert(1)</script>\n\n"
               "<img src=x onerror=alert(1)>\n")
TIMEOUT = 600
# Limits for the grading child: a read of /dev/zero fails on memory, a copy of it on file size.
CHILD_DATA_BYTES = 6 << 30
CHILD_FILE_BYTES = 1 << 30

RUN_AUTOGRADE = """
import json, sys
from pathlib import Path
from autograder import autograde, sandbox
from autograder.course import Course
summary = autograde.main(assignment="notebook10", course=Course(Path(sys.argv[1])), workers=2,
                         limits=sandbox.Limits(cell_seconds=float(sys.argv[2]), submission_seconds=float(sys.argv[3])))
autograde.print_summary(summary)
print("SUMMARY " + json.dumps({"graded": summary.graded, "skipped": summary.skipped,
                              "refused": getattr(summary, "refused", None)}))
"""


def _child_limits() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (CHILD_DATA_BYTES, CHILD_DATA_BYTES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (CHILD_FILE_BYTES, CHILD_FILE_BYTES))


def run_guarded(cmd: list[str], course: Course, cwd: Path = REPO_ROOT, timeout: float = TIMEOUT) -> tuple[int, str, str]:
    """Run a grading command in its own session with limits; a hang is killed and fails the test."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=assignment.tool_env(course), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="backslashreplace",
                            start_new_session=True, preexec_fn=_child_limits)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd[:4])} did not finish in {timeout} s (a hang):\n{out[-2000:]}\n{err[-3000:]}")
    return proc.returncode, out, err


def autograde_child(course: Course) -> tuple[int, str, str, dict | None]:
    rc, out, err = run_guarded([sys.executable, "-c", RUN_AUTOGRADE, str(course.root),
                                str(TEST_LIMITS.cell_seconds), str(TEST_LIMITS.submission_seconds)], course)
    lines = [line for line in out.splitlines() if line.startswith("SUMMARY ")]
    return rc, out, err, json.loads(lines[-1][len("SUMMARY "):]) if lines else None


def notebook_with(case: str, markdown: str, dest: Path) -> Path:
    nb = nbformat.read(CASES / case, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    nbformat.write(nb, dest)
    return dest


def build_bad_class(root: Path) -> Course:
    (root / "course").mkdir()
    students = dict(HONEST)
    students["ada"] = notebook_with(CORRECT, CANARY, root / "ada.ipynb")
    students["=1+2"] = notebook_with(CORRECT, SCRIPT_CELL, root / "script.ipynb")
    course = make_class(root / "course", students)
    submitted = course.root / "submitted"

    (course.submitted("dirnb") / NOTEBOOK).mkdir(parents=True)           # a folder in place of the notebook
    course.submitted("fifo").mkdir(parents=True)
    os.mkfifo(course.submitted("fifo") / NOTEBOOK)                        # a FIFO: reading it blocks forever
    course.submitted("zero").mkdir(parents=True)
    os.symlink("/dev/zero", course.submitted("zero") / NOTEBOOK)          # reads forever
    course.submitted("thief").mkdir(parents=True)
    os.symlink(course.source() / NOTEBOOK, course.submitted("thief") / NOTEBOOK)  # the instructor's source

    side = course.submitted("beside")
    os.symlink("/etc/shadow", side / "shadow.txt")
    os.symlink(course.gradebook, side / "gradebook.db")
    os.symlink("../../ada/notebook10/notebook10.ipynb", side / "neighbour.txt")
    os.symlink("../../ada/notebook10/notebook10.ipynb", side / "neighbour.ipynb")
    os.symlink("/etc", side / "etc")                                       # a symlinked folder beside
    pipes = course.submitted("pipes")
    os.mkfifo(pipes / "pipe")
    os.symlink("/dev/zero", pipes / "timestamp.txt")                      # nbgrader reads timestamp.txt

    os.symlink("ada", submitted / "linkfolder")                           # a symlinked student folder
    (submitted / "linkassign").mkdir()
    os.symlink("../ada/notebook10", submitted / "linkassign" / "notebook10")  # a symlinked assignment folder

    for name in (b"*", b"bad\xff"):                                       # a glob, and bytes that are not UTF-8
        folder = os.path.join(bytes(submitted), name, b"notebook10")
        os.makedirs(folder)
        shutil.copy(CASES / CORRECT, os.path.join(folder, NOTEBOOK.encode()))
    return course


def all_files(top: Path):
    """Every entry under top, without following a link."""
    for dirpath, dirnames, filenames in os.walk(bytes(top)):
        for name in dirnames + filenames:
            yield os.path.join(dirpath, name)


def assert_nothing_from_outside(course: Course, tops: list[str]) -> None:
    shadow = Path("/etc/shadow").read_bytes()
    gradebook_head = course.gradebook.read_bytes()[:16]  # "SQLite format 3\0"
    checked = 0
    for top in tops:
        for path in all_files(course.root / top):
            st = os.lstat(path)
            shown = path.decode(errors="backslashreplace")
            assert not stat.S_ISLNK(st.st_mode), f"{shown} is a symbolic link"
            if stat.S_ISDIR(st.st_mode):
                continue
            assert stat.S_ISREG(st.st_mode), f"{shown} is not a regular file"
            data = Path(os.fsdecode(path)).read_bytes()
            checked += 1
            assert shadow not in data and shadow.splitlines()[0] not in data, f"{shown} holds /etc/shadow"
            assert gradebook_head not in data, f"{shown} holds an SQLite database (the gradebook?)"
            assert INSTRUCTOR_ONLY not in data, f"{shown} holds the instructor's source notebook"
            if os.sep.encode() + b"ada" + os.sep.encode() not in path:
                assert CANARY.encode() not in data, f"{shown} holds ada's notebook"
    assert checked > 0


# --- fast: discovery alone, on folders no grading reads ---------------------------------------


def test_discovery_refuses_every_bad_folder_with_a_reason_and_never_blocks(tmp_path):
    from autograder import autograde

    course = copy_course(tmp_path)
    for student in ("ok", "=1+2"):
        course.submitted(student).mkdir(parents=True)
        shutil.copy(CASES / CORRECT, course.submitted(student) / NOTEBOOK)
    (course.submitted("dirnb") / NOTEBOOK).mkdir(parents=True)
    course.submitted("fifo").mkdir(parents=True)
    os.mkfifo(course.submitted("fifo") / NOTEBOOK)
    course.submitted("zero").mkdir(parents=True)
    os.symlink("/dev/zero", course.submitted("zero") / NOTEBOOK)
    course.submitted("big").mkdir(parents=True)
    with open(course.submitted("big") / NOTEBOOK, "wb") as f:
        f.truncate(autograde.MAX_NOTEBOOK_BYTES + 1)
    course.submitted("empty").mkdir(parents=True)                 # an assignment folder without the notebook
    os.symlink("ok", course.root / "submitted" / "linkfolder")
    for name in ("a?", "[x]", " padded", "tab\tin"):
        course.submitted(name).mkdir(parents=True)
        shutil.copy(CASES / CORRECT, course.submitted(name) / NOTEBOOK)
    os.makedirs(os.path.join(bytes(course.root / "submitted"), b"bad\xff", b"notebook10"))
    (course.root / "submitted" / "other").mkdir()                 # a student without this assignment: not listed
    (course.root / "submitted" / "README").write_text("not a student")

    done = threading.Event()
    found = {}

    def run():
        found["value"] = autograde.discover(course, "notebook10")
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(30), "discovery blocked (a FIFO or /dev/zero was opened for reading)"
    submissions, refused = found["value"]
    assert sorted(submissions) == ["=1+2", "ok"]
    reasons = {"dirnb": "folder", "fifo": "FIFO", "zero": "symbolic link", "big": "MB", "empty": "no notebook10.ipynb",
               "linkfolder": "symbolic link", "a?": "glob", "[x]": "glob", "' padded'": "white space",
               "'tab\\tin'": "control character", "bad\\xff": "UTF-8"}
    assert sorted(refused) == sorted(reasons)
    for name, words in reasons.items():
        assert words in refused[name], (name, refused[name])

    summary = autograde.Summary(refused=refused)
    lines = []
    autograde.print_summary(summary, stream=type("S", (), {"write": lambda self, s: lines.append(s)})())
    text = "".join(lines)
    for name in reasons:
        assert f"{name}: not graded: " in text


def test_a_folder_without_the_notebook_has_its_only_notebook_graded_and_any_other_is_listed(tmp_path):
    from autograder import autograde

    course = copy_course(tmp_path)
    placed = {"copy": ["notebook10-Copy1.ipynb"], "resubmitted": ["notebook10-1.ipynb"],
              "checkpoints": ["Notebook 10.ipynb", ".ipynb_checkpoints/notebook10-checkpoint.ipynb"],
              "two": ["notebook10-1.ipynb", "notebook10-2.ipynb"], "none": ["notes.txt"],
              "both": ["notebook10.ipynb", "notebook10-Copy1.ipynb"]}
    for student, names in placed.items():
        for name in names:
            (course.submitted(student) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(CASES / CORRECT, course.submitted(student) / name)
    course.submitted("linked").mkdir(parents=True)
    os.symlink(course.source() / NOTEBOOK, course.submitted("linked") / "mine.ipynb")
    course.submitted("piped").mkdir(parents=True)
    os.mkfifo(course.submitted("piped") / "mine.ipynb")
    (course.submitted("folder") / "mine.ipynb").mkdir(parents=True)

    submissions, refused = autograde.discover(course, "notebook10")
    assert {s: p.name for s, p in submissions.items()} == {
        "copy": "notebook10-Copy1.ipynb", "resubmitted": "notebook10-1.ipynb", "checkpoints": "Notebook 10.ipynb",
        "both": NOTEBOOK}
    reasons = {"two": "2 notebooks", "none": "no notebook", "linked": "symbolic link", "piped": "FIFO",
               "folder": "folder"}
    assert sorted(refused) == sorted(reasons)
    for name, words in reasons.items():
        assert words in refused[name], (name, refused[name])
    assert "notebook10-1.ipynb, notebook10-2.ipynb" in refused["two"]
    assert "mine.ipynb" in refused["linked"]

    summary = autograde.Summary(refused=refused, graded=["copy"], other_notebook={"copy": "notebook10-Copy1.ipynb"})
    text = io.StringIO()
    autograde.print_summary(summary, stream=text)
    assert "copy: graded notebook10-Copy1.ipynb (the only notebook in the folder)" in text.getvalue()


def test_reading_a_notebook_never_follows_a_link_nor_blocks(tmp_path):
    from autograder import autograde

    (tmp_path / "ok.ipynb").write_bytes(b"{}")
    assert autograde.read_submission(tmp_path / "ok.ipynb") == b"{}"
    os.mkfifo(tmp_path / "fifo")
    os.symlink("/dev/zero", tmp_path / "zero")
    os.symlink(tmp_path / "ok.ipynb", tmp_path / "link")
    for name in ("fifo", "zero", "link"):
        with pytest.raises(autograde.Refused):
            autograde.read_submission(tmp_path / name)


def test_exports_neutralise_cells_a_spreadsheet_would_run_as_a_formula():
    students = [report.StudentRecord("=1+2", {"a": 1.0}), report.StudentRecord("+cmd", {"a": 1.0}),
                report.StudentRecord("-2+3", {"a": 1.0}), report.StudentRecord("x", {"a": 1.0}),
                report.StudentRecord("plain", {"a": 0.5})]
    record = report.ClassRecord("notebook10", ["a"], {"a": 1.0}, students)
    # what nbgrader's student table (or a roster) can say about them, written by the students' side
    table = {"-2+3": export.Person("-2+3", email="@SUM(A1)"), "x": export.Person("x", name="\r=2, \t=1", canvas_id="=3")}
    who = export.people(record, None, table)
    canvas = export.canvas_rows(record, who, columns="both")
    assert canvas[1][0] == export.CANVAS_POINTS_ROW
    assert canvas[2][:4] == ["'=1+2", "", "", "'=1+2"]
    assert canvas[3][3] == "'+cmd"
    assert canvas[5][:4] == ["'\r=2, \t=1", "'=3", "", ""]
    assert canvas[6][:4] == ["plain", "", "", "plain"]
    assert canvas[6][5:] == ["0.5", "0.5"]                    # numbers stay numbers
    moodle = export.moodle_rows(record, who)
    assert moodle[1][0] == "'=1+2" and moodle[3][:2] == ["'-2+3", "'@SUM(A1)"]
    for row in canvas[2:] + moodle[1:]:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r", row


# --- slow: the whole class through both doors --------------------------------------------------


@pytest.fixture(scope="module")
def bad_class(tmp_path_factory):
    course = build_bad_class(tmp_path_factory.mktemp("integrity"))
    rc, out, err, summary = autograde_child(course)
    return course, rc, out, err, summary


@pytest.fixture(scope="module")
def feedback(bad_class):
    course = bad_class[0]
    run = assignment.nbgrader("generate_feedback", "notebook10", course=course, timeout=TIMEOUT)
    return course, run


def item_scores(course):
    scores = assignment.gradebook_scores(course)
    return {s: {item: scores[s][cell] for item, cell in ITEM_CELLS.items()} for s in scores}


@pytest.mark.slow
def test_every_honest_student_is_graded_and_every_bad_folder_is_listed_with_its_reason(bad_class):
    course, rc, out, err, summary = bad_class
    assert rc == 0 and summary is not None, f"{out[-2000:]}\n{err[-4000:]}"
    assert sorted(summary["graded"]) == sorted(HONEST)
    assert sorted(summary["refused"]) == sorted(REFUSED)
    for name, words in REFUSED.items():
        assert words in summary["refused"][name], (name, summary["refused"][name])
        assert f"{name}: not graded: " in out
    scores = item_scores(course)
    assert sorted(scores) == sorted(HONEST)       # nothing recorded for a refused folder (not even `*`)
    for student, case in HONEST.items():
        assert scores[student] == pytest.approx(EXPECTED[case]["expect"], abs=1e-6), student
    for student in HONEST:                        # each keeps its own resume hash
        results = json.loads(course.results(student).read_text())
        assert results["extra_data"]["submission_sha256"], student


@pytest.mark.slow
def test_nothing_from_outside_a_submission_folder_reaches_autograded_or_feedback(feedback):
    course, run = feedback
    assert run.ok, run.output[-4000:]
    for student in REFUSED:
        assert not (course.root / "autograded" / student).exists(), student
    assert sorted(os.listdir(course.root / "feedback")) == sorted(HONEST)
    for name in ("shadow.txt", "gradebook.db", "neighbour.txt", "neighbour.ipynb", "etc"):
        assert not os.path.lexists(course.autograded("beside") / name), name
        assert not os.path.lexists(course.feedback("beside") / name), name
    assert not os.path.lexists(course.autograded("pipes") / "pipe")
    assert_nothing_from_outside(course, ["autograded", "feedback"])


@pytest.mark.slow
def test_the_feedback_page_has_no_script_from_a_submission_but_keeps_its_formatting(feedback):
    course, run = feedback
    assert run.ok, run.output[-4000:]
    page = (course.feedback("=1+2") / "notebook10.html").read_text()
    assert "<strong>bold words survive</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert not re.search(r"<[^>]*\sonerror\s*=", page, re.IGNORECASE)   # no tag with the handler
    assert "onerror=alert" not in page                                   # nor its text, escaped or not
    assert "alert(1)" not in page.replace("&lt;script&gt;alert(1)&lt;/script&gt;", "")
    ada = (course.feedback("ada") / "notebook10.html").read_text()
    assert "residual_block_shapes: 3 of 3 points" in ada  # the grader's lines are still there
    assert re.search(r'<img [^>]*src="residual_block.png"', ada)  # and the notebook's diagrams
    assert "<h1" in ada and "<code>" in ada


@pytest.mark.slow
def test_the_exports_of_the_class_neutralise_the_formula_student(feedback, tmp_path):
    course, _ = feedback
    export.main(assignment="notebook10", fmt="canvas", out=tmp_path / "canvas.csv", course=course)
    export.main(assignment="notebook10", fmt="moodle", out=tmp_path / "moodle.csv", course=course)
    canvas = list(csv.reader((tmp_path / "canvas.csv").open(newline="")))[1:]  # (after the Points Possible row)
    moodle = list(csv.reader((tmp_path / "moodle.csv").open(newline="")))
    assert sorted(r[3] for r in canvas[1:]) == sorted(["'=1+2", *(s for s in HONEST if s != "=1+2")])
    row = next(r for r in canvas[1:] if r[3] == "'=1+2")
    assert row[0] == "'=1+2" and float(row[5]) == pytest.approx(10.0)
    assert "'=1+2" in [r[0] for r in moodle[1:]]


@pytest.mark.slow
def test_a_rerun_completes_and_regrades_nothing(feedback):
    course, _ = feedback
    rc, out, err, summary = autograde_child(course)
    assert rc == 0 and summary is not None, f"{out[-2000:]}\n{err[-4000:]}"
    assert summary["graded"] == []
    assert sorted(summary["skipped"]) == sorted(HONEST)
    assert sorted(summary["refused"]) == sorted(REFUSED)


# --- slow: the plain nbgrader door, with this repository's nbgrader_config.py -----------------

DOOR = {"ada": CORRECT, "side": "bugs/bug_no_padding_score_partial.ipynb"}


def grade_through_nbgrader(root: Path):
    """A class graded by plain `nbgrader autograde` then `nbgrader generate_feedback`, run in the
    course directory with its nbgrader_config.py: ada, side (links and a FIFO beside the
    notebook), thief (a symlinked notebook), `*` (a glob) and copy (notebook10-Copy1.ipynb)."""
    course = make_class(root, {**DOOR, "ada": notebook_with(CORRECT, CANARY, root / "ada.ipynb")})
    course.config_file.write_text(course.config_file.read_text() + (
        f"\nc.GradingConfig.cell_seconds = {TEST_LIMITS.cell_seconds}"
        f"\nc.GradingConfig.submission_seconds = {TEST_LIMITS.submission_seconds}\n"))
    side = course.submitted("side")
    os.symlink("/etc/shadow", side / "shadow.txt")
    os.symlink(course.gradebook, side / "gradebook.db")
    os.symlink("../../ada/notebook10/notebook10.ipynb", side / "neighbour.txt")
    os.mkfifo(side / "pipe")
    course.submitted("thief").mkdir(parents=True)
    os.symlink(course.source() / NOTEBOOK, course.submitted("thief") / NOTEBOOK)
    course.submitted("*").mkdir(parents=True)
    shutil.copy(CASES / CORRECT, course.submitted("*") / NOTEBOOK)
    course.submitted("copy").mkdir(parents=True)
    shutil.copy(CASES / CORRECT, course.submitted("copy") / "notebook10-Copy1.ipynb")
    assignment.add_students([*DOOR, "thief", "copy"], course)
    graded = run_guarded([sys.executable, "-m", "nbgrader", "autograde", "notebook10"], course, cwd=course.root)
    feedback = run_guarded([sys.executable, "-m", "nbgrader", "generate_feedback", "notebook10"], course,
                           cwd=course.root)
    return course, graded, feedback


@pytest.fixture(scope="module")
def nbgrader_door(tmp_path_factory):
    return grade_through_nbgrader(tmp_path_factory.mktemp("door"))


@pytest.mark.slow
def test_plain_nbgrader_autograde_refuses_a_symlinked_notebook_and_copies_no_link(nbgrader_door):
    course, (rc, out, err), (frc, fout, ferr) = nbgrader_door
    log = out + err
    assert "thief" in log and "symbolic link" in log, log[-4000:]
    assert "glob character" in log, log[-4000:]
    assert re.search(r"Not processing .*copy.*: no notebook10\.ipynb in it \(it holds notebook10-Copy1\.ipynb\).*"
                     r"autograder autograde", log), log[-4000:]
    assert rc != 0  # as nbgrader does for a submission it could not process: the others are still graded
    scores = item_scores(course)
    assert sorted(scores) == sorted(DOOR), log[-4000:]
    for student, case in DOOR.items():
        assert scores[student] == pytest.approx(EXPECTED[case]["expect"], abs=1e-6), student
    assert frc == 0, (fout + ferr)[-4000:]
    assert not (course.root / "autograded" / "thief").exists()
    assert not (course.root / "autograded" / "copy").exists()
    for name in ("shadow.txt", "gradebook.db", "neighbour.txt", "pipe"):
        assert not os.path.lexists(course.autograded("side") / name), name
        assert not os.path.lexists(course.feedback("side") / name), name
    assert_nothing_from_outside(course, ["autograded", "feedback"])
