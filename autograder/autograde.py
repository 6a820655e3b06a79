"""`autograder autograde ASSIGNMENT`: a whole class, in parallel, resumable, into nbgrader's gradebook.

Every submission under submitted/<student>/<assignment>/ is graded with the engine (warm
sandboxes, `workers` at a time). Each finished result then goes through nbgrader's own
autograde for that student, in this process and one at a time, with SandboxAutograde handed
the result instead of grading again: nbgrader writes the gradebook, the autograded notebook
and its results.json exactly as `nbgrader autograde` does, so generate_feedback, export and
formgrader follow unchanged, and the gradebook has a single writer.

Resuming: a submission counts as done when its autograded results.json records the SHA-256 of
the submitted notebook it graded and the gradebook holds its grades. A run that is interrupted,
even by kill -9, therefore regrades only what is missing or changed; `force` regrades all.

One bad folder never stops a class: discovery looks at submitted/ without following a link or
opening anything that is not a regular file, and refuses (with a reason, listed in the summary)
a student folder that cannot be graded safely: a symlinked student or assignment folder, a
notebook that is a link, a folder, a FIFO or a device, or larger than 50 MB, and a name that is
not UTF-8 or that nbgrader would misread (glob characters, control characters, white space at
an end). The others are graded. nbgrader's own copying of the folder is limited to its regular
files (sandboxautograde.guard_nbgrader). A folder without the assignment's notebook whose only
notebook has another name (`notebook10-Copy1.ipynb`, a resubmission renamed `notebook10-1.ipynb`)
has that one graded, and recorded by nbgrader as the assignment's notebook; a folder with no
notebook, or several, is listed. So every submitted/<student>/<assignment>/ ends graded or listed;
`ungraded()` names the ones without a current grade, for exports to warn about.

The summary (`print_summary`) ends a run with a row per student (items, total, flags), the class
mean, and the lists: cells stopped by the cell time limit, submissions flagged for review,
unreadable notebooks, notebooks graded under another name, folders not graded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from autograder import engine, gradingconfig, plugins, results, sandbox
from autograder.course import COURSE, Course
from autograder.progress import Progress
from autograder.sandboxautograde import (MAX_FILE_BYTES, Refused, SandboxAutograde, display_name, file_kind,
                                         file_problem, guard_nbgrader, read_regular, student_id_problem)

MAX_NOTEBOOK_BYTES = MAX_FILE_BYTES

class AutogradeError(RuntimeError):
    pass


@dataclass
class Summary:
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    results: dict[str, engine.Result] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)        # folder (as printable) -> why it was not graded
    left_out: dict[str, list[str]] = field(default_factory=dict)  # student -> files beside the notebook not copied
    other_notebook: dict[str, str] = field(default_factory=dict)  # student -> notebook graded, not the assignment's
    recorded: dict[str, dict] = field(default_factory=dict)  # student -> results.json (graded now or before)


def read_submission(path: Path) -> bytes:
    """A submitted notebook's bytes; Refused for a link, a special file or one over the size limit."""
    return read_regular(path, MAX_NOTEBOOK_BYTES)


def sha256(path: Path) -> str:
    return hashlib.sha256(read_submission(path)).hexdigest()


