"""The grading engine: notebooks in, scores and messages out. Both front doors call `grade`.

For each notebook: read it (a broken one gets a zero with the reason), build its plan, run it
in the sandbox, parse the evidence. Then one pytest session runs every grader on every
submission, and the records become results.
"""

from __future__ import annotations

import ast
import copy
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from autograder import plan as planning
from autograder import sandbox
from autograder import plugins
from autograder.course import COURSE, Course
from autograder.graders import plugin as grader_plugin
from autograder.plugins import Plugin
from autograder.submission import Submission


def _serialise_ast_parse() -> None:
    """CPython before 3.13 keeps one recursion counter per interpreter while it builds AST objects
    (gh-106905): two threads parsing at once can corrupt it, and ast.parse raises "SystemError: AST
    constructor recursion depth mismatch". The sandboxes' threads plan and read evidence while the
    graders read cells on the main thread, so every ast.parse of this process (literal_eval's too)
    takes one lock: each parse takes milliseconds. (Seen once in a full run of the suite: a correct
    notebook's planning failed, and it was flagged with no score.)"""
    if sys.version_info >= (3, 13) or getattr(ast.parse, "serialised", False):
        return
    real, lock = ast.parse, threading.RLock()

    def parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return real(*args, **kwargs)

    parse.serialised = True  # type: ignore[attr-defined]
    ast.parse = parse  # type: ignore[assignment]


_serialise_ast_parse()


@dataclass
class TestResult:
    name: str
    item: str
    score: float
    max_score: float
    output: str
    visibility: str = "visible"


@dataclass
class Result:
    key: str
    seed: int
    tests: list[TestResult]
    execution_time: float
    cells: dict[int, dict] = field(default_factory=dict)  # notebook index -> the real world's outcome
    skipped: set[int] = field(default_factory=set)  # notebook indices of demonstration cells not run
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # why a person should review it, in one line (the reasons joined), or None
    review: list[str] = field(default_factory=list)  # the reasons one by one
    timed_out: list[dict] = field(default_factory=list)  # cells the time limit stopped (timed_out_cells)
    setup_stopped: dict | None = None  # a cell outside the exercises that stopped with an error (setup_stopped)
    broken: str | None = None  # why it could not be graded at all (unreadable, or the grader failed on it)
    internal_errors: list[str] = field(default_factory=list)
    peak_memory: int | None = None
    sandbox_seconds: float | None = None
    submission_sha256: str | None = None
    settings: dict = field(default_factory=dict)  # the limits it was graded with (gradingconfig.settings_of)
    items: dict[str, str] = field(default_factory=dict)  # the assignment's items: key -> test cell id, in order
    assignment: str | None = None

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 4)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 4)

    def item_scores(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, list[float]] = {k: [0.0, 0.0] for k in self.items}
        for t in self.tests:
            totals[t.item][0] += t.score
            totals[t.item][1] += t.max_score
        return {k: (round(s, 4), round(m, 4)) for k, (s, m) in totals.items()}


def run_submission(key: str, notebook: Any, *, seed: int, limits: sandbox.Limits, unsafe: bool = False,
                   slot: int | None = None, source: planning.SourceOrder | None = None,
                   pool: sandbox.WarmPool | None = None, assignment: str | None = None) -> Submission:
    """Plan, sandbox run and evidence for one notebook (the untrusted part of grading); `source`
    (or else `assignment`, or else the course's only graded one) says what it is a notebook of."""
    if source is None:
        source = planning.SourceOrder.of(COURSE, plugins.get(assignment) if assignment else plugins.only())
    try:
        nb = planning.read_notebook(notebook)
    except planning.NotebookUnreadable as exc:
        return Submission(key, seed, broken=f"This submission could not be graded: {exc}")
    the_plan = planning.build(nb, seed, source, limits.cell_seconds)
    sub = _sandboxed(key, the_plan, limits, slot, unsafe, pool)
    stuck = sub.stuck_cells(limits.cell_seconds) if sub.raw.killed and sub.raw.killed.startswith(sandbox.RAN_PAST) \
        else []
    if stuck:
        # A cell that holds the interpreter (one long C call: a regex, a huge product) cannot be
        # interrupted and takes the whole run's time. Once, the notebook runs again without it:
        # the rest of the notebook is graded, and the submission is marked for review.
        again = copy.deepcopy({k: v for k, v in the_plan.items() if k != "key"})
        for index in stuck:
            again["cells"][index]["hung"] = True
        sub = _sandboxed(key, again, limits, slot, unsafe, pool)
        sub.raw.notes.append(f"graded a second time: the first run was stopped after {limits.submission_seconds:.0f} s")
    return sub


