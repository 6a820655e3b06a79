"""`autograder report ASSIGNMENT --out DIR`: what a graded class did, for the instructor.

Two sources, each for what it is authoritative for:

* nbgrader's gradebook: every score (per student and grade cell, manual grades included);
* the autograder's ``results.json`` next to each autograded notebook: which check failed and
  the message the student saw, the seed, and whether the submission needs a human.

Written into DIR: four PNG plots (total scores, pass rate per graded item, pass rate per blank
site of the release, the most common root causes of failure), ``report.html`` (one self-contained
page: the plots embedded, their numbers beside them, a table per student, the submissions
flagged for review, the seed) and ``scores.csv`` (one row per student).

Blank sites are judged only where the results can tell them apart (``SITES`` in the assignment
plug-in's ``sites.py``, made of this module's ``Site``): a site is
right for a student when every check that bears on it passed, or failed with a message that
can only be reached when the site is right; wrong when one of them failed with a message that
names the site's mistake. A check that failed because the code raised, or was never reached,
tells nothing about a site.
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import importlib
import json
import math
import re
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from autograder import plugins
from autograder.course import COURSE, Course

TOP_MESSAGES = 10


class ReportError(RuntimeError):
    """The report cannot be made; the message says what is missing and what to do."""


# ---------------------------------------------------------------------------------------------
# The blank sites of the release, and the evidence in the results that tells each apart. Each
# assignment's table (SITES in assignments/ID/sites.py) is the only place that knows it. Patterns are regular expressions: `checks` on the
# check's name (after "item: "), the others on the message the student saw.


@dataclass(frozen=True)
class Site:
    cell: str  # grade_id of the solution cell that holds the blank(s)
    answers: tuple[str, ...]  # what the blanks hide, as assignment.blank_sites reports them
    label: str  # how the report names the site
    checks: tuple[str, ...] = ()  # the checks whose outcome bears on the site
    wrong: tuple[str, ...] = ()  # a failure with one of these messages: the site is wrong
    right: tuple[str, ...] = ()  # a failure with one of these can only be reached with the site right
    needs_passed: tuple[str, ...] = ()  # `wrong` only counts when these checks passed
    judged_if: tuple[str, ...] = ()  # a pass counts as right only when these checks passed too (where they
    # failed, the check may have passed because it does not charge that mistake, not because it saw the site)
    evidence: str = ""  # the evidence, in words, for the report
    untold: str = ""  # why no result can tell this site apart (then `checks` is empty)

    def verdict(self, tests: dict[str, tuple[bool, str]]) -> bool | None:
        """True (right), False (wrong) or None (cannot tell) from one student's checks."""
        if not self.checks:
            return None
        relevant = {name: outcome for name, outcome in tests.items()
                    if any(re.search(p, name) for p in self.checks)}
        if not relevant:
            return None
        gate_ok = all(passed for name, (passed, _) in tests.items()
                      if any(re.search(p, name) for p in self.needs_passed))
        told_right = all(passed for name, (passed, _) in tests.items()
                         if any(re.search(p, name) for p in self.judged_if))
        for passed, message in relevant.values():
            if passed:
                continue
            if gate_ok and any(re.search(p, message) for p in self.wrong):
                return False
            if not any(re.search(p, message) for p in self.right):
                told_right = False
        return True if told_right else None


# ---------------------------------------------------------------------------------------------
# Failure messages: the student-specific parts out, so that one mistake is one message.

_LINE_PART = re.compile(r" \(line \d+ of your cell: `.*?`\)")
_RAISED = re.compile(r"(raised [A-Za-z_][\w.]*): .*?(?=(?: \((?:train|eval) mode\))?\.?$)", re.S)
_STOPPED = re.compile(r"(stopped with [A-Za-z_][\w.]*)(?: at line \d+: `.*?`)?(?: \(.*?\))?(?=\.(?: |$)|$)", re.S)
_EXC_IN_PARENS = re.compile(r"\(([A-Z]\w*(?:Error|Exception|Exit|Interrupt)): [^()]*(?:\([^()]*\)[^()]*)*\)")


