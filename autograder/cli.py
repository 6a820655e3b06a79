"""The `autograder` command line: one subcommand per job; it parses and forwards."""

from __future__ import annotations

import argparse
import difflib
import gc
import os
import sys
from pathlib import Path

from autograder import __version__

EXAMPLES = """\
examples:
  autograder grade submitted/alice/{a}/{a}.ipynb -o results.json
  autograder autograde {a} --workers 2        # the whole class, into nbgrader's gradebook
  autograder report {a} --out report/         # plots, report.html, scores.csv
  autograder export {a} --format canvas --out canvas.csv --roster students.csv
  autograder release      # nbgrader generate_assignment, each assignment: source/{a}/ -> release/{a}/
  autograder solutions    # nbgrader generate_solution (executed) -> solutions/{a}/
  autograder demo         # what `make demo` runs (each assignment with an example class)
  autograder audit        # how well the graders tell mistakes from correct answers (mutants vs an oracle)
  autograder gradescope --out autograder.zip   # the zip to upload as a Gradescope autograder
"""
GRADESCOPE_EXAMPLES = """\
examples:
  autograder gradescope --out autograder.zip                   # make gradescope
  autograder gradescope --out autograder.zip --hidden hidden   # hidden cases' details never shown to students
  autograder gradescope --out autograder.zip --seed 7

The zip holds setup.sh and run_autograder (Gradescope's specification), this package with its
graders, the course's config, source and release, and the pinned requirements. Upload it as the
assignment's autograder (Ubuntu 22.04 base). Each run grades the one .ipynb submitted and writes
/autograder/results/results.json, saying in extra_data.isolation how the notebook was isolated.
exit status: 0 when the zip was written; 2 when it could not be (the reason is printed).
"""
AUDIT_EXAMPLES = """\
examples:
  autograder audit                    # every mutant of the solution's answer cells (make audit, minutes)
  autograder audit --subset           # the fixed dozen CI grades
  autograder audit --json audit.json  # also every verdict, machine-readable

Each mutant changes one thing in one answer cell; the engine grades them all as one class, and an
oracle runs each in plain PyTorch beside the solution. Printed: the kill rate (mistakes that lose
points in their own item), the survivors, and equivalent mutants that lost points.
exit status: 0 when the unchanged solution keeps 10/10 and no equivalent mutant loses points; 1 otherwise.
"""
AUTOGRADE_EXAMPLES = """\
examples:
  autograder autograde {a}                   # every submitted/*/{a}, CPU-count at a time
  autograder autograde {a} --workers 8 --force
  autograder autograde {a} --db postgresql://grader@127.0.0.1:5432/course
  autograder autograde {a} --scheduler tcp://10.0.0.5:8786   # on a Dask cluster

An interrupted run (even kill -9) picks up where it stopped: submissions already graded and
unchanged are skipped. Then: nbgrader generate_feedback {a}; nbgrader export.
A student folder that cannot be graded safely (a symbolic link, a notebook that is a link, a
folder, a FIFO or over 50 MB, a name that is not UTF-8 or has * ? [) is listed at the end as
"NAME: not graded: REASON"; every other student is graded (exit status 0).
"""
GRADE_EXAMPLES = """\
examples:
  autograder grade {a}.ipynb                     # print the scores
  autograder grade {a}.ipynb -o results.json     # also write Gradescope's results.json
  autograder grade {a}.ipynb --seed 7            # regrade with another seed (recorded in the results)

exit status: 0 when grading ran (whatever the score); 2 for a bad argument or a missing file;
3 when the notebook could not be graded (no sandbox, or a grader error: the results say which).
"""
REPORT_EXAMPLES = """\
examples:
  autograder report {a} --out report/                # report.html, scores.csv and four PNG plots
  autograder report {a} --out /tmp/nb10 --course ~/courses/ai-imaging
  autograder report {a} --out report/ --db postgresql://grader@127.0.0.1:5432/course

Scores come from the gradebook; failed checks, messages, the seed and review flags from the
results.json files `autograder autograde` writes next to each autograded notebook.
exit status: 0 when the report was written; 2 for a bad argument or missing input (unknown
assignment, no gradebook, nothing graded yet, --out naming a file).
"""
EXPORT_EXAMPLES = """\
examples:
  autograder export {a} --format canvas --out grades_canvas.csv --roster students.csv
  autograder export {a} --format canvas --out items_canvas.csv --columns items
  autograder export {a} --format moodle --out grades_moodle.csv --roster students.csv
  autograder export {a} --format gradescope --out gradescope/   # gradescope/STUDENT/results.json

canvas: Student, ID, SIS User ID, SIS Login ID, Section, the grade columns, and a second row
"Points Possible" (Grades > Import reads it as Canvas's own export writes it). moodle: Username,
Email address, the grade columns; in Moodle's import map Email address to useremail (or Username
to username). --columns: total (default: one column "{a}"), items ("{a}: item"
each) or both (import only one kind, or the points count twice).
--roster: a CSV, one row per student: student_id (the nbgrader id, required) and any of
canvas_id (or lms_user_id), sis_user_id, sis_login_id, section, email, username, name. Without
it, nbgrader's student table (nbgrader db student import) gives names, emails and lms_user_id;
a student with no Canvas id gets the nbgrader id as SIS Login ID.
gradescope: the results.json files are for Gradescope's API or an autograder bundle, not for
upload on Gradescope's web pages. nbgrader's own `nbgrader export` still works as before.
exit status: 0 when every student was exported; 2 for a bad argument or missing input; 3 when
the files were written but some students need attention, listed on stderr: known (roster,
student table) or submitted but without a grade, graded but not on the roster, or (gradescope)
without results.json.
"""


