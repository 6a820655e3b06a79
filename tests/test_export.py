"""`autograder export`: files an LMS imports, with identities from a roster or nbgrader's student table,
on a really graded class (tests/test_report.py checks the scores on a larger one)."""

import csv
import os
import shutil

import pytest

from autograder import assignment, autograde, cli, export
from tests.conftest import ITEM_CELLS
from tests.conftest import EXPECTED

ITEMS = list(ITEM_CELLS)
POINTS = ["3", "3", "2", "2"]
CLASS = {
    "ada": "correct/correct_solution_as_released_success_score_full.ipynb",
    "ben": "bugs/bug_no_padding_score_partial.ipynb",
}
BEN = EXPECTED[CLASS["ben"]]["expect"]
ROSTER = [
    ["Student_ID", "Canvas ID", "SIS Login ID", "Section", "Email", "Name"],
    ["ada", "2001", "ada.l", "Lab A", "ada@roster.example", "Lovelace, Ada"],
    ["ben", "", "ben.b", "Lab B", "ben@roster.example", ""],
    ["yan", "2003", "yan.y", "Lab A", "yan@roster.example", "Yan, Yu"],  # no submission
]
MAL_REASON = "the student folder is a symbolic link"


def write_csv(path, rows):
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def read_csv(path):
    with path.open(newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """ada and ben graded by `autograder autograde`; mal's folder is a link (refused, not graded);
    nbgrader's student table knows ada's name, email and lms_user_id, and zoe, who sent nothing."""
    from nbgrader.api import Gradebook

    from tests.conftest import make_class

    course = make_class(tmp_path_factory.mktemp("course"), CLASS)
    os.symlink(course.submitted("ada").parent, course.submitted("mal").parent)
    autograde.main(assignment="notebook10", course=course, workers=2)
    with Gradebook(f"sqlite:///{course.gradebook}") as gb:
        gb.update_or_create_student("ada", first_name="Ada", last_name="Lovelace", email="ada@uni.example",
                                    lms_user_id="1001")
        gb.update_or_create_student("zoe", email="zoe@uni.example")
    return course


def export_cli(course, *args):
    return cli.main(["export", "notebook10", "--course", str(course.root), *args])


# --- fast: the roster, read from real files -------------------------------------------------


@pytest.mark.parametrize("header, message", [
    pytest.param(["Student", "ID", "SIS Login ID"], "unknown column(s) 'Student', 'ID'", id="canvas-s-own-headers"),
    pytest.param(["Email", "Section"], "no column for the nbgrader student id; name it student_id", id="no-student-id"),
    pytest.param(["student_id", "email", "Email Address"], "columns email, Email Address say the same thing",
                 id="two-email-columns"),
])
def test_a_roster_with_headers_it_does_not_know_names_them(tmp_path, header, message):
    path = write_csv(tmp_path / "roster.csv", [header, ["x"] * len(header)])
    with pytest.raises(export.ExportError) as caught:
        export.read_roster(path)
    assert message in str(caught.value)
    if "unknown" in message:
        assert "student id, nbgrader id" in str(caught.value) and "sis login id" in str(caught.value)


def test_a_roster_names_the_line_of_a_blank_or_repeated_student(tmp_path):
    blank = write_csv(tmp_path / "blank.csv", [["student_id", "email"], ["ada", "a@x"], ["", "b@x"]])
    with pytest.raises(export.ExportError, match="line 3 has no student id"):
        export.read_roster(blank)
    twice = write_csv(tmp_path / "twice.csv", [["student_id", "email"], ["ada", "a@x"], [], ["ada", "b@x"]])
    with pytest.raises(export.ExportError, match="student 'ada' is on lines 2, 4"):
        export.read_roster(twice)


def test_a_roster_reads_excel_s_byte_order_mark_and_any_header_spelling(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeffNBGRADER-ID,lms_user_id,SIS_User_ID\r\nada,77,S1\r\n".encode())
    assert export.read_roster(path) == {"ada": export.Person("ada", canvas_id="77", sis_user_id="S1")}


def test_columns_is_refused_for_gradescope_before_reading_anything(tmp_path):
    with pytest.raises(export.ExportError, match="--columns items is for canvas and moodle"):
        export.main(assignment="notebook10", fmt="gradescope", out=tmp_path / "gs", columns="items")


# --- slow: a real class, graded by autograde ----------------------------------------------


@pytest.mark.slow
def test_canvas_gets_the_total_with_its_points_possible_and_the_student_table_s_ids(graded, tmp_path, capsys):
    out = tmp_path / "canvas.csv"
    assert export_cli(graded, "--format", "canvas", "--out", str(out)) == 3
    rows = read_csv(out)
    assert rows[:2] == [export.CANVAS_IDENTITY + ["notebook10"], ["Points Possible", "", "", "", "", "10"]]
    by_name = {r[0]: r for r in rows[2:]}
    assert by_name["Lovelace, Ada"] == ["Lovelace, Ada", "1001", "", "", "", "10"]
    assert by_name["ben"] == ["ben", "", "", "ben", "", f"{sum(BEN.values()):g}"]
    assert len(rows) == 4
    err = capsys.readouterr().err
    assert "no grade exported for 2 student(s)" in err
    assert f"  mal: {MAL_REASON}" in err
    assert "  zoe: no grade in the gradebook" in err


@pytest.mark.slow
@pytest.mark.parametrize("columns, header, points", [
    pytest.param("items", [f"notebook10: {i}" for i in ITEMS], POINTS, id="items"),
    pytest.param("both", ["notebook10", *(f"notebook10: {i}" for i in ITEMS)], ["10", *POINTS], id="both"),
])
def test_canvas_gets_the_items_with_their_points_possible_when_asked(graded, tmp_path, columns, header, points):
    out = tmp_path / "canvas.csv"
    assert export_cli(graded, "--format", "canvas", "--out", str(out), "--columns", columns) == 3
    rows = read_csv(out)
    assert rows[0][5:] == header and rows[1][5:] == points
    gradebook = assignment.gradebook_scores(graded)
    ben = next(r for r in rows if r[3] == "ben")
    items = [gradebook["ben"][ITEM_CELLS[i]] for i in ITEMS]
    assert [float(v) for v in ben[5:]] == pytest.approx(([sum(items)] if columns == "both" else []) + items)


@pytest.mark.slow
def test_the_roster_gives_canvas_its_ids_and_its_students_without_a_grade_are_listed(graded, tmp_path, capsys):
    roster = write_csv(tmp_path / "students.csv", ROSTER)
    out = tmp_path / "canvas.csv"
    assert export_cli(graded, "--format", "canvas", "--out", str(out), "--roster", str(roster)) == 3
    rows = read_csv(out)
    assert rows[2:] == [["Lovelace, Ada", "2001", "", "ada.l", "Lab A", "10"],
                        ["ben", "", "", "ben.b", "Lab B", f"{sum(BEN.values()):g}"]]
    err = capsys.readouterr().err
    assert "no grade exported for 3 student(s)" in err
    assert "  yan: no grade in the gradebook" in err and "  zoe: " in err and f"  mal: {MAL_REASON}" in err
    assert "not on the roster" not in err


@pytest.mark.slow
def test_a_graded_student_missing_from_the_roster_is_named_and_keeps_the_nbgrader_id(graded, tmp_path, capsys):
    roster = write_csv(tmp_path / "students.csv", ROSTER[:2])
    out = tmp_path / "canvas.csv"
    assert export_cli(graded, "--format", "canvas", "--out", str(out), "--roster", str(roster)) == 3
    assert read_csv(out)[3][:4] == ["ben", "", "", "ben"]
    assert cli.EXPORT_NOT_IN_ROSTER.format(students="ben") in capsys.readouterr().err


@pytest.mark.slow
def test_moodle_gets_emails_from_the_roster_else_the_student_table(graded, tmp_path, capsys):
    out = tmp_path / "moodle.csv"
    assert export_cli(graded, "--format", "moodle", "--out", str(out)) == 3
    assert read_csv(out) == [["Username", "Email address", "notebook10"],
                             ["ada", "ada@uni.example", "10"], ["ben", "", f"{sum(BEN.values()):g}"]]
    assert cli.EXPORT_NO_EMAIL.format(students="ben") in capsys.readouterr().err
    roster = write_csv(tmp_path / "students.csv", [["student_id", "email", "username"],
                                                   ["ada", "", "alovelace"], ["ben", "ben@roster.example", ""]])
    assert export_cli(graded, "--format", "moodle", "--out", str(out), "--roster", str(roster)) == 3
    assert [r[:2] for r in read_csv(out)[1:]] == [["alovelace", "ada@uni.example"], ["ben", "ben@roster.example"]]
    assert "no email" not in capsys.readouterr().err


@pytest.mark.slow
def test_gradescope_says_its_results_json_are_not_for_upload(graded, tmp_path, capsys):
    out = tmp_path / "gs"
    assert export_cli(graded, "--format", "gradescope", "--out", str(out)) == 3
    assert sorted(p.name for p in out.iterdir()) == sorted(CLASS)
    said = capsys.readouterr().out
    assert export.GRADESCOPE_NOTE in said and "not for upload" in said and "API" in said


@pytest.mark.slow
def test_a_class_with_everyone_graded_exports_with_status_zero(graded, tmp_path, capsys):
    from nbgrader.api import Gradebook

    course = type(graded)(tmp_path / "course")
    shutil.copytree(graded.root, course.root, symlinks=True)
    course.submitted("mal").parent.unlink()
    with Gradebook(f"sqlite:///{course.gradebook}") as gb:
        gb.remove_student("zoe")
    roster = write_csv(tmp_path / "students.csv", ROSTER[:3])
    assert export_cli(course, "--format", "canvas", "--out", str(tmp_path / "c.csv"), "--roster", str(roster)) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_a_bad_roster_stops_the_export_with_status_two_and_writes_nothing(graded, tmp_path, capsys):
    roster = write_csv(tmp_path / "students.csv", [["Student", "ID"], ["Ada", "1"]])
    out = tmp_path / "c.csv"
    assert export_cli(graded, "--format", "canvas", "--out", str(out), "--roster", str(roster)) == 2
    assert "autograder export: --roster" in capsys.readouterr().err and not out.exists()
    assert export_cli(graded, "--format", "canvas", "--out", str(out), "--roster", str(tmp_path / "none.csv")) == 2
    assert "cannot be read" in capsys.readouterr().err
