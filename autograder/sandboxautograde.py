"""SandboxAutograde: nbgrader's autograde step, with our engine in place of in-kernel execution.

Registered in ``nbgrader_config.py`` instead of ``Execute`` in
``Autograde.autograde_preprocessors``. nbgrader still reads the submission, restores the
test cells from the gradebook, saves the scores and builds feedback; this step only decides
what the cells show. Each test cell gets one line per check and, as its result, the item's
score (nbgrader's partial credit); each other code cell gets what it printed in the sandbox.
The engine's Gradescope-style results are written next to the autograded notebook.

This module also holds what both doors (`nbgrader autograde` with this course's config, and
`autograder autograde`) need to keep nbgrader from reading outside a submission folder as root:
`guard_nbgrader()` (called from nbgrader_config.py and by autograde.main) and the checks it
uses, and the feedback exporter that cleans the HTML of markdown cells.
"""

from __future__ import annotations

import atexit
import contextvars
import errno
import json
import os
import re
import stat
import threading
import unicodedata
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, ClassVar, Iterator

import bleach
import nbformat
from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Float, Integer

from autograder import engine, gradingconfig, plan, plugins, results, sandbox
from autograder.course import Course, course_here


SKIPPED = ("[grader] Not run while grading: an unchanged demonstration cell from the assignment that no "
           "graded part depends on. Run it yourself to see its output.\n")


DOOR_IDLE_SECONDS = 120.0  # a door zygote unused this long is closed (a formgrader's server lives on)
_DOOR_POOLS: dict[bool, sandbox.WarmPool | None] = {}
_DOOR_LOCK = threading.Lock()
_DOOR_STATE: dict[str, Any] = {"busy": 0, "timer": None}


@contextmanager
def door_pool(unsafe: bool) -> Iterator[sandbox.WarmPool | None]:
    """One warm zygote for a plain `nbgrader autograde` run, started with its first notebook:
    nbgrader grades a class one notebook at a time in one process, and each later notebook is
    forked from the zygote (about a second) instead of starting a fresh sandbox that imports torch
    again (several). None where the warm sandbox is not available (not root, or unsafe grading):
    each notebook then runs cold, as before. The zygote is closed once no notebook has used it for
    DOOR_IDLE_SECONDS (formgrader runs autograde inside the notebook server, which lives on) and
    when the process ends; a zygote also ends when its socket closes."""
    with _DOOR_LOCK:
        if unsafe not in _DOOR_POOLS:
            _DOOR_POOLS[unsafe] = sandbox.warm_pool(1, unsafe)
        _DOOR_STATE["busy"] += 1
        if _DOOR_STATE["timer"] is not None:
            _DOOR_STATE["timer"].cancel()
            _DOOR_STATE["timer"] = None
        pool = _DOOR_POOLS[unsafe]
    try:
        yield pool
    finally:
        with _DOOR_LOCK:
            _DOOR_STATE["busy"] -= 1
            if _DOOR_STATE["busy"] == 0 and _DOOR_POOLS:
                timer = _DOOR_STATE["timer"] = threading.Timer(DOOR_IDLE_SECONDS, _close_door_pools, kwargs={"idle": True})
                timer.daemon = True
                timer.start()


def _close_door_pools(idle: bool = False) -> None:
    with _DOOR_LOCK:
        if idle and _DOOR_STATE["busy"]:
            return  # a notebook started using the zygote as the timer fired
        closing = [pool for pool in _DOOR_POOLS.values() if pool is not None]
        _DOOR_POOLS.clear()
    for pool in closing:
        pool.close()


atexit.register(_close_door_pools)  # with no zygote started, closing is a no-op