def discover(course: Course, assignment: str) -> tuple[dict[str, Path], dict[str, str]]:
    """(student -> submitted notebook, refused folder -> reason), without following a link or
    opening anything: every name under submitted/ is handled as bytes, every entry by lstat.

    A student folder without this assignment is not this run's business and is not listed; a
    stray file directly in submitted/ is not a student folder."""
    found: dict[str, Path] = {}
    refused: dict[str, str] = {}
    top = os.fsencode(course.root / "submitted")
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except FileNotFoundError:
        return found, refused
    for entry in entries:
        shown = display_name(entry.name)
        try:
            is_link, is_dir = entry.is_symlink(), entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if is_link:
            refused[shown] = "the student folder is a symbolic link (links are never followed)"
            continue
        if not is_dir:
            continue
        folder = os.path.join(entry.path, os.fsencode(assignment))
        try:
            mode = os.lstat(folder).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            refused[shown] = f"its {assignment} folder cannot be examined ({exc.strerror})"
            continue
        problem = student_id_problem(entry.name)
        if problem is None and stat.S_ISLNK(mode):
            problem = f"its {assignment} folder is a symbolic link (links are never followed)"
        elif problem is None and not stat.S_ISDIR(mode):
            problem = f"its {assignment} is not a folder"
        if problem is None:
            notebook = os.path.join(folder, os.fsencode(Course.notebook(assignment)))
            why = file_problem(notebook, MAX_NOTEBOOK_BYTES)
            if why == "is missing":
                notebook, problem = only_notebook(folder, assignment)
            elif why:
                problem = f"{assignment}/{Course.notebook(assignment)} {why}"
        if problem:
            refused[shown] = problem
        else:
            found[entry.name.decode("utf-8")] = Path(os.fsdecode(notebook))
    return found, refused


def only_notebook(folder: bytes, assignment: str) -> tuple[bytes, str | None]:
    """The folder's one notebook where the expected one is missing (a Jupyter copy,
    `notebook10-Copy1.ipynb`, or a resubmission that `zip_collect` renamed `notebook10-1.ipynb`),
    and None; else a reason to list the folder with. Only the folder's own entries count
    (`.ipynb_checkpoints/` is not looked into), and each is judged by lstat alone."""
    expected = Course.notebook(assignment)
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.lower().endswith(b".ipynb"))
    except OSError as exc:
        return folder, f"its {assignment} folder cannot be listed ({exc.strerror})"
    if not names:
        return folder, f"no {expected} in its {assignment} folder, and no other notebook"
    if len(names) > 1:
        return folder, (f"no {expected} in its {assignment} folder but {len(names)} notebooks: "
                        f"{', '.join(display_name(n) for n in names)} (rename the one to grade {expected})")
    notebook = os.path.join(folder, names[0])
    why = file_problem(notebook, MAX_NOTEBOOK_BYTES)
    return notebook, f"no {expected}; its only notebook, {display_name(names[0])}, {why}" if why else None


def left_out(notebook: Path) -> list[str]:
    """What in a submission folder is not copied to autograded/ (links, special files, files over
    the limit), as 'name (what it is)'; the notebook itself has been checked already."""
    out = []
    top = os.fsencode(notebook.parent)
    for dirpath, dirnames, filenames in os.walk(top):  # does not descend into a linked folder
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size <= MAX_FILE_BYTES or stat.S_ISDIR(st.st_mode):
                continue
            what = f"{st.st_size / 2**20:.0f} MB" if stat.S_ISREG(st.st_mode) else file_kind(st.st_mode)
            out.append(f"{display_name(os.path.relpath(path, top))} ({what})")
    return sorted(out)


def _load_config(course: Course, db_url: str | None):
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader runs `alembic` by name: make this environment's tools findable
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    if not course.config_file.exists():
        raise AutogradeError(f"{course.config_file} not found: run this in the course directory (the repository root).")
    config = PyFileConfigLoader(course.config_file.name, path=str(course.root)).load_config()
    coursedir = CourseDirectory(config=config)
    coursedir.root = str(course.root)
    if db_url:
        coursedir.db_url = db_url
    return NbGraderAPI(coursedir=coursedir, config=config), coursedir, config


class _SchemaCheckedOnce:
    """`jsonschema` as nbgrader's cell-metadata validator uses it, except that `validate` checks
    each schema against its meta-schema once, not on every call (nbgrader validates every cell
    of the notebook twice per submission; that repeated check was a fifth of the recording
    time). The validation of the metadata itself, and the error raised, are jsonschema's own."""

    def __init__(self, real) -> None:
        self._real, self._validators = real, {}

    def validate(self, instance, schema) -> None:
        entry = self._validators.get(id(schema))
        if entry is None or entry[0] is not schema:
            cls = self._real.validators.validator_for(schema)
            cls.check_schema(schema)
            entry = self._validators[id(schema)] = (schema, cls(schema))
        error = self._real.exceptions.best_match(entry[1].iter_errors(instance))
        if error is not None:
            raise error

    def __getattr__(self, name: str):
        return getattr(self._real, name)