@functools.lru_cache(maxsize=1)
def _case_parts() -> list[tuple[re.Pattern, str]]:
    """What names one check's case rather than the student's mistake, taken from the graders
    themselves: a message that differs only there is one mistake met in several cases."""
    labels = []  # each grader module's names of its cases
    patterns = []  # and its patterns of what else names a case (a class's arguments), with their replacement
    for plugin in plugins.loadable():
        try:
            modules = plugin.grader_modules()
        except Exception:  # a plug-in whose graders do not import grades nothing: nothing of it to mask
            continue
        labels += [label for module in modules for label in getattr(module, "CASE_LABELS", ())]
        patterns += [(re.compile(p), r) for module in modules for p, r in getattr(module, "CASE_PATTERNS", ())]
    alternatives = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    return [
        (re.compile(alternatives), "\u2026"),
        *patterns,
        (re.compile(r"on a \(\d+(?:, \d+)*\) batch"), "on a (\u2026) batch"),
        (re.compile(r"^On this machine, |^In the run with CUDA \w+(?: \(GPU \w+\))?, "), "In one of the two runs, "),
        (re.compile(r" on this machine| in the run with CUDA \w+(?: \(GPU \w+\))?"), " in one of the two runs"),
        (re.compile(r" ?\((?:train|eval) mode\)| in (?:train|eval) mode"), ""),
        (re.compile(r"; yours is Conv2d\(.*?\)(?= \(|\.|$)"), ""),
    ]


def message_key(message: str) -> str:
    """The normalised message with the check's case masked: how the report groups failures."""
    text = normalise(message)
    for pattern, replacement in _case_parts():
        text = pattern.sub(replacement, text)
    return re.sub(r"\s+", " ", text).strip()


def normalise(message: str) -> str:
    """A failure message without what only one student's code puts in it: the quoted line of
    their cell, and exception messages (after "raised X", after "stopped with X", in parentheses)."""
    text = _LINE_PART.sub("", message.strip())
    text = _RAISED.sub(r"\1", text)
    text = _STOPPED.sub(r"\1", text)
    text = _EXC_IN_PARENS.sub(r"(\1)", text)
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------------------------------------
# Reading the class.


@dataclass
class StudentRecord:
    student: str
    scores: dict[str, float]  # item -> score, from the gradebook
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    lms_user_id: str | None = None
    late_penalty: float = 0.0
    ungraded: bool = False  # the gradebook has no score for some cell yet
    results: dict | None = None  # results.json, or None when there is none
    results_path: Path | None = None

    @property
    def total(self) -> float:
        return round(sum(self.scores.values()) - self.late_penalty, 4)

    @property
    def needs_review(self) -> str | None:
        return (self.results or {}).get("extra_data", {}).get("needs_review")

    def tests(self) -> dict[str, tuple[bool, str]]:
        """check name (without the item prefix) -> (passed, message)."""
        out = {}
        for t in (self.results or {}).get("tests", []):
            name = t["name"].split(": ", 1)[-1]
            out[name] = (t["score"] >= t["max_score"] - 1e-9, t.get("output") or "")
        return out


@dataclass
class ClassRecord:
    assignment: str
    items: list[str]
    max_scores: dict[str, float]
    students: list[StudentRecord] = field(default_factory=list)

    @property
    def max_total(self) -> float:
        return round(sum(self.max_scores.values()), 4)


def results_path(course: Course, student: str, assignment: str) -> Path:
    return course.results(student, assignment)