class SandboxAutograde(NbGraderPreprocessor):
    """Grades the notebook in the sandbox with the settings of c.GradingConfig (gradingconfig.py)."""

    # The names these settings had before GradingConfig; still read (GradingConfig wins).
    seed = Integer(plan.DEFAULT_SEED, help="Old name of GradingConfig.seed.").tag(config=True)
    cell_seconds = Float(sandbox.Limits.cell_seconds, help="Old name of GradingConfig.cell_seconds.").tag(config=True)
    submission_seconds = Float(sandbox.Limits.submission_seconds,
                               help="Old name of GradingConfig.submission_seconds.").tag(config=True)
    unsafe_no_sandbox = Bool(False, help="Old name of GradingConfig.unsafe_no_sandbox.").tag(config=True)

    # Results already computed by `autograder autograde` (in this process), keyed by student:
    # nbgrader then only records them. Plain `nbgrader autograde` grades here itself.
    precomputed: ClassVar[dict[str, engine.Result]] = {}

    def preprocess(self, nb: Any, resources: Any) -> tuple[Any, Any]:
        student = resources.get("nbgrader", {}).get("student", "submission")
        result = self.precomputed.get(student)
        if result is None:
            settings = gradingconfig.from_config(self.config)
            course = self._course()
            assignment = resources.get("nbgrader", {}).get("assignment")
            try:
                plugins.get(assignment, course)
            except plugins.NoPlugin as exc:
                self.log.error("%s", exc)
                raise RuntimeError(str(exc)) from None
            with door_pool(settings.unsafe_no_sandbox) as pool:
                result = next(iter(engine.grade_stream(
                    [(student, lambda: nb)], seed=settings.seed, limits=settings.limits(),
                    unsafe=settings.unsafe_no_sandbox, batch=1, pool=pool, course=course, assignment=assignment)))
        self.log.info("%s: %s / %s", student, result.score, result.max_score)
        if result.problem:
            self.log.warning("%s needs review: %s", student, result.problem)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                cell.outputs = self._outputs(cell, index, result, nb)
        name = resources.get("unique_key", "notebook")
        resources.setdefault("outputs", {})[f"{name}.results.json"] = (
            json.dumps(results.gradescope(result), indent=2) + "\n").encode()
        resources.setdefault("nbgrader", {})["nb10_review"] = list(result.review)
        return nb, resources

    def _course(self) -> Course:
        """The course directory nbgrader runs in (its CourseDirectory.root), whose source/ the plan follows."""
        root = self.config.get("CourseDirectory", {}).get("root") if "CourseDirectory" in self.config else None
        return Course(Path(root).resolve()) if root else course_here()

    @staticmethod
    def _outputs(cell: Any, index: int, result: engine.Result, nb: Any = None) -> list:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        item = results.item_of_cell(result, grade_id)
        if item is not None:
            text, score, _ = results.cell_report(result, item)
            first = item == next(iter(result.items))
            if first and results.setup_stopped_text(result) and result.score < result.max_score:
                text = results.setup_stopped_text(result) + "\n" + text
            if result.review and first:
                text = results.STUDENT_REVIEW_NOTE + "\n" + text  # the reasons go to the gradebook, not here
            return [nbformat.v4.new_output("stream", name="stdout", text=text),
                    nbformat.v4.new_output("execute_result", data={"text/plain": f"{score:g}"}, execution_count=None)]
        ran = result.cells.get(index)
        if index in result.skipped:
            return [nbformat.v4.new_output("stream", name="stdout", text=SKIPPED)]
        if ran is None:
            return []
        text = ran.get("output", "")
        error = ran.get("error")
        stopped = next((c for c in result.timed_out if c["cell"] == index), None)
        if stopped is not None:  # in words, not the grader's CellTimeout
            text = without_timeout_traceback(text)
            text += "\n" if text and not text.endswith("\n") else ""
            text += f"[grader] {results.timed_out_text(stopped)}\n"
        elif error:  # in words, with the student's own line, not IPython's traceback through the libraries
            text = without_traceback(text)
            text += "\n" if text and not text.endswith("\n") else ""
            what = f"{error['type']}: {error['message']}" if error.get("message") else str(error.get("type"))
            where = (f"\n  It was raised at line {error['line']} of {own_cell(nb, error, index)}: {error['code']}"
                     if error.get("code") else "")
            text += f"[grader] This cell stopped with {what}{where}\n"
        text = INSTALL_PATH.sub("", text)  # a library's warning names its file, not where it is installed
        return [nbformat.v4.new_output("stream", name="stdout", text=text)] if text else []


# Where Python packages are installed on the grading machine (a warning's file name starts so)
INSTALL_PATH = re.compile(r"(?:/[^\s:'\"/]+)*/(?:site-packages|dist-packages)/")