@contextmanager
def _nbgrader_speedups():
    """Two of nbgrader's per-submission costs, undone when the run ends; what it records is the same.

    - Its Gradebooks share one SQLAlchemy engine per database. nbgrader opens a new engine for
      every Gradebook (about nine per submission), and a new engine starts with an empty cache
      of compiled SQL statements: compiling the same queries again was about a quarter of the
      time nbgrader took to record a submission. Gradebook.close() still disposes of the
      engine's connections; the compiled statements survive that.
    - Its cell-metadata validator checks its schema once (see _SchemaCheckedOnce).
    Measured on this class: 0.21 s per submission before, 0.12 s after."""
    import nbgrader.api as nbgrader_api
    import nbgrader.nbgraderformat.common as nbgrader_format

    original_engine, original_jsonschema = nbgrader_api.create_engine, nbgrader_format.jsonschema
    engines: dict[tuple, object] = {}

    def shared(url, *args, **kwargs):
        key = (str(url), args, tuple(sorted(kwargs.items())))
        if key not in engines:
            engines[key] = original_engine(url, *args, **kwargs)
        return engines[key]

    nbgrader_api.create_engine = shared
    nbgrader_format.jsonschema = _SchemaCheckedOnce(original_jsonschema)
    try:
        yield
    finally:
        nbgrader_api.create_engine, nbgrader_format.jsonschema = original_engine, original_jsonschema
        for eng in engines.values():
            eng.dispose()


def _already_done(course: Course, assignment: str, student: str, submitted: Path, graded_in_db: set[str]) -> bool:
    try:
        recorded = json.loads(course.results(student, assignment).read_text())["extra_data"]["submission_sha256"]
        return recorded == sha256(submitted) and student in graded_in_db
    except (OSError, ValueError, KeyError, TypeError):  # Refused is a ValueError
        return False


def _ensure_assignment(api, db_url: str, assignment: str) -> None:
    """A gradebook that does not know the assignment yet (a new PostgreSQL one, say) learns it the
    way nbgrader teaches it: generate_assignment, which records the cells and their checksums."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            gb.find_assignment(assignment)
            return
        except MissingEntry:
            pass
    outcome = api.generate_assignment(assignment, force=True, create=True)
    if not outcome.get("success"):
        raise AutogradeError(f"the gradebook {db_url} has no assignment {assignment!r} and "
                             f"`nbgrader generate_assignment` failed:\n{outcome.get('log', '')[-2000:]}")


def _graded_in_gradebook(db_url: str, assignment: str) -> set[str]:
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(db_url) as gb:
            done = set()
            for submission in gb.assignment_submissions(assignment):
                grades = [g for nb in submission.notebooks for g in nb.grades]
                if grades and all(g.auto_score is not None for g in grades if g.cell_type == "code"):
                    done.add(submission.student_id)
            return done
    except MissingEntry:
        return set()


def _record_directly(course: Course, db_url: str, assignment: str, result: engine.Result) -> None:
    """The engine's scores in the gradebook, and results.json, for a notebook nbgrader cannot process."""
    from nbgrader.api import Gradebook, MissingEntry

    by_cell = {result.items[item]: score for item, (score, _) in result.item_scores().items()}
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(result.key)
        try:
            submission = gb.find_submission(assignment, result.key)
        except MissingEntry:
            submission = gb.add_submission(assignment, result.key)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if grade.cell_type == "code":
                    grade.auto_score = by_cell.get(grade.name, 0.0)
            notebook.flagged = True  # recorded without nbgrader: always for a person to look at
        gb.db.commit()
    course.autograded(result.key, assignment).mkdir(parents=True, exist_ok=True)
    results.write_gradescope(result, course.results(result.key, assignment))