def _course_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--course", type=Path, default=None,
                        help="course directory (default: the current one if it has nbgrader_config.py, else this repository)")


def _settings_options(parser: argparse.ArgumentParser, sandbox_flags: bool = True) -> None:
    """Flags that override the course's c.GradingConfig (nbgrader_config.py) for this run."""
    group = parser.add_argument_group("grading settings (default: c.GradingConfig in the course's nbgrader_config.py)")
    group.add_argument("--seed", type=int, default=None, help="seed for the hidden checks")
    group.add_argument("--cell-seconds", type=float, default=None, metavar="S", help="time limit of one cell")
    group.add_argument("--submission-seconds", type=float, default=None, metavar="S",
                       help="time limit of a whole submission")
    group.add_argument("--memory-mb", type=int, default=None, metavar="MB", help="memory of one submission's sandbox")
    group.add_argument("--cpus", type=float, default=None, help="CPUs one submission may use")
    group.add_argument("--processes", type=int, default=None, help="processes and threads of one submission")
    group.add_argument("--gpu", choices=["auto", "off"], default=None,
                       help="auto: submissions see this machine's GPU where it has one; off: never")
    if sandbox_flags:
        group.add_argument("--unsafe-no-sandbox", action="store_const", const=True, default=None, dest="unsafe",
                           help="run submissions WITHOUT isolation (only on a machine you trust with them)")


def _settings(command: str, args: argparse.Namespace, course):
    """The grading settings of this run (the course's, then the flags), or None after saying why not."""
    from autograder import gradingconfig

    flags = {"seed": args.seed, "cell_seconds": args.cell_seconds, "submission_seconds": args.submission_seconds,
             "memory_mb": args.memory_mb, "cpus": args.cpus, "processes": args.processes, "gpu": args.gpu,
             "unsafe_no_sandbox": getattr(args, "unsafe", None), "workers": getattr(args, "workers", None)}
    try:
        return gradingconfig.load(course.config_file, **flags)
    except gradingconfig.ConfigError as exc:
        print(f"autograder {command}: {exc}", file=sys.stderr)
        return None