# IPython's report of the grader's interrupt, at the end of a stopped cell's output
_TRACEBACK = "Traceback (most recent call last):\n"
_TIMEOUT_TRACEBACK_END = re.compile(r"(?:.*\n)*?\S*CellTimeout\b[^\n]*\n*\Z")


def without_timeout_traceback(text: str) -> str:
    """A stopped cell's output without IPython's traceback of the interrupt (CellTimeout is the
    grader's name, and its frames are the grader's business); what the cell printed stays."""
    start = text.rfind(_TRACEBACK)
    if start >= 0 and _TIMEOUT_TRACEBACK_END.fullmatch(text, start + len(_TRACEBACK)):
        return text[:start]
    return text


# Where IPython's report of an exception begins in a cell's output: a traceback, or (for a
# SyntaxError) the cell and line. Its frames name the grader's and the libraries' files.
_ERROR_REPORT = re.compile(r"^(?:Traceback \(most recent call last\):|\s*Cell In\[\d+\], line \d+|"
                           r"\s*File [^\n]*, line \d+)\s*$", re.MULTILINE)


def without_traceback(text: str) -> str:
    """A failed cell's output without IPython's report of the exception (which ends the output)."""
    match = _ERROR_REPORT.search(text)
    return text[:match.start()] if match else text


def own_cell(nb: Any, error: dict, index: int) -> str:
    """Which of the notebook's cells holds the line an exception was raised at: this one, an
    exercise cell by its name, or a code cell by its number."""
    code = str(error.get("code") or "").strip()
    line = error.get("line")

    def holds(cell: Any) -> bool:
        lines = str(cell.get("source", "")).split("\n")
        return isinstance(line, int) and 0 < line <= len(lines) and lines[line - 1].strip() == code

    cells = list(nb.cells) if nb is not None else []
    if 0 <= index < len(cells) and holds(cells[index]):
        return "this cell"
    for number, cell in enumerate(cells):
        if cell.get("cell_type") == "code" and holds(cell):
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            return f"cell `{grade_id}`" if grade_id else f"code cell {number + 1}"
    return "your code"


REVIEW_COMMENT = "Marked for review by the autograder"


class FlagForReview(NbGraderPreprocessor):
    """After nbgrader has saved the scores: a submission the autograder marked for review is
    flagged in the gradebook (formgrader shows the flag) and its reasons become the automatic
    comment of its first exercise cell. Registered after SaveAutoGrades in nbgrader_config.py."""

    def preprocess(self, nb: Any, resources: Any) -> tuple[Any, Any]:
        info = resources.get("nbgrader", {})
        reasons = info.get("nb10_review")
        if reasons is None or "db_url" not in info:
            return nb, resources
        mark_for_review(info["db_url"], info["assignment"], info["notebook"], info["student"], reasons, nb)
        return nb, resources


def mark_for_review(db_url: str, assignment: str, notebook: str, student: str, reasons: list[str],
                    nb: Any = None) -> None:
    """Set (or clear) the gradebook's flag and the review comment for one submitted notebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            submitted = gb.find_submission_notebook(notebook, assignment, student)
        except MissingEntry:
            return
        submitted.flagged = bool(reasons)
        solution_ids = [c.metadata["nbgrader"]["grade_id"] for c in (nb.cells if nb is not None else [])
                        if c.metadata.get("nbgrader", {}).get("solution")]
        comments = [c for c in submitted.comments if not solution_ids or c.name in solution_ids]
        comments.sort(key=lambda c: solution_ids.index(c.name) if c.name in solution_ids else 0)
        if comments:
            first = comments[0]
            text = f"{REVIEW_COMMENT}: " + "; ".join(reasons) if reasons else None
            if reasons or (first.auto_comment or "").startswith(REVIEW_COMMENT):
                first.auto_comment = text
        gb.db.commit()


# --- What of a submission folder may be read ------------------------------------------------
#
# Grading runs as root, and a submission folder is written by whoever sent it (an unpacked
# archive can hold links, FIFOs and device files). Only regular files inside it are read, and a
# path is examined with lstat before anything opens it, so that nothing follows a link out of
# the folder and nothing blocks on a FIFO or reads a device forever.

MAX_FILE_BYTES = 50 * 1024 * 1024   # a notebook, or a file beside it, larger than this is not read
TIMESTAMP_MAX_BYTES = 4096          # nbgrader's timestamp.txt holds one line
GLOB_CHARACTERS = "*?["             # what makes glob.glob, and so nbgrader, treat a name as a pattern
NOT_UTF8 = "its name is not valid UTF-8 (nbgrader and the gradebook need text ids)"


class Refused(ValueError):
    """A file that is not read; the message says why (it completes "the file ...")."""


def file_kind(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return what
    return "a special file"


def _mode_problem(st: os.stat_result, limit: int) -> str | None:
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link (links are never followed)"
    if not stat.S_ISREG(st.st_mode):
        return f"is {file_kind(st.st_mode)}, not a regular file"
    if st.st_size > limit:
        return f"is {st.st_size / 2**20:.1f} MB, over the {limit / 2**20:g} MB limit"
    return None


def file_problem(path: str | bytes | os.PathLike, limit: int = MAX_FILE_BYTES) -> str | None:
    """Why the file at `path` must not be read, judged without following or opening it; None
    for a regular file within `limit`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "is missing"
    except OSError as exc:
        return f"cannot be examined ({exc.strerror})"
    return _mode_problem(st, limit)