def _sandboxed(key: str, the_plan: dict, limits: sandbox.Limits, slot: int | None, unsafe: bool,
               pool: sandbox.WarmPool | None) -> Submission:
    try:
        raw = sandbox.run(the_plan, limits, slot=slot, unsafe=unsafe, pool=pool)
    except sandbox.SandboxUnavailable:
        if pool is None:
            raise
        raw = sandbox.run(the_plan, limits, slot=slot, unsafe=unsafe)  # the cold path, same isolation
        raw.notes.append("the warm sandbox failed; this submission ran in a fresh bubblewrap sandbox")
    the_plan["key"] = raw.key
    return Submission.from_run(key, the_plan, raw)


def judge(submissions: list[Submission], started: dict[str, float] | None = None,
          assignment: Plugin | None = None) -> dict[str, Result]:
    """Run the assignment's graders over its submissions (the trusted part of grading)."""
    assignment = assignment or plugins.only()
    plugin = grader_plugin.run(submissions, assignment)
    results: dict[str, Result] = {}
    now = time.perf_counter()
    for sub in submissions:
        records = [r for r in plugin.records if r.submission == sub.key]
        tests = [TestResult(f"{r.item}: {r.name}", r.item, round(r.points if r.passed else 0.0, 6), round(r.points, 6),
                            r.message or "passed") for r in records]
        result = Result(sub.key, sub.seed, tests, now - (started or {}).get(sub.key, now), items=dict(assignment.items),
                        assignment=assignment.id)
        result.internal_errors = [r.internal_error for r in records if r.internal_error]
        result.broken = sub.broken
        if sub.raw is not None:
            result.peak_memory, result.sandbox_seconds = sub.raw.peak_memory, sub.raw.seconds
            result.notes = list(sub.raw.notes) + ([f"killed: {sub.raw.killed}"] if sub.raw.killed else [])
            if sub.raw.returncode not in (0, None) and not sub.raw.killed:
                tail = sub.raw.stderr.decode(errors="replace").strip().splitlines()[-3:]
                result.notes.append(f"the sandbox exited with status {sub.raw.returncode}"
                                    + (": " + " | ".join(tail) if tail else ""))
            real = sub.world("real")
            for index, cell in (real.cells.items() if real else []):
                result.cells[sub.plan["cells"][index]["nb_index"]] = cell
            result.skipped = {c["nb_index"] for c in sub.plan["cells"] if c.get("skip")}
            result.timed_out = timed_out_cells(sub)
            result.setup_stopped = setup_stopped(sub)
        reasons = sub.review_reasons() + (["a grader error: grade by hand"] if result.internal_errors else [])
        for world in sub.worlds.values():
            result.notes += [n for n in world.notes if n not in result.notes]
        result.review = reasons
        result.problem = "; ".join(reasons) if reasons else None
        results[sub.key] = result
    return results


def timed_out_cells(sub: Submission) -> list[dict]:
    """The code cells the real world's run stopped at the cell time limit, or did not run again
    because they held the interpreter past the whole run's limit (`hung`): notebook index,
    label, the limit in seconds, and the student's line where it was stopped."""
    real = sub.world("real")
    out = []
    for index, cell in sorted(real.cells.items() if real else []):
        if cell.get("status") != "timeout":
            continue
        error = cell.get("error") if isinstance(cell.get("error"), dict) else {}
        out.append({"cell": sub.plan["cells"][index]["nb_index"], "label": sub.cell_label(index),
                    "seconds": float(sub.plan["cell_seconds"]), "hung": bool(sub.plan["cells"][index].get("hung")),
                    "line": error.get("line"), "code": error.get("code")})
    return out


def setup_stopped(sub: Submission) -> dict | None:
    """The first cell that is not an exercise's own (the setup, a cell of the student's, the helpers)
    and stopped with an error in the real world's run: every cell after it ran without what the rest
    of it would have made, so checks of every item can fail because of that one line."""
    real = sub.world("real")
    for index, cell in sorted(real.cells.items() if real else []):
        planned = sub.plan["cells"][index]
        error = cell.get("error")
        if cell.get("status") == "error" and isinstance(error, dict) and planned.get("grade_id") in (None, "setup"):
            return {"cell": planned["nb_index"], "label": sub.cell_label(index), "type": error.get("type"),
                    "message": str(error.get("message") or "")[:300], "line": error.get("line"),
                    "code": error.get("code")}
    return None