def load(course: Course, assignment: str, db_url: str | None = None) -> ClassRecord:
    """The class as the gradebook (scores) and the results files (checks) record it."""
    from nbgrader.api import Gradebook, MissingEntry

    if assignment not in course.assignments():
        raise ReportError(f"no assignment {assignment!r} in {course.root / 'source'}.")
    if db_url is None:
        if not course.gradebook.is_file():
            raise ReportError(f"no gradebook at {course.gradebook}: grade the class first "
                              f"(autograder autograde {assignment}), or give --course the course folder.")
        db_url = f"sqlite:///{course.gradebook}"
    try:
        items = plugins.get(assignment, course).items
    except plugins.NoPlugin:
        items = {}  # graded without this package's graders: the gradebook's cells are the items
    item_of_cell = {cell: item for item, cell in items.items()}.get
    record = ClassRecord(assignment, [], {})
    with Gradebook(db_url) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise ReportError(f"the gradebook {db_url} knows no assignment {assignment!r}: grade it first "
                              f"(autograder autograde {assignment}).") from None
        for submission in gb.assignment_submissions(assignment):
            student = submission.student
            rec = StudentRecord(submission.student_id, {}, student.first_name, student.last_name, student.email,
                                getattr(student, "lms_user_id", None),
                                late_penalty=float(submission.late_submission_penalty or 0.0))
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    item = item_of_cell(grade.name) or grade.name
                    rec.scores[item] = rec.scores.get(item, 0.0) + float(grade.score)
                    if item not in record.max_scores:
                        record.max_scores[item] = float(grade.max_score)
                        record.items.append(item)
                    if grade.auto_score is None and grade.manual_score is None:
                        rec.ungraded = True
            record.students.append(rec)
    if not record.students:
        raise ReportError(f"the gradebook has no submissions of {assignment!r} yet: grade them first "
                          f"(autograder autograde {assignment}).")
    order = {item: i for i, item in enumerate(items)}
    record.items.sort(key=lambda i: (order.get(i, len(order)), i))
    record.students.sort(key=lambda s: s.student)
    for rec in record.students:
        for item in record.items:
            rec.scores.setdefault(item, 0.0)
        path = results_path(course, rec.student, assignment)
        rec.results_path = path
        try:
            rec.results = json.loads(path.read_text())
        except (OSError, ValueError):
            rec.results = None
    return record


# ---------------------------------------------------------------------------------------------
# The numbers behind each plot.


def histogram(record: ClassRecord) -> list[tuple[float, float, int]]:
    """(low, high, students) for bins [k, k+1) of the total score, the last one closed."""
    top = max(1, math.ceil(record.max_total))
    bins = [[float(k), float(k + 1), 0] for k in range(top)]
    for rec in record.students:
        k = min(max(int(math.floor(rec.total + 1e-9)), 0), top - 1)
        bins[k][2] += 1
    return [tuple(b) for b in bins]  # type: ignore[misc]


def item_rates(record: ClassRecord) -> list[tuple[str, float, float, float]]:
    """(item, mean score, max score, mean share in %) per graded item."""
    rows = []
    n = len(record.students)
    for item in record.items:
        mean = sum(s.scores[item] for s in record.students) / n
        top = record.max_scores[item]
        rows.append((item, mean, top, 100.0 * mean / top if top else 0.0))
    return rows


@dataclass
class SiteRow:
    site: Site
    right: int
    wrong: int
    untold_students: int

    @property
    def told(self) -> int:
        return self.right + self.wrong

    @property
    def rate(self) -> float | None:
        return 100.0 * self.right / self.told if self.told else None


def site_rows(record: ClassRecord, sites: list[Site] | None = None) -> list[SiteRow]:
    rows = []
    for site in sites if sites is not None else sites_of(record.assignment):
        verdicts = [site.verdict(s.tests()) if s.results else None for s in record.students]
        rows.append(SiteRow(site, verdicts.count(True), verdicts.count(False), verdicts.count(None)))
    return rows


def sites_of(assignment: str, course: Course | None = None) -> list[Site]:
    """The assignment's blank-site map: SITES in its plug-in's sites.py ([] where it has none)."""
    try:
        plugin = plugins.get(assignment, course)
    except plugins.NoPlugin:
        return []
    try:
        module = importlib.import_module(f"{plugin.module}.sites")
    except ModuleNotFoundError:
        return []
    return list(module.SITES)