def read_regular(path: str | bytes | os.PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file, or Refused: never follows a link in the last component
    (O_NOFOLLOW), never opens a device or blocks on a FIFO (lstat first, then O_NONBLOCK and
    fstat on what was opened), never reads more than `limit` bytes."""
    problem = file_problem(path, limit)
    if problem:
        raise Refused(problem)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused("is a symbolic link (links are never followed)") from None
        raise
    try:
        problem = _mode_problem(os.fstat(fd), limit)
        if problem:
            raise Refused(problem)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            total += len(chunk)
            if total > limit:
                raise Refused(f"is over the {limit / 2**20:g} MB limit")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _as_text(name: str | bytes) -> str | None:
    """The name as text, or None when it is not valid UTF-8 (os gives such names to str as
    lone surrogates)."""
    try:
        return name.decode("utf-8") if isinstance(name, bytes) else name.encode("utf-8").decode("utf-8")
    except UnicodeError:
        return None


def student_id_problem(name: str | bytes) -> str | None:
    """Why a student folder's name cannot be a student id for nbgrader; None when it can."""
    text = _as_text(name)
    if text is None:
        return NOT_UTF8
    if any(c in text for c in GLOB_CHARACTERS):
        return ("its name has a glob character (* ? [): nbgrader matches student ids as globs, so grading "
                "it would grade other students' folders under its name")
    if any(unicodedata.category(c) == "Cc" for c in text):
        return "its name has a control character (tab, newline, ...)"
    if text != text.strip():
        return ("its name begins or ends with white space, which nbgrader strips from a student id (it "
                "would grade another student's folder)")
    return None


def display_name(name: str | bytes | os.PathLike) -> str:
    """A name or path as it can be printed: bytes that are not UTF-8 as \\xNN, and quoted with
    escapes when it has white space at an end or characters that are not printable."""
    name = os.fspath(name)
    raw = name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    if text != text.strip() or not text.isprintable():
        return repr(text)
    return text


# --- Hooks into nbgrader ---------------------------------------------------------------------
#
# nbgrader reads a submission folder in three places, all as the grading user (root here):
#   1. BaseConverter.init_notebooks globs <step>/<student>/<assignment>/<notebook>.ipynb and
#      later opens each match (a glob follows symlinked folders and matches links, folders and
#      FIFOs by name);
#   2. BaseConverter.init_assignment copies every other file of the folder, found by
#      nbgrader.utils.find_all_files (os.walk) and copied with shutil.copy, which follows links
#      and reads FIFOs and devices: Autograde copies submitted/ into autograded/, and
#      GenerateFeedback copies autograded/ into feedback/;
#   3. CourseDirectory.get_existing_timestamp opens the folder's timestamp.txt and reads it all.
# guard_nbgrader() wraps exactly these for the Autograde and GenerateFeedback converters:
# init_notebooks drops folders and notebooks that fail the checks above (logged as errors, and
# the run ends with nbgrader's own failure, as for a submission it could not process);
# init_assignment runs with a filter on the find_all_files that base.py imported, so only
# regular files within the size limit are copied (each one left out is logged); a
# timestamp.txt that is not a small regular file is ignored with a warning, as nbgrader does an
# empty one. Other converters (generate_assignment from the instructor's source/, ...) are
# untouched.

RESULTS_SUFFIX = ".results.json"  # Course.results: the results.json written beside the autograded notebook
_copying_for = contextvars.ContextVar("nb10_copying_for", default=None)


def _regular_files_only(find_all_files):
    @wraps(find_all_files)
    def find_regular_files(path, exclude=None):
        log = _copying_for.get()
        if log is None:  # not a submission folder being copied
            return find_all_files(path, exclude)
        if os.path.islink(path):
            log.warning("Not copying anything from %s: it is a symbolic link (links are never followed)",
                        display_name(path))
            return []
        kept = []
        for filename in find_all_files(path, exclude):
            problem = file_problem(filename)
            if problem:
                log.warning("Not copying %s: it %s", display_name(filename), problem)
            elif filename.endswith(RESULTS_SUFFIX):
                # the grader's results (review reasons included) stay with the instructor: never copied
                # into feedback/, and one a student submitted never reaches autograded/
                log.info("Not copying %s: grader results stay in autograded/", display_name(filename))
            else:
                kept.append(filename)
        return kept

    find_regular_files._nb10_guard = True
    return find_regular_files


def _copying_regular_files_only(init_assignment):
    @wraps(init_assignment)
    def init_assignment_guarded(self, assignment_id, student_id):
        token = _copying_for.set(self.log)
        try:
            return init_assignment(self, assignment_id, student_id)
        finally:
            _copying_for.reset(token)

    return init_assignment_guarded


def _linked_folder(root: str, folder: str, step: str) -> str | None:
    """The first folder below the course's step folder (submitted/, autograded/) on the way to
    `folder` that is a symbolic link, as a reason; None when there is none."""
    rel = os.path.relpath(folder, root)
    if rel.startswith(os.pardir):
        return None
    path = root
    for part in rel.split(os.sep):
        path = os.path.join(path, part)
        if part not in (step, os.curdir) and os.path.islink(path):
            return f"{display_name(path)} is a symbolic link (links are never followed)"
    return None


def _no_known_notebook(coursedir, assignment_id: str, notebooks: list[str]) -> str | None:
    """Why autograde would grade nothing in a folder whose notebooks all have other names than the
    assignment's (nbgrader skips them as unknown, then fails with "did you forget to run
    generate_assignment?"); None when one has the right name or the gradebook does not know the
    assignment."""
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
            names = [nb.name for nb in gb.find_assignment(assignment_id).notebooks]
    except MissingEntry:
        return None
    found = [os.path.basename(n) for n in notebooks]
    if not names or any(os.path.splitext(n)[0] in names for n in found):
        return None
    expected = " or ".join(f"{n}.ipynb" for n in names)
    holds = f" (it holds {', '.join(display_name(n) for n in found)})" if found else ""
    return (f"no {expected} in it{holds}: nbgrader grades a notebook only under the assignment's name; rename it, "
            "or grade with `autograder autograde`, which grades a folder's only notebook under that name")


def _refusing_unsafe_folders(init_notebooks):
    @wraps(init_notebooks)
    def init_notebooks_guarded(self):
        from nbgrader.converters import Autograde
        from nbgrader.converters.base import NbGraderException

        init_notebooks(self)
        self._nb10_refused = refused = []
        regexp = self._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True)
        step = os.path.normpath(self._input_directory)
        for folder in sorted(self.assignments):
            match = re.match(regexp, folder)
            problem = student_id_problem(match.group("student_id")) if match else None
            problem = problem or _linked_folder(self.coursedir.root, folder, step)
            if problem is None:
                kept = []
                for notebook in self.assignments[folder]:
                    why = file_problem(notebook)
                    if why:
                        self.log.warning("Not processing %s: it %s", display_name(notebook), why)
                    else:
                        kept.append(notebook)
                if not kept and self.assignments[folder]:
                    problem = "no notebook in it can be read safely: " + "; ".join(
                        f"{os.path.basename(n)} {file_problem(n)}" for n in self.assignments[folder])
                elif match and isinstance(self, Autograde):
                    problem = _no_known_notebook(self.coursedir, match.group("assignment_id"), kept)
                self.assignments[folder] = kept
            if problem:
                del self.assignments[folder]
                refused.append((folder, problem))
                self.log.error("Not processing %s: %s", display_name(folder), problem)
        if not self.assignments and refused:
            raise NbGraderException("No submission could be processed safely (see the errors above).")

    return init_notebooks_guarded


