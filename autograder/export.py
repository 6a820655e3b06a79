"""`autograder export ASSIGNMENT --format canvas|moodle|gradescope --out PATH`: grades for an LMS.

Scores come from nbgrader's gradebook (manual grades included), as in `autograder report`.
`nbgrader export` is untouched and still writes nbgrader's own CSV.

* ``canvas``: a CSV for Canvas's gradebook import (Grades > Import), in the layout of Canvas's
  own gradebook export: ``Student, ID, SIS User ID, SIS Login ID, Section``, then the grade
  columns, and as its second row ``Points Possible`` with each column's maximum (Canvas gives a
  new assignment those points). Canvas finds each student by ``ID`` (its numeric user id) or the
  SIS ids, which come from ``--roster`` or nbgrader's student table (``lms_user_id`` into ``ID``);
  a student for whom neither gives a Canvas id gets the nbgrader id as ``SIS Login ID``.
* ``moodle``: a CSV for Moodle's grade import (Grades > Import > CSV file): ``Username`` (the
  roster's username, else the nbgrader id) and ``Email address`` (the roster's, else nbgrader's
  student table), then the grade columns. In Moodle's mapping step choose "Map from: Email
  address" to "Map to: useremail" (or Username to username), and map each grade column.
* ``gradescope``: a folder with ``STUDENT/results.json`` for each student, copied unchanged from
  the autograded folder. These are Gradescope's *autograder results* format: for Gradescope's API
  or an autograder bundle, not a file Gradescope's web pages import.

Grade columns (``--columns``, CSVs only): ``total`` (the default: one column ``ASSIGNMENT``, one
LMS assignment), ``items`` (a column ``ASSIGNMENT: item`` per graded part) or ``both``. An LMS
makes a grade item of every column it does not know, so ``both`` counts the points twice unless
only one kind is imported.

Students the roster or nbgrader's student table knows but the gradebook has no grade for, and
submitted folders that were not graded (``autograde.ungraded``), are listed (``Exported.absent``).

In the CSVs a text cell that a spreadsheet would read as a formula (one starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, such as a student id ``=1+2``) gets a leading
``'`` (OWASP's rule against CSV injection); the grade cells are numbers and stay as they are.
Such a student's id then no longer matches the LMS's: fix that row by hand before importing.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path

from autograder import report
from autograder.course import COURSE, Course

FORMATS = ("canvas", "moodle", "gradescope")
COLUMNS = ("total", "items", "both")
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS_ROW = "Points Possible"
MOODLE_IDENTITY = ["Username", "Email address"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
GRADESCOPE_NOTE = ("These results.json files are Gradescope's autograder results format: for Gradescope's API "
                   "or an autograder bundle's results, not for upload on Gradescope's web pages (which import "
                   "no results.json).")

# --roster CSV headers, compared without case and with "_" or "-" read as a space -> Person field.
ROSTER_HEADERS = {
    "student id": "student", "nbgrader id": "student", "nbgrader student id": "student",
    "canvas id": "canvas_id", "canvas user id": "canvas_id", "lms user id": "canvas_id",
    "sis user id": "sis_user_id",
    "sis login id": "sis_login_id",
    "section": "section",
    "email": "email", "email address": "email",
    "username": "username",
    "name": "name",
}
ROSTER_NO_STUDENT = ("--roster {path}: no column for the nbgrader student id; name it student_id (or nbgrader_id). "
                     "Its columns: {found}.")
ROSTER_UNKNOWN = ("--roster {path}: unknown column(s) {unknown}; the columns it may have: {accepted} "
                  "(any case, _ or - for a space).")
ROSTER_TWICE = "--roster {path}: columns {names} say the same thing ({what}); keep one."
ROSTER_BLANK_ID = "--roster {path}: line {line} has no student id."
ROSTER_DUPLICATE = "--roster {path}: student {student!r} is on lines {lines}; keep one row per student."


class ExportError(RuntimeError):
    """The export cannot be made; the message says what is missing and what to do."""


@dataclass
class Person:
    """Who a student is in the LMS: from --roster, else nbgrader's student table."""

    student: str
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    email: str = ""
    username: str = ""
    name: str = ""