_judging_warm: set[tuple[str, int]] = set()


def warm_up_judging(seed: int, assignment: Plugin | None = None) -> None:
    """Do once per process, ahead of the first batch, what the first judging would otherwise
    pay for: import the graders and torch, compute the reference values for this seed
    (each grader module's `warm_up`), and run one pytest session. Meant to run while the
    zygotes import on other cores; the scores are the same either way."""
    assignment = assignment or plugins.only()
    if (str(assignment.folder), seed) in _judging_warm:
        return
    for module in assignment.grader_modules():
        getattr(module, "warm_up", lambda seed: None)(seed)
    judge([Submission("warm-up", seed, broken="warming up the graders")], assignment=assignment)
    _judging_warm.add((str(assignment.folder), seed))


def grade_stream(notebooks: Iterable[tuple[str, Callable[[], Any]]], *, seed: int = planning.DEFAULT_SEED,
                 limits: sandbox.Limits = sandbox.Limits(), unsafe: bool = False, workers: int = 1,
                 batch: int = 16, pool: sandbox.WarmPool | None = None,
                 runner: Callable[..., Submission] | None = None, course: Course = COURSE,
                 assignment: str | None = None) -> Iterator[Result]:
    """Grade (key, load-notebook) pairs with `workers` sandboxes at once; yield results in batches.

    Sandbox runs happen in worker threads (each waits on its own sandboxed process); the graders
    run in this thread, one pytest session per batch of finished submissions.
    """
    from autograder.gradingconfig import settings_of

    settings = settings_of(limits, unsafe)
    plugin = plugins.get(assignment, course) if assignment else plugins.only(course)
    source = planning.SourceOrder.of(course, plugin)
    run = runner or (lambda key, nb, slot: run_submission(key, nb, seed=seed, limits=limits, unsafe=unsafe,
                                                          slot=slot, source=source, pool=pool))
    started: dict[str, float] = {}
    slots = list(range(max(1, workers)))
    slot_lock = threading.Lock()

    def job(key: str, load: Callable[[], Any]) -> Submission:
        with slot_lock:
            slot = slots.pop()
        try:
            started[key] = time.perf_counter()
            return run(key, load(), slot)
        except sandbox.SandboxUnavailable:
            raise  # the machine cannot grade at all: stop and say so
        except Exception as exc:  # one submission must never stop the rest of the class
            return Submission(key, seed, broken=f"The grader could not run this submission ({type(exc).__name__}: "
                                                f"{str(exc)[:300]}); your instructor has been told and will grade it.")
        finally:
            with slot_lock:
                slots.append(slot)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as executor:
        pending = {executor.submit(job, key, load) for key, load in notebooks}
        if pending:
            warm_up_judging(seed, plugin)  # while the first sandboxes (or the zygotes) start
        done_subs: list[Submission] = []
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            done_subs += [f.result() for f in finished]
            # Batches share one pytest session; once every remaining submission is already
            # running, each is judged as it comes, so the run does not end on a long batch.
            if len(done_subs) >= batch or len(pending) <= max(1, workers):
                for result in judge(done_subs, started, plugin).values():
                    result.settings = settings
                    yield result
                done_subs = []


def grade(notebooks: dict[str, Any], *, seed: int = planning.DEFAULT_SEED, limits: sandbox.Limits = sandbox.Limits(),
          unsafe: bool = False, workers: int = 1, warm: bool = False, assignment: str | None = None,
          course: Course = COURSE) -> dict[str, Result]:
    """Grade notebooks (key -> bytes, text or NotebookNode) of `assignment` (default: the course's
    only graded one); `warm` forks them from zygotes."""
    pool = sandbox.warm_pool(workers, unsafe) if warm else None
    try:
        items = [(key, (lambda nb=nb: nb)) for key, nb in notebooks.items()]
        return {r.key: r for r in grade_stream(items, seed=seed, limits=limits, unsafe=unsafe, workers=workers,
                                               batch=len(items) or 1, pool=pool, course=course,
                                               assignment=assignment)}
    finally:
        if pool is not None:
            pool.close()