def _failing_when_refused(convert_notebooks):
    @wraps(convert_notebooks)
    def convert_notebooks_guarded(self):
        from nbgrader.converters.base import NbGraderException

        convert_notebooks(self)
        refused = getattr(self, "_nb10_refused", [])
        if refused:
            for folder, problem in refused:
                self.log.error("Not processed: %s: %s", display_name(folder), problem)
            raise NbGraderException(f"{len(refused)} submission folder(s) were not processed: nothing in them "
                                    "can be read safely (see above); the others were.")

    return convert_notebooks_guarded


def _checked_timestamp(get_existing_timestamp):
    @wraps(get_existing_timestamp)
    def get_existing_timestamp_guarded(self, dest_path):
        path = os.path.join(dest_path, "timestamp.txt")
        if os.path.lexists(path):
            problem = file_problem(path, TIMESTAMP_MAX_BYTES)
            if problem:
                self.log.warning("Ignoring %s: it %s", display_name(path), problem)
                return None
        return get_existing_timestamp(self, dest_path)

    return get_existing_timestamp_guarded


def guard_nbgrader() -> None:
    """Install the hooks described above into nbgrader (once per process; idempotent)."""
    from nbgrader.converters import Autograde, GenerateFeedback
    from nbgrader.converters import base
    from nbgrader.coursedir import CourseDirectory

    if getattr(base.find_all_files, "_nb10_guard", False):
        return
    for converter in (Autograde, GenerateFeedback):
        converter.init_notebooks = _refusing_unsafe_folders(converter.init_notebooks)
        converter.init_assignment = _copying_regular_files_only(converter.init_assignment)
        converter.convert_notebooks = _failing_when_refused(converter.convert_notebooks)
    CourseDirectory.get_existing_timestamp = _checked_timestamp(CourseDirectory.get_existing_timestamp)
    base.find_all_files = _regular_files_only(base.find_all_files)