@dataclass
class Exported:
    written: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # students with nothing to export (gradescope)
    differs: list[str] = field(default_factory=list)  # gradebook differs from results.json (gradescope)
    absent: dict[str, str] = field(default_factory=dict)  # known or submitted but no grade exported -> why
    not_in_roster: list[str] = field(default_factory=list)  # graded, but --roster does not list them
    no_email: list[str] = field(default_factory=list)  # moodle rows without an email address


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet will not run: OWASP's CSV-injection rule, a leading single quote
    before a cell that starts like a formula."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def _text(cells: list[str]) -> list[str]:
    return [neutralise(cell) for cell in cells]


def _num(value: float) -> str:
    return f"{round(value, 4):g}"


def _header_key(header: str) -> str:
    return " ".join(header.strip().lower().replace("_", " ").replace("-", " ").split())


def read_roster(path: Path) -> dict[str, Person]:
    """nbgrader student id -> Person, from a CSV whose headers are ROSTER_HEADERS' (see the module doc)."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:  # -sig: Excel's byte-order mark
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ExportError(f"--roster {path}: cannot be read ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise ExportError(f"--roster {path}: is not UTF-8 text; save it as CSV UTF-8.") from None
    header = rows[0] if rows else []
    unknown = [h for h in header if _header_key(h) not in ROSTER_HEADERS]
    if unknown:
        raise ExportError(ROSTER_UNKNOWN.format(path=path, unknown=", ".join(map(repr, unknown)),
                                                accepted=", ".join(ROSTER_HEADERS)))
    columns = [ROSTER_HEADERS[_header_key(h)] for h in header]
    if "student" not in columns:
        raise ExportError(ROSTER_NO_STUDENT.format(path=path, found=", ".join(header) or "none"))
    for what in set(columns):
        if columns.count(what) > 1:
            same = [h for h, c in zip(header, columns) if c == what]
            raise ExportError(ROSTER_TWICE.format(path=path, names=", ".join(same), what=what))
    people: dict[str, Person] = {}
    lines: dict[str, list[int]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {c: v.strip() for c, v in zip(columns, row)}
        if not values.get("student"):
            raise ExportError(ROSTER_BLANK_ID.format(path=path, line=line))
        people[values["student"]] = Person(**values)
        lines.setdefault(values["student"], []).append(line)
    for student, at in lines.items():
        if len(at) > 1:
            raise ExportError(ROSTER_DUPLICATE.format(path=path, student=student, lines=", ".join(map(str, at))))
    return people


def _student_table(course: Course, db_url: str | None) -> dict[str, Person]:
    """nbgrader's own student table (`nbgrader db student add/import`), as Persons."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url or f"sqlite:///{course.gradebook}") as gb:
        return {s.id: Person(s.id, canvas_id=s.lms_user_id or "", email=s.email or "",
                             name=", ".join(p for p in (s.last_name, s.first_name) if p))
                for s in gb.students}


def people(record: report.ClassRecord, roster: dict[str, Person] | None, table: dict[str, Person]) -> dict[str, Person]:
    """Each graded student's identity: the roster's value where it has one, else the student table's."""
    out = {}
    for s in record.students:
        known, listed = table.get(s.student, Person(s.student)), (roster or {}).get(s.student)
        if listed is not None:
            known = Person(**{f.name: getattr(listed, f.name) or getattr(known, f.name) for f in fields(Person)})
        out[s.student] = known
    return out


def grade_columns(record: report.ClassRecord, columns: str = "total") -> list[str]:
    total = [record.assignment] if columns in ("total", "both") else []
    return total + ([f"{record.assignment}: {item}" for item in record.items] if columns != "total" else [])