def sites_match_source(course: Course, assignment: str) -> str | None:
    """None when the plug-in's SITES describes the source's blanks, else what differs."""
    from autograder.assignment import blank_sites

    sites = sites_of(assignment, course)
    if not sites:
        return f"the plug-in of {assignment} has no blank-site map (assignments/{assignment}/sites.py)"
    try:
        found = [(s.grade_id, s.answers) for s in blank_sites(course.source(assignment) / Course.notebook(assignment))]
    except (OSError, ValueError) as exc:
        return f"the source notebook could not be read ({exc})"
    mapped = [(s.cell, s.answers) for s in sites]
    if found != mapped:
        return (f"the source has {len(found)} blank sites and the report's map {len(mapped)}, and they differ; "
                f"update SITES in assignments/{assignment}/sites.py")
    return None


@dataclass
class MessageRow:
    message: str
    students: int
    checks: int  # the failed checks with this message, and the crash reports counted under it


# A crash report says only that the student's code stopped: a check "raised X", or a variable a
# check needs "is not defined ...: cell `c` stopped with X". It is a knock-on effect: the same
# student's diagnosis in the same item (conv1 needs padding=1) names the mistake that made it.
# Read on the message's key (normalised: no exception text, no line, no case).
_CRASH_REPORT = re.compile(r"\braised (?:[A-Za-z_][\w.]*|an exception|an error)(?: [^:;]*)?\.$"
                           r"|^[\w.' ]+ is not defined[^:,]*: .*\bstopped with [A-Za-z_][\w.]*\.$")


def is_crash_report(message: str) -> bool:
    """True for a failure message that only says the student's code raised or stopped."""
    return _CRASH_REPORT.search(message_key(message)) is not None


def root_causes(rec: StudentRecord) -> dict[str, int]:
    """One student's root causes (message keys), each with the failed checks it accounts for.

    Per graded item: each diagnosis (a failure message that is not a crash report) is a root
    cause, and the item's crash reports count under its first diagnosis. An item that failed with
    crash reports only has its first crash report as its root cause (nothing names the mistake
    there, and what the student saw first is the best lead), the others counted under it."""
    by_item: dict[str, list[str]] = {}
    for t in (rec.results or {}).get("tests", []):
        if t["score"] < t["max_score"] - 1e-9 and t.get("output"):
            by_item.setdefault(t["name"].split(": ", 1)[0], []).append(t["output"])
    causes: Counter[str] = Counter()
    for messages in by_item.values():
        diagnoses = [m for m in messages if not is_crash_report(m)]
        first = message_key((diagnoses or messages)[0])
        for message in messages:
            causes[message_key(message) if message in diagnoses else first] += 1
    return dict(causes)


def top_messages(record: ClassRecord, limit: int = TOP_MESSAGES) -> tuple[list[MessageRow], int]:
    """The most common root causes of failure (see root_causes), by how many students had them;
    and how many distinct ones there were in all."""
    students: Counter[str] = Counter()
    checks: Counter[str] = Counter()
    for rec in record.students:
        causes = root_causes(rec)
        checks.update(causes)
        students.update(causes.keys())
    ordered = sorted(students, key=lambda m: (-students[m], -checks[m], m))
    return [MessageRow(m, students[m], checks[m]) for m in ordered[:limit]], len(students)


# ---------------------------------------------------------------------------------------------
# Plots.


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _pct(value: float) -> str:
    return f"{value:.0f}%"


def plot_histogram(record: ClassRecord, bins, path: Path) -> None:
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=120)
    lows = [b[0] for b in bins]
    counts = [b[2] for b in bins]
    ax.bar(lows, counts, width=1.0, align="edge", color="#4c72b0", edgecolor="white", linewidth=1.2)
    for low, count in zip(lows, counts):
        if count:
            ax.annotate(str(count), (low + 0.5, count), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=10)
    top = bins[-1][1]
    ax.set_xlim(0, top)
    ax.set_xticks(range(0, int(top) + 1))
    ax.set_ylim(0, max(counts + [1]) * 1.18)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("students")
    ax.set_xlabel(f"total score (out of {record.max_total:g}); each bar covers [k, k+1), the last one "
                  f"[{top - 1:g}, {top:g}]")
    ax.set_title(f"{record.assignment}: total scores of {len(record.students)} students")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _rate_bars(ax, labels: list[str], values: list[float | None], notes: list[str]) -> None:
    """Horizontal bars on a 0-100% axis, first label at the top, each with its note."""
    ys = list(range(len(labels)))[::-1]
    ax.barh(ys, [v or 0.0 for v in values], height=0.6, color=["#55a868" if v is not None else "none" for v in values])
    for y, value, note in zip(ys, values, notes):
        if value is None:
            ax.text(1, y, note, va="center", ha="left", fontsize=9, color="#666666", style="italic")
        elif value > 62:
            ax.text(value - 1, y, note, va="center", ha="right", fontsize=9, color="white", fontweight="bold")
        else:
            ax.text(value + 1, y, note, va="center", ha="left", fontsize=9)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.set_xlim(0, 100)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xticklabels([f"{t}%" for t in range(0, 101, 20)])
    ax.set_ylim(-0.6, len(labels) - 0.4)
    ax.spines[["top", "right"]].set_visible(False)