# --- Feedback HTML ---------------------------------------------------------------------------
#
# nbconvert's HTMLExporter.sanitize_html does not reach markdown cells in nbgrader 0.9.6's
# feedback: its template (formgrader/templates/feedback/index.html.j2) renders them with
# `markdown2html` and no `clean_html`, so a student's <script> survives. This exporter cleans
# what markdown2html returns instead, with an allow-list that keeps what markdown produces
# (headings, emphasis, lists, tables, code, links, images); anything else is shown escaped, and
# attributes such as onerror and URLs such as javascript: are dropped.

MARKDOWN_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub",
    "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"})
MARKDOWN_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})  # data: for images only, see below
_COMMON_ATTRIBUTES = ("class", "id", "title")
_TAG_ATTRIBUTES = {"a": ("href", "name"), "img": ("src", "alt", "width", "height"), "ol": ("start",),
                   "td": ("align", "colspan", "rowspan"), "th": ("align", "colspan", "rowspan")}


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in _COMMON_ATTRIBUTES:
        return True
    if name not in _TAG_ATTRIBUTES.get(tag, ()):
        return False
    # a data: URL is an embedded image (nbconvert inlines attachments so); never a link target
    return not (tag == "a" and name == "href" and value.strip().lower().startswith("data:"))


def clean_markdown_html(html: str) -> str:
    """Rendered markdown with everything that could run script removed or escaped."""
    return bleach.clean(html, tags=MARKDOWN_TAGS, attributes=_allowed_attribute, protocols=MARKDOWN_PROTOCOLS,
                        strip=False, strip_comments=True)


class SanitizingHTMLExporter(HTMLExporter):
    """nbgrader's feedback exporter (HTMLExporter with its 'feedback' template), except that the
    HTML of every markdown cell (and of a grader's comment) passes through clean_markdown_html.
    Configured as c.GenerateFeedback.exporter_class in nbgrader_config.py."""

    @pass_context
    def markdown2html(self, context, source):
        return clean_markdown_html(super().markdown2html(context, source))