def _grades(record: report.ClassRecord, values: dict[str, float], total: float, columns: str) -> list[str]:
    return [_num(v) for v in ([total] if columns != "items" else [])
            + ([values[item] for item in record.items] if columns != "total" else [])]


def canvas_rows(record: report.ClassRecord, who: dict[str, Person], columns: str = "total") -> list[list[str]]:
    rows = [_text(CANVAS_IDENTITY + grade_columns(record, columns)),
            [CANVAS_POINTS_ROW, "", "", "", ""] + _grades(record, record.max_scores, record.max_total, columns)]
    for s in record.students:
        p = who[s.student]
        login = p.sis_login_id or ("" if p.canvas_id or p.sis_user_id else s.student)
        rows.append(_text([p.name or s.student, p.canvas_id, p.sis_user_id, login, p.section])
                    + _grades(record, s.scores, s.total, columns))
    return rows


def moodle_rows(record: report.ClassRecord, who: dict[str, Person], columns: str = "total") -> list[list[str]]:
    rows = [_text(MOODLE_IDENTITY + grade_columns(record, columns))]
    for s in record.students:
        p = who[s.student]
        rows.append(_text([p.username or s.student, p.email]) + _grades(record, s.scores, s.total, columns))
    return rows


def _write_csv(rows: list[list[str]], out: Path) -> Path:
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder; give the CSV file to write, e.g. {out / 'grades.csv'}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return out


def _gradescope(record: report.ClassRecord, out: Path) -> Exported:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a folder for the results.json files.")
    done = Exported()
    for s in record.students:
        if s.results is None or s.results_path is None:
            done.missing.append(s.student)
            continue
        target = out / s.student / "results.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s.results_path, target)
        done.written.append(target)
        items = s.results.get("extra_data", {}).get("items", {})
        if any(abs(s.scores.get(item, 0.0) - v.get("score", 0.0)) > 1e-6 for item, v in items.items()):
            done.differs.append(s.student)
    return done


def absent(course: Course, assignment: str, record: report.ClassRecord, known: set[str]) -> dict[str, str]:
    """Students with no exported grade -> why: submitted folders that were not graded, and students
    the roster or nbgrader's student table lists whom the gradebook has no grade for."""
    from autograder.autograde import ungraded  # imports the engine: only when exporting

    graded = {s.student for s in record.students}
    why = {name: reason for name, reason in ungraded(course, assignment).items() if name not in graded}
    for student in sorted(known - graded - set(why)):
        why[student] = f"no grade in the gradebook (nothing submitted under submitted/{student}/{assignment}?)"
    return dict(sorted(why.items()))


def main(*, assignment: str, fmt: str, out: Path, course: Course = COURSE, db_url: str | None = None,
         columns: str | None = None, roster: Path | None = None) -> Exported:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if columns is not None and (fmt == "gradescope" or columns not in COLUMNS):
        raise ExportError(f"--columns {columns} is for canvas and moodle, and is one of {', '.join(COLUMNS)}.")
    listed = read_roster(roster) if roster is not None else None
    try:
        record = report.load(course, assignment, db_url)
    except report.ReportError as exc:
        raise ExportError(str(exc)) from None
    table = _student_table(course, db_url)
    out = Path(out)
    if fmt == "gradescope":
        done = _gradescope(record, out)
    else:
        who = people(record, listed, table)
        make = canvas_rows if fmt == "canvas" else moodle_rows
        done = Exported(written=[_write_csv(make(record, who, columns or "total"), out)])
        if fmt == "moodle" and any(p.email for p in who.values()):
            done.no_email = sorted(s for s, p in who.items() if not p.email)
    if listed is not None:
        done.not_in_roster = sorted(s.student for s in record.students if s.student not in listed)
    done.absent = absent(course, assignment, record, set(table) | set(listed or ()))
    return done