def plot_items(record: ClassRecord, rows, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(rows) + 1.5), dpi=120)
    _rate_bars(ax, [r[0] for r in rows], [r[3] for r in rows],
               [f"{_pct(r[3])} ({r[1]:.2f} of {r[2]:g} pts)" for r in rows])
    ax.set_xlabel("mean share of the item's points")
    ax.set_title(f"{record.assignment}: pass rate per graded item ({len(record.students)} students)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_sites(record: ClassRecord, rows: list[SiteRow], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(rows) + 1.6), dpi=120)
    notes = []
    for r in rows:
        if not r.site.checks:
            notes.append("cannot be told apart from the results")
        elif not r.told:
            notes.append("no student's results tell it (n = 0)")
        else:
            notes.append(f"{_pct(r.rate)}  ({r.right} of n = {r.told})")
    _rate_bars(ax, [r.site.label for r in rows], [r.rate for r in rows], notes)
    ax.set_xlabel("students who filled the site right, among the n whose results tell it apart")
    ax.set_title(f"{record.assignment}: blank sites of the release ({len(record.students)} students)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _wrap(text: str, width: int = 48, lines: int = 5) -> str:
    wrapped = textwrap.wrap(text, width) or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][: width - 1].rstrip() + "\u2026"
    return "\n".join(wrapped)


def plot_messages(record: ClassRecord, rows: list[MessageRow], path: Path) -> None:
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    labels = [_wrap(r.message) for r in rows] or ["(no check failed)"]
    counts = [r.students for r in rows] or [0]
    lines = [label.count("\n") + 1 for label in labels]
    # one slot per message, as tall as its wrapped label (at least a bar's height), first at the top
    slots = [max(n, 1.6) for n in lines]
    ys, y = [], 0.0
    for slot in reversed(slots):
        ys.append(y + slot / 2)
        y += slot + 0.5
    ys = ys[::-1]
    fig, ax = plt.subplots(figsize=(8.5, 0.2 * y + 1.4), dpi=120)
    ax.barh(ys, counts, height=1.2, color="#c44e52")
    for yy, count in zip(ys, counts):
        ax.annotate(str(count), (count, yy), xytext=(4, 0), textcoords="offset points", va="center", fontsize=10)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=9.5)
    ax.set_ylim(-0.3, y - 0.2)
    ax.set_xlim(0, max(counts + [1]) * 1.1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"students who saw the message (of {len(record.students)})")
    ax.set_title(f"{record.assignment}: the {len(rows)} most common root causes of failure")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Files.


def _num(value: float) -> str:
    return f"{round(value, 4):g}"


def write_csv(record: ClassRecord, path: Path) -> None:
    penalty = any(s.late_penalty for s in record.students)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", *record.items, *(["late_penalty"] if penalty else []), "total"])
        for s in record.students:
            writer.writerow([s.student, *(_num(s.scores[i]) for i in record.items),
                             *([_num(s.late_penalty)] if penalty else []), _num(s.total)])