def _course_and_assignment(command: str, args: argparse.Namespace):
    """The course, or None after saying why the assignment is not one of it."""
    from autograder.course import Course, course_here

    course = Course(args.course.resolve()) if args.course else course_here()
    known = course.assignments()
    if args.assignment not in known:
        close = difflib.get_close_matches(args.assignment, known, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else f" Assignments here: {', '.join(known) or 'none'}."
        print(f"autograder {command}: no assignment {args.assignment!r} in {course.root / 'source'}.{hint}",
              file=sys.stderr)
        return None
    return course


def _report(args: argparse.Namespace) -> int:
    from autograder import report

    if args.out is None:
        print("autograder report: --out DIR is required: the folder to write report.html, scores.csv and the "
              "plots into (it is created if missing).", file=sys.stderr)
        return 2
    course = _course_and_assignment("report", args)
    if course is None:
        return 2
    try:
        written = report.main(assignment=args.assignment, course=course, out=args.out, db_url=args.db_url)
    except report.ReportError as exc:
        print(f"autograder report: {exc}", file=sys.stderr)
        return 2
    for path in written.values():
        print(f"wrote {path}")
    return 0


EXPORT_ABSENT = ("autograder export: no grade exported for {count} student(s) (not in the file; the LMS keeps "
                 "what it has for them):")
EXPORT_NOT_IN_ROSTER = ("autograder export: not on the roster, so exported under their nbgrader id only "
                        "(the LMS may not find them): {students}.")
EXPORT_NO_EMAIL = ("autograder export: no email for {students}: map the import by Username, "
                   "or add an email column to --roster.")


def _export(args: argparse.Namespace) -> int:
    from autograder import export

    if args.out is None:
        what = "the folder to write STUDENT/results.json into" if args.format == "gradescope" else "the CSV file to write"
        print(f"autograder export: --out PATH is required: {what}.", file=sys.stderr)
        return 2
    course = _course_and_assignment("export", args)
    if course is None:
        return 2
    try:
        done = export.main(assignment=args.assignment, fmt=args.format, out=args.out, course=course,
                           db_url=args.db_url, columns=args.columns, roster=args.roster)
    except export.ExportError as exc:
        print(f"autograder export: {exc}", file=sys.stderr)
        return 2
    if args.format == "gradescope":
        print(f"wrote {len(done.written)} results.json under {args.out}")
        print(export.GRADESCOPE_NOTE)
    else:
        for path in done.written:
            print(f"wrote {path}")
    if done.differs:
        print(f"autograder export: the gradebook differs from the autograder's results for {', '.join(done.differs)} "
              "(manual grading?); their results.json keep the autograder's scores.", file=sys.stderr)
    if done.missing:
        print(f"autograder export: no results.json for {', '.join(done.missing)}: grade them with "
              f"`autograder autograde {args.assignment}` (stock nbgrader autograde writes none), then export again.",
              file=sys.stderr)
    if done.no_email:
        print(EXPORT_NO_EMAIL.format(students=", ".join(done.no_email)), file=sys.stderr)
    if done.not_in_roster:
        print(EXPORT_NOT_IN_ROSTER.format(students=", ".join(done.not_in_roster)), file=sys.stderr)
    if done.absent:
        print(EXPORT_ABSENT.format(count=len(done.absent)), file=sys.stderr)
        for student, why in done.absent.items():
            print(f"  {student}: {why}", file=sys.stderr)
    return 3 if done.missing or done.not_in_roster or done.absent else 0


def _early_pool(args: argparse.Namespace, sandbox):
    """A warm pool started before the course's settings are read, where the flags already say
    that submissions are sandboxed here (no --unsafe-no-sandbox, no scheduler); else None."""
    if getattr(args, "unsafe", None) or args.scheduler:
        return None
    try:
        sandbox.check_available()
        return sandbox.warm_pool(args.workers or os.cpu_count() or 1)
    except Exception:  # said below, once the settings say a sandbox is wanted (they may not)
        return None


def _pool_for(settings, workers: int, early, args: argparse.Namespace, sandbox):
    """The warm pool for these settings: the early one where it fits them, none where they grade
    without a sandbox or on a scheduler, else a new one (another number of workers). Raises
    SandboxUnavailable where the sandbox cannot start."""
    sandboxed = not settings.unsafe_no_sandbox and not args.scheduler
    if early is not None and sandboxed and early.workers == workers:
        return early
    if early is not None:
        early.close()
    if not sandboxed:
        return None
    sandbox.check_available()
    return sandbox.warm_pool(workers)


def _autograde(args: argparse.Namespace) -> int:
    from autograder import sandbox  # light: the grading modules are imported below, after the zygotes start

    course = _course_and_assignment("autograde", args)
    if course is None:
        return 2
    if args.workers is not None and args.workers < 1:
        print("autograder autograde: --workers must be at least 1.", file=sys.stderr)
        return 2
    # Zygotes import torch and friends for seconds: the first one starts now, before this process
    # spends its own seconds reading the course's settings (its nbgrader_config.py imports
    # nbgrader) and importing the graders. It runs no submission until the settings are known.
    pool = _early_pool(args, sandbox)
    try:
        settings = _settings("autograde", args, course)
    except BaseException:  # the course's config file exited or raised something unforeseen
        if pool is not None:
            pool.close()
        raise
    if settings is None:
        if pool is not None:
            pool.close()
        return 2
    workers = settings.workers or None
    try:
        pool = _pool_for(settings, workers or os.cpu_count() or 1, pool, args, sandbox)
    except sandbox.SandboxUnavailable as exc:
        print(f"autograder autograde: cannot grade: {exc}", file=sys.stderr)
        return 3
    try:
        from autograder import autograde

        try:
            summary = autograde.main(assignment=args.assignment, course=course, workers=workers,
                                     force=args.force, db_url=args.db_url, scheduler=args.scheduler,
                                     unsafe=settings.unsafe_no_sandbox, pool=pool, seed=settings.seed,
                                     limits=settings.limits())
        except autograde.AutogradeError as exc:
            print(f"autograder autograde: {exc}", file=sys.stderr)
            return 2
    finally:
        if pool is not None:
            pool.close()
    autograde.print_summary(summary)
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    from autograder import gradescope
    from autograder.course import Course, course_here

    course = Course(args.course.resolve()) if args.course else course_here()
    settings = _settings("gradescope", args, course)
    if settings is None:
        return 2
    try:
        out = gradescope.build(out=args.out, course=course, settings=settings, hidden=args.hidden,
                               assignment=args.assignment)
    except gradescope.BundleError as exc:
        print(f"autograder gradescope: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB): upload it as the Gradescope assignment's autograder")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from autograder import engine, results, sandbox
    from autograder.course import Course, course_here

    if not args.notebook.is_file():
        known = [str(p) for p in Path().glob("submitted/*/*/*.ipynb")] + [str(p) for p in Path().glob("*.ipynb")]
        close = difflib.get_close_matches(str(args.notebook), known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        print(f"autograder grade: {args.notebook} does not exist or is not a file.{hint}", file=sys.stderr)
        return 2
    course = Course(args.course.resolve()) if args.course else course_here()
    settings = _settings("grade", args, course)
    if settings is None:
        return 2
    from autograder import plugins

    try:
        plugin = plugins.get(args.assignment or plugins.of_notebook(args.notebook, course), course)
    except plugins.NoPlugin as exc:
        print(f"autograder grade: {exc}", file=sys.stderr)
        return 2
    if not settings.unsafe_no_sandbox:
        try:
            sandbox.check_available()
        except sandbox.SandboxUnavailable as exc:
            print(f"autograder grade: cannot grade: {exc}", file=sys.stderr)
            return 3
    result = engine.grade({args.notebook.name: args.notebook.read_bytes()}, seed=settings.seed,
                          limits=settings.limits(), unsafe=settings.unsafe_no_sandbox, assignment=plugin.id,
                          course=course)[args.notebook.name]
    print(results.summary_text(result))
    if args.output:
        results.write_gradescope(result, args.output)
        print(f"wrote {args.output}")
    if result.internal_errors:
        print("autograder grade: some checks hit a grader error (see results); grade those by hand.", file=sys.stderr)
        return 3
    return 0


def _audit_module(assignment: str | None):
    """The audit of an assignment's plug-in (its audit.py: add_arguments, run), or of the first that has one."""
    import importlib
    import importlib.util

    from autograder import plugins

    for name in [assignment] if assignment else plugins.known():
        try:
            module = plugins.get(name).module + ".audit"
        except plugins.NoPlugin:
            return None
        if importlib.util.find_spec(module) is not None:
            return importlib.import_module(module)
    return None


def _example_assignment() -> str:
    """The assignment the help's examples name: the course's first one (Course.first_assignment)."""
    from autograder.course import course_here

    try:
        return course_here().first_assignment
    except RuntimeError:  # a course with no assignment at all: the examples keep the placeholder
        return "ASSIGNMENT"


def main(argv: list[str] | None = None) -> int:
    example = _example_assignment()

    def ex(text: str) -> str:
        return text.replace("{a}", example)

    parser = argparse.ArgumentParser(prog="autograder", description=__doc__, epilog=ex(EXAMPLES),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"autograder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    grade = sub.add_parser("grade", help="grade one notebook in the sandbox; Gradescope JSON with -o",
                           epilog=ex(GRADE_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    grade.add_argument("notebook", type=Path, help="the submitted .ipynb")
    grade.add_argument("-o", "--output", type=Path, help="write Gradescope's results.json here")
    grade.add_argument("--assignment", default=None, help="the assignment it is a notebook of (default: the course's "
                                                          "only assignment with graders)")
    _settings_options(grade)
    _course_option(grade)
    auto = sub.add_parser("autograde", help="grade every submission of an assignment in parallel, into the gradebook",
                          epilog=ex(AUTOGRADE_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    auto.add_argument("assignment", help=ex("assignment id, e.g. {a}"))
    auto.add_argument("--workers", type=int, default=None,
                      help="submissions graded at once (default: GradingConfig.workers, else the CPU count)")
    auto.add_argument("--force", action="store_true", help="regrade everything, even unchanged and already graded")
    auto.add_argument("--db", dest="db_url", help="gradebook URL (default: sqlite:///gradebook.db), e.g. "
                                                  "postgresql://grader@127.0.0.1:5432/course")
    auto.add_argument("--scheduler", help="Dask scheduler address (tcp://HOST:PORT): run the submissions there")
    _course_option(auto)
    _settings_options(auto)
    rep = sub.add_parser("report", help="plots, an HTML page and a CSV of a graded assignment's scores",
                         epilog=ex(REPORT_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    rep.add_argument("assignment", help=ex("assignment id, e.g. {a}"))
    rep.add_argument("--out", type=Path, default=None, metavar="DIR",
                     help="folder to write the report into (created if missing)")
    _course_option(rep)
    rep.add_argument("--db", dest="db_url", help="gradebook URL (default: the course's gradebook.db)")
    exp = sub.add_parser("export", help="grades for Canvas or Moodle (CSV), or Gradescope (results.json per student)",
                         epilog=ex(EXPORT_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    exp.add_argument("assignment", help=ex("assignment id, e.g. {a}"))
    exp.add_argument("--format", required=True, choices=["canvas", "moodle", "gradescope"],
                     help="canvas or moodle: a CSV file; gradescope: a folder of results.json")
    exp.add_argument("--out", type=Path, default=None, metavar="PATH",
                     help="the CSV file (canvas, moodle) or folder (gradescope)")
    exp.add_argument("--columns", choices=["total", "items", "both"], default=None,
                     help="grade columns of a CSV: the total (default), one per item, or both")
    exp.add_argument("--roster", type=Path, default=None, metavar="CSV",
                     help="nbgrader student id -> Canvas id, SIS ids, section, email, username, name (see below)")
    _course_option(exp)
    exp.add_argument("--db", dest="db_url", help="gradebook URL (default: the course's gradebook.db)")
    for name, what in (("release", "generate the student version with nbgrader"),
                       ("solutions", "generate and execute the solutions with nbgrader"),
                       ("demo", "release, validate, show the blanks and grade an example class (make demo)")):
        chore = sub.add_parser(name, help=what, formatter_class=argparse.RawDescriptionHelpFormatter,
                               epilog=ex(f"examples:\n  autograder {name}            # every assignment of the course"
                                         f"\n  autograder {name} {{a}}"))
        chore.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                           help="the assignments (default: every one with a source folder"
                                + (" and an example class)" if name == "demo" else ")"))
    aud = sub.add_parser("audit", help="grade mutants of the solution and compare with a plain-PyTorch oracle",
                         epilog=ex(AUDIT_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    aud.add_argument("--assignment", default=None, help="the assignment whose plug-in has an audit "
                                                        "(default: the first that has one)")
    audit_module = _audit_module(None)
    if audit_module is not None:
        audit_module.add_arguments(aud)
    gs = sub.add_parser("gradescope", help="build the autograder zip to upload to Gradescope",
                        epilog=ex(GRADESCOPE_EXAMPLES), formatter_class=argparse.RawDescriptionHelpFormatter)
    gs.add_argument("--assignment", default=None, help="the assignment Gradescope grades (default: the course's first)")
    gs.add_argument("--out", type=Path, default=Path("autograder.zip"), metavar="ZIP",
                    help="where to write the zip (default: autograder.zip)")
    _settings_options(gs, sandbox_flags=False)
    gs.add_argument("--hidden", choices=["after_published", "hidden", "after_due_date", "visible"],
                    default="after_published", help="when students see the hidden cases' results "
                                                    "(Gradescope visibility; default after_published)")
    _course_option(gs)
    args = parser.parse_args(argv)

    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "grade":
            return _grade(args)
        if args.command == "autograde":
            return _autograde(args)
        if args.command == "report":
            return _report(args)
        if args.command == "export":
            return _export(args)
        if args.command == "gradescope":
            return _gradescope(args)
        if args.command in ("release", "solutions"):
            from autograder import assignment
            from autograder.course import course_here

            course = course_here()
            make = assignment.generate_release if args.command == "release" else assignment.generate_solutions
            names = args.assignments or course.assignments()
            missing = [name for name in names if not course.source(name).is_dir()]
            if not names or missing:
                print(f"autograder {args.command}: no source folder {', '.join(missing) or 'at all'} in "
                      f"{course.root / 'source'} (an assignment is source/ID/ID.ipynb)", file=sys.stderr)
                return 2
            for name in names:
                print(f"wrote {make(course, name)}")
        elif args.command == "demo":
            from autograder import demo, plugins

            try:
                return demo.main(assignments=args.assignments or None)
            except plugins.NoPlugin as exc:
                print(f"autograder demo: {exc}", file=sys.stderr)
                return 2
        elif args.command == "audit":
            audit_module = _audit_module(args.assignment)
            if audit_module is None:
                print(f"autograder audit: {args.assignment or 'no assignment'} has no audit (assignments/ID/audit.py)",
                      file=sys.stderr)
                return 2
            return audit_module.run(args)
    except RuntimeError as exc:
        print(f"autograder {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    """The `autograder` command (and `python -m autograder.cli`): main(), then exit.

    What the process made lives until it exits, so the collector need not walk it all once more
    at shutdown: with torch and pytest loaded that walk took 1.2 s, frozen 0.3 s. (In-process
    callers such as the tests call main() and keep their collector as it is.)"""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