@contextmanager
def _shown_as_submitted(api, course: Course, assignment: str, student: str, notebook: Path):
    """nbgrader records only a notebook named as the assignment's (ASSIGNMENT.ipynb; any other it skips as
    unknown): for one under another name, it is shown a copy of the folder in which the notebook
    has that name, so that the gradebook, autograded/ and feedback/ hold it under that name. The copy
    holds what nbgrader would copy from the folder itself (its regular files within the size limit)
    and is removed when nbgrader is done."""
    if notebook.name == Course.notebook(assignment):
        yield
        return
    staged = course.staged(student, assignment)
    shutil.rmtree(course.staging, ignore_errors=True)  # what a killed run left
    top = os.fsencode(notebook.parent)
    for dirpath, dirnames, filenames in os.walk(top):  # does not descend into a linked folder
        dirnames[:] = [d for d in dirnames if d != b".ipynb_checkpoints"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if name.lower().endswith(b".ipynb") or file_problem(path):
                continue  # not copied by nbgrader either (left_out lists what is not)
            try:
                data = read_regular(path)
            except (OSError, Refused):  # changed since it was looked at: left out, as nbgrader would
                continue
            target = os.path.join(os.fsencode(staged), os.path.relpath(path, top))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            Path(os.fsdecode(target)).write_bytes(data)
    staged.mkdir(parents=True, exist_ok=True)
    (staged / Course.notebook(assignment)).write_bytes(read_submission(notebook))
    submitted = api.coursedir.submitted_directory
    api.coursedir.submitted_directory = course.STAGING
    try:
        yield
    finally:
        api.coursedir.submitted_directory = submitted
        shutil.rmtree(course.staging, ignore_errors=True)


def _record(api, course: Course, db_url: str, assignment: str, result: engine.Result, notebook: Path) -> None:
    """One result into the gradebook and autograded/, through nbgrader's own autograde."""
    SandboxAutograde.precomputed[result.key] = result
    try:
        with _shown_as_submitted(api, course, assignment, result.key, notebook):
            outcome = api.autograde(assignment, result.key, force=True, create=True)
    finally:
        SandboxAutograde.precomputed.pop(result.key, None)
    if not outcome.get("success"):
        # nbgrader could not process this notebook (unreadable, or metadata it chokes on):
        # the scores still go into the gradebook, with the reason for a human to see
        reason = (outcome.get("error") or outcome.get("log") or "").strip().splitlines()
        result.problem = result.problem or "nbgrader could not process the notebook: " + (
            reason[-1] if reason else "no reason given") + "; its scores were recorded directly"
        _record_directly(course, db_url, assignment, result)


def main(*, assignment: str, course: Course = COURSE, workers: int | None = None, force: bool = False,
         db_url: str | None = None, seed: int | None = None, limits: sandbox.Limits | None = None,
         scheduler: str | None = None, unsafe: bool | None = None, progress_stream=None, batch: int = 4,
         pool: sandbox.WarmPool | None = None) -> Summary:
    """Grade what is new or changed; `pool`, if given, is a warm pool the caller started (and closes).
    Settings left None are the course's (c.GradingConfig in its nbgrader_config.py)."""
    started = time.perf_counter()
    # nbgrader's gradebook API trips SQLAlchemy 2's autoflush warning on every new submission
    # (stock `nbgrader autograde` prints the same); it is noise on an instructor's terminal.
    warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session", module=r"nbgrader\.")
    guard_nbgrader()  # also where the course's nbgrader_config.py does not (an older copy of it)
    try:
        plugins.get(assignment, course)
    except plugins.NoPlugin as exc:
        raise AutogradeError(str(exc)) from None
    api, coursedir, config = _load_config(course, db_url)
    try:
        settings = gradingconfig.from_config(config, seed=seed, unsafe_no_sandbox=unsafe)
    except gradingconfig.ConfigError as exc:
        raise AutogradeError(str(exc)) from None
    seed, unsafe = settings.seed, settings.unsafe_no_sandbox
    limits = limits or settings.limits()
    workers = workers or settings.workers or None
    submissions, refused = discover(course, assignment)
    if not submissions and not refused:
        raise AutogradeError(f"no submissions found under {course.root / 'submitted'}/*/{assignment}/"
                             f"{Course.notebook(assignment)}")
    summary = Summary(refused=refused)
    if not submissions:
        summary.seconds = time.perf_counter() - started
        return summary
    _ensure_assignment(api, coursedir.db_url, assignment)
    done = set() if force else _graded_in_gradebook(coursedir.db_url, assignment)
    todo = {}
    for student, path in submissions.items():
        if path.name != Course.notebook(assignment):
            summary.other_notebook[student] = display_name(path.name)
        if not force and _already_done(course, assignment, student, path, done):
            summary.skipped.append(student)
            summary.recorded[student] = _recorded(course, student, assignment)
        else:
            todo[student] = path
            if beside := left_out(path):
                summary.left_out[student] = beside
    requested_workers = workers
    workers = workers or os.cpu_count() or 1
    bar = Progress(len(todo), f"grading {assignment}", stream=progress_stream)
    hashes: dict[str, str] = {}

    def load(student: str, path: Path) -> bytes:
        # read once, when its sandbox starts: the hash recorded is that of the bytes graded
        data = read_submission(path)
        hashes[student] = hashlib.sha256(data).hexdigest()
        return data

    items = [(student, (lambda s=student, p=path: load(s, p))) for student, path in todo.items()]
    own_pool, dask = None, None
    if scheduler:
        from autograder.scaleout import DaskRunner

        try:
            dask = DaskRunner(scheduler, seed=seed, limits=limits, unsafe=unsafe, course=course, assignment=assignment)
        except sandbox.SandboxUnavailable as exc:
            raise AutogradeError(str(exc)) from None
        workers = requested_workers or dask.slots
    elif todo and pool is None:
        pool = own_pool = sandbox.warm_pool(workers, unsafe)
    try:
        with _nbgrader_speedups():
            for result in engine.grade_stream(items, seed=seed, limits=limits, unsafe=unsafe, workers=workers,
                                              batch=batch, pool=pool, runner=dask.run if dask else None,
                                              course=course, assignment=assignment):
                result.submission_sha256 = hashes.get(result.key)
                _record(api, course, coursedir.db_url, assignment, result, todo[result.key])
                summary.graded.append(result.key)
                summary.results[result.key] = result
                summary.recorded[result.key] = results.gradescope(result)
                bar.advance(note=result.key)
    finally:
        bar.close()
        if own_pool is not None:
            own_pool.close()
        if dask is not None:
            dask.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _recorded(course: Course, student: str, assignment: str) -> dict:
    """A student's results.json, or {} where it cannot be read."""
    try:
        data = json.loads(course.results(student, assignment).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


NOT_GRADED_YET = "not graded yet: run `autograder autograde {assignment}`"
CHANGED_SINCE = "its notebook changed since it was graded: run `autograder autograde {assignment}` again"


def ungraded(course: Course, assignment: str) -> dict[str, str]:
    """Every submitted/<student>/<assignment>/ folder that has no current grade, with the reason
    (as the summary prints them): the folders discovery refuses, and the students found whose
    results.json is missing or records another notebook than the one submitted now. For exports
    and reports to warn about; reads files only (no gradebook, no nbgrader)."""
    found, missing = discover(course, assignment)
    for student, path in found.items():
        recorded = _recorded(course, student, assignment).get("extra_data")
        if not isinstance(recorded, dict):
            missing[student] = NOT_GRADED_YET.format(assignment=assignment)
            continue
        graded_sha = recorded.get("submission_sha256")
        try:
            changed = bool(graded_sha) and graded_sha != sha256(path)
        except (OSError, Refused) as exc:
            missing[student] = f"its notebook cannot be read ({exc})"
            continue
        if changed:
            missing[student] = CHANGED_SINCE.format(assignment=assignment)
    return dict(sorted(missing.items()))


def _extra(data: dict) -> dict:
    extra = data.get("extra_data")
    return extra if isinstance(extra, dict) else {}


def _flags(student: str, data: dict, summary: Summary) -> list[str]:
    extra = _extra(data)
    flags = {"unreadable": extra.get("broken"), "timed out": extra.get("timed_out"),
             "review": extra.get("needs_review"), "other notebook": student in summary.other_notebook}
    return [flag for flag, on in flags.items() if on]


def _table(summary: Summary, stream) -> None:
    """One row per student graded now or before (items, total, flags), then the class mean."""
    rows = [(s, d) for s, d in sorted(summary.recorded.items()) if isinstance(_extra(d).get("items"), dict)]
    if not rows:
        return
    maxima = {item: v["max_score"] for item, v in _extra(rows[0][1])["items"].items()}
    heads = [f"{item.split('_')[-1]}/{points:g}" for item, points in maxima.items()]
    width = max(len("student"), *(len(student) for student, _ in rows))
    print(f"{'student':<{width}}  " + "  ".join(f"{h:>{max(len(h), 5)}}" for h in heads)
          + f"  {'total':>6}  flags", file=stream)
    for student, data in rows:
        scores = [_extra(data)["items"].get(item, {}).get("score", 0.0) for item in maxima]
        print(f"{student:<{width}}  " + "  ".join(f"{v:>{max(len(h), 5)}.2f}" for v, h in zip(scores, heads))
              + f"  {data['score']:>6.2f}  {', '.join(_flags(student, data, summary))}".rstrip(), file=stream)
    totals = [data["score"] for _, data in rows]
    print(f"mean of {len(totals)}: {sum(totals) / len(totals):.2f} / {sum(maxima.values()):g} "
          f"(lowest {min(totals):.2f}, highest {max(totals):.2f})", file=stream)


def _stopped(cell: dict) -> str:
    if cell.get("hung"):
        return f"{cell['label']} held the interpreter and was not run again"
    return f"{cell['label']} stopped after {cell['seconds']:g} s"


def print_summary(summary: Summary, stream=sys.stdout) -> None:
    """What `autograder autograde` ends with: counts, a table of the students graded (now or
    before), and who needs a look and why: cells stopped by the time limit, review flags,
    unreadable notebooks, notebooks graded under another name, folders not graded."""
    print(f"graded {len(summary.graded)}, already graded and unchanged {len(summary.skipped)} "
          f"in {summary.seconds:.1f} s", file=stream)
    _table(summary, stream)
    extras = {s: _extra(d) for s, d in sorted(summary.recorded.items())}
    lists = {
        "timed out ({}; the cells after a stopped cell ran without it, scores unchanged)":
            {s: "; ".join(map(_stopped, e["timed_out"])) for s, e in extras.items() if e.get("timed_out")},
        "flagged for review ({})":
            {s: f"needs review: {e['needs_review']}" for s, e in extras.items() if e.get("needs_review")},
        "unreadable ({})": {s: e["broken"] for s, e in extras.items() if e.get("broken")},
        "graded under another name ({})":
            {s: f"graded {name} (the only notebook in the folder)" for s, name in sorted(summary.other_notebook.items())},
    }
    for title, lines in lists.items():
        if lines:
            print(title.format(len(lines)) + ":", file=stream)
            for student, line in lines.items():
                print(f"  {student}: {line}", file=stream)
    for student, files in sorted(summary.left_out.items()):
        print(f"  {student}: graded; left out of autograded/ (links are never followed): {', '.join(files)}",
              file=stream)
    if summary.refused:
        print(f"not graded {len(summary.refused)} (fix or remove these folders under submitted/, then run again):",
              file=stream)
        for name, reason in sorted(summary.refused.items()):
            print(f"  {name}: not graded: {reason}", file=stream)