# The page fits any window from a phone's (390 px) up: plot and table side by side only where both
# fit, images shrink, and names such as residual_block_shapes may break after _ and . (<wbr>).
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1em; max-width: 1560px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
.pair { display: grid; grid-template-columns: minmax(0, 780px) minmax(0, 1fr); gap: 2em; align-items: start; }
@media (max-width: 1400px) { .pair { grid-template-columns: minmax(0, 1fr); } }
.pair img { width: 100%; max-width: 780px; box-sizing: border-box; border: 1px solid #eee; } .pair table { justify-self: start; }
table { border-collapse: collapse; font-size: 0.9em; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; } .note { color: #555; font-size: 0.9em; max-width: 60em; overflow-wrap: break-word; }
@media (max-width: 600px) { body { padding: 0 0.5em; } table { font-size: 0.75em; } th, td { padding: 2px 3px; overflow-wrap: anywhere; } td:first-child, td.n { overflow-wrap: break-word; } }
"""


def _cell(text: str) -> str:
    """Escaped, with a line-break opportunity after each _ and . (long names wrap on a phone)."""
    return re.sub(r"(?<=[A-Za-z][_.])(?=[A-Za-z])", "<wbr>", html.escape(text))


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{_cell(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td class='n'>{_cell(c)}</td>" if i in numeric else
                                     f"<td>{_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def write_html(record: ClassRecord, path: Path, pngs: dict[str, Path], bins, items, sites: list[SiteRow] | None,
               sites_problem: str | None, messages: list[MessageRow], n_messages: int) -> None:
    a = html.escape(record.assignment)
    n = len(record.students)
    with_results = [s for s in record.students if s.results]
    seeds = Counter(str(s.results.get("extra_data", {}).get("seed")) for s in with_results)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{a}: grading report</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{a}: grading report</h1>",
             f"<p>{n} students in the gradebook; mean total {sum(s.total for s in record.students) / n:.2f} of "
             f"{record.max_total:g}. Scores come from nbgrader's gradebook; which checks failed and why, from "
             f"the {len(with_results)} results.json files next to the autograded notebooks.</p>",
             "<p>Grading seed: " + html.escape(", ".join(f"{seed} ({k} students)" if len(seeds) > 1 else seed
                                                         for seed, k in seeds.most_common()) or "unknown") + "</p>"]
    missing = [s.student for s in record.students if not s.results]
    if missing:
        parts.append(f"<p class='note'>No results.json for {len(missing)} student(s) ({html.escape(', '.join(missing))}): "
                     "their scores are in every table, but the per-check sections below do not count them.</p>")
    differ = [s.student for s in with_results
              if any(abs(s.scores.get(item, 0.0) - v.get("score", 0.0)) > 1e-6
                     for item, v in s.results.get("extra_data", {}).get("items", {}).items())]
    if differ:
        parts.append(f"<p class='note'>The gradebook differs from the autograder's results for "
                     f"{html.escape(', '.join(differ))} (manual grading?); the gradebook's scores are shown.</p>")

    parts.append("<h2>Total scores</h2><div class='pair'>" + _img(pngs["total_histogram"], "histogram of totals")
                 + _table(["total score", "students"],
                          [[f"[{lo:g}, {hi:g}" + ("]" if i == len(bins) - 1 else ")"), str(c)]
                           for i, (lo, hi, c) in enumerate(bins)], {1}) + "</div>")
    parts.append("<h2>Pass rate per graded item</h2><div class='pair'>" + _img(pngs["item_pass_rates"], "item pass rates")
                 + _table(["item", "mean points", "max", "pass rate"],
                          [[i, f"{m:.2f}", f"{t:g}", f"{r:.1f}%"] for i, m, t, r in items], {1, 2, 3})
                 + "</div><p class='note'>Pass rate: the mean share of the item's points, over all students.</p>")

    parts.append("<h2>Blank sites of the release</h2>")
    if sites is None:
        parts.append(f"<p class='note'>Left out: {html.escape(sites_problem or '')}.</p>")
    else:
        untold = [r.site.label for r in sites if not r.site.checks]
        parts.append("<div class='pair'>" + _img(pngs["blank_sites"], "blank-site pass rates") + _table(
            ["site", "cell", "told apart for n", "right", "wrong", "not told", "pass rate"],
            [[r.site.label, r.site.cell, str(r.told), str(r.right), str(r.wrong), str(r.untold_students),
              f"{r.rate:.0f}%" if r.rate is not None else ("cannot be told apart" if not r.site.checks else "-")]
             for r in sites], {2, 3, 4, 5, 6}) + "</div>")
        parts.append("<p class='note'>A site is told apart for a student only when every check bearing on it "
                     "passed or failed with a message that names the site (or can only be reached with the site "
                     "right); a check that failed because the code raised or never ran tells nothing. "
                     f"Never told apart: {html.escape('; '.join(untold))}. The evidence, site by site:</p><ul class='note'>"
                     + "".join(f"<li><b>{html.escape(r.site.label)}</b>: " + html.escape(
                         r.site.evidence or f"cannot be told apart: {r.site.untold}") + "</li>" for r in sites)
                     + "</ul>")

    parts.append("<h2>Most common failure messages</h2><div class='pair'>" + _img(pngs["failure_messages"],
                                                                                 "most common failure messages")
                 + _table(["root cause (normalised message)", "students", "failed checks"],
                          [[m.message, str(m.students), str(m.checks)] for m in messages], {1, 2}) + "</div>"
                 f"<p class='note'>{n_messages} distinct root causes. A message that only says the student's code "
                 "stopped (a check whose block 'raised RuntimeError', a variable that 'is not defined"
                 "' because a cell stopped) is a knock-on effect: it counts under the message that names the "
                 "mistake in the same student's same graded item ('conv1 needs padding=1'). Where an item "
                 "failed with such messages only, its first one stands for the rest. Failed checks: those with the "
                 "message and those counted under it. Messages are normalised first: the quoted line of the "
                 "student's cell, the text of their exceptions and the case are taken out, so that one mistake is "
                 "one message. Each student counts once per root cause; ties are ordered by failed checks.</p>")

    flagged = [s for s in record.students if s.needs_review]
    parts.append(f"<h2>Flagged for review ({len(flagged)})</h2>")
    parts.append(_table(["student", "reason"], [[s.student, s.needs_review] for s in flagged]) if flagged
                 else "<p>No submission was flagged.</p>")
    ungraded = [s.student for s in record.students if s.ungraded]
    if ungraded:
        parts.append(f"<p class='note'>Not graded yet in the gradebook (counted as 0): "
                     f"{html.escape(', '.join(ungraded))}.</p>")

    penalty = any(s.late_penalty for s in record.students)
    parts.append("<h2>Students</h2>")
    parts.append(_table(["student", "total", *record.items, *(["late penalty"] if penalty else []), "needs review"],
                        [[s.student, f"{s.total:.2f}", *(f"{s.scores[i]:.2f}" for i in record.items),
                          *([f"{s.late_penalty:.2f}"] if penalty else []), "yes" if s.needs_review else ""]
                         for s in record.students], set(range(1, len(record.items) + 2 + penalty))))
    parts.append("</body></html>\n")
    path.write_text("\n".join(parts), encoding="utf-8")


def main(*, assignment: str, course: Course = COURSE, out: Path, db_url: str | None = None) -> dict[str, Path]:
    """Write the report into `out`; returns what was written, by name."""
    record = load(course, assignment, db_url)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} is a file; give a folder for the report.")
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    bins = histogram(record)
    written["total_histogram"] = out / "total_scores.png"
    plot_histogram(record, bins, written["total_histogram"])

    items = item_rates(record)
    written["item_pass_rates"] = out / "item_pass_rates.png"
    plot_items(record, items, written["item_pass_rates"])

    sites_problem = sites_match_source(course, assignment)
    sites = None if sites_problem else site_rows(record, sites_of(assignment, course))
    if sites is not None:
        written["blank_sites"] = out / "blank_sites.png"
        plot_sites(record, sites, written["blank_sites"])

    messages, n_messages = top_messages(record)
    written["failure_messages"] = out / "failure_messages.png"
    plot_messages(record, messages, written["failure_messages"])

    written["csv"] = out / "scores.csv"
    write_csv(record, written["csv"])
    written["html"] = out / "report.html"
    write_html(record, written["html"], written, bins, items, sites, sites_problem, messages, n_messages)
    return written
