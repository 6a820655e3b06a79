"""`autograder export ASSIGNMENT --format canvas|moodle|gradescope --out PATH`: grades for an LMS.

Scores come from nbgrader's gradebook (manual grades included), as in `autograder report`.
`nbgrader export` is untouched and still writes nbgrader's own CSV.

* ``canvas``: a CSV in the layout of Canvas's gradebook export, which its gradebook import
  reads back: ``Student, ID, SIS User ID, SIS Login ID, Section``, then one column per
  assignment. The nbgrader student id goes into ``SIS Login ID`` (Canvas matches students on
  it), the gradebook's name into ``Student`` (``Last, First``; the id when there is no name) and
  its ``lms_user_id``, where set, into ``ID``. The total is the column ``ASSIGNMENT`` and each item
  a column ``ASSIGNMENT: item``; on import Canvas creates an assignment for each column it does
  not know, so import either the total or the items, not both, unless you want both.
* ``moodle``: a CSV for Moodle's grade import (Grades > Import > CSV file): ``Username`` and
  ``Email address`` to identify the student (choose "Map from: Username" to "Map to: username",
  or the email column to "useremail"), then ``ASSIGNMENT`` (the total) and ``ASSIGNMENT: item``,
  each mapped to a grade item or to "new grade item" in Moodle's mapping step.
* ``gradescope``: a folder with ``STUDENT/results.json`` for each student, copied unchanged
  from the autograded folder (Gradescope's results format, the autograder's own scores).

In the CSVs a text cell that a spreadsheet would read as a formula (one starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, such as a student id ``=1+2``) gets a leading
``'`` (OWASP's rule against CSV injection); the grade cells are numbers and stay as they are.
Such a student's id then no longer matches the LMS's: fix that row by hand before importing.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from autograder import report
from autograder.course import COURSE, Course

FORMATS = ("canvas", "moodle", "gradescope")
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDENTITY = ["Username", "Email address"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(RuntimeError):
    """The export cannot be made; the message says what is missing and what to do."""


@dataclass
class Exported:
    written: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # students with nothing to export (gradescope)
    differs: list[str] = field(default_factory=list)  # gradebook differs from results.json (gradescope)


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet will not run: OWASP's CSV-injection rule, a leading single quote
    before a cell that starts like a formula."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def _text(cells: list[str]) -> list[str]:
    return [neutralise(cell) for cell in cells]


def _num(value: float) -> str:
    return f"{round(value, 4):g}"


def grade_columns(record: report.ClassRecord) -> list[str]:
    return [record.assignment, *(f"{record.assignment}: {item}" for item in record.items)]


def _grades(record: report.ClassRecord, student: report.StudentRecord) -> list[str]:
    return [_num(student.total), *(_num(student.scores[item]) for item in record.items)]


def canvas_rows(record: report.ClassRecord) -> list[list[str]]:
    rows = [_text(CANVAS_IDENTITY + grade_columns(record))]
    for s in record.students:
        name = ", ".join(p for p in (s.last_name, s.first_name) if p) or s.student
        rows.append(_text([name, s.lms_user_id or "", "", s.student, ""]) + _grades(record, s))
    return rows


def moodle_rows(record: report.ClassRecord) -> list[list[str]]:
    rows = [_text(MOODLE_IDENTITY + grade_columns(record))]
    for s in record.students:
        rows.append(_text([s.student, s.email or ""]) + _grades(record, s))
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


def main(*, assignment: str, fmt: str, out: Path, course: Course = COURSE, db_url: str | None = None) -> Exported:
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    try:
        record = report.load(course, assignment, db_url)
    except report.ReportError as exc:
        raise ExportError(str(exc)) from None
    out = Path(out)
    if fmt == "gradescope":
        return _gradescope(record, out)
    rows = canvas_rows(record) if fmt == "canvas" else moodle_rows(record)
    return Exported(written=[_write_csv(rows, out)])
