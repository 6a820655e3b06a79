"""The grading engine: notebooks in, scores and messages out. Both front doors call `grade`.

For each notebook: read it (a broken one gets a zero with the reason), build its plan, run it
in the sandbox, parse the evidence. Then one pytest session runs every grader on every
submission, and the records become results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from autograder import plan as planning
from autograder import sandbox
from autograder.graders import ITEM_CELLS
from autograder.graders import plugin as grader_plugin
from autograder.submission import Submission


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
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # broken or tampered submission, or a grader error: needs a human
    internal_errors: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 4)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 4)

    def item_scores(self) -> dict[str, tuple[float, float]]:
        totals: dict[str, list[float]] = {k: [0.0, 0.0] for k in ITEM_CELLS}
        for t in self.tests:
            totals[t.item][0] += t.score
            totals[t.item][1] += t.max_score
        return {k: (round(s, 4), round(m, 4)) for k, (s, m) in totals.items()}


def run_submission(key: str, notebook: Any, *, seed: int, limits: sandbox.Limits, unsafe: bool = False,
                   slot: int | None = None, source: planning.SourceOrder | None = None) -> Submission:
    """Plan, sandbox run and evidence for one notebook (the untrusted part of grading)."""
    try:
        nb = planning.read_notebook(notebook)
    except planning.NotebookUnreadable as exc:
        return Submission(key, seed, broken=f"This submission could not be graded: {exc}")
    the_plan = planning.build(nb, seed, source, limits.cell_seconds)
    raw = sandbox.run(the_plan, limits, slot=slot, unsafe=unsafe)
    the_plan["nonce"] = raw.nonce
    return Submission.from_run(key, the_plan, raw)


def judge(submissions: list[Submission], started: dict[str, float] | None = None) -> dict[str, Result]:
    """Run the graders over the submissions (the trusted part of grading)."""
    plugin = grader_plugin.run(submissions)
    results: dict[str, Result] = {}
    now = time.perf_counter()
    for sub in submissions:
        records = [r for r in plugin.records if r.submission == sub.key]
        tests = [TestResult(f"{r.item}: {r.name}", r.item, round(r.points if r.passed else 0.0, 6), round(r.points, 6),
                            r.message or "passed") for r in records]
        result = Result(sub.key, sub.seed, tests, now - (started or {}).get(sub.key, now))
        result.internal_errors = [r.internal_error for r in records if r.internal_error]
        if sub.raw is not None:
            result.notes = list(sub.raw.notes) + ([f"killed: {sub.raw.killed}"] if sub.raw.killed else [])
            real = sub.world("real")
            for index, cell in (real.cells.items() if real else []):
                result.cells[sub.plan["cells"][index]["nb_index"]] = cell
        result.problem = sub.broken or sub.tampered or (
            "a grader error: grade by hand" if result.internal_errors else None)
        results[sub.key] = result
    return results


def grade(notebooks: dict[str, Any], *, seed: int = planning.DEFAULT_SEED, limits: sandbox.Limits = sandbox.Limits(),
          unsafe: bool = False) -> dict[str, Result]:
    """Grade notebooks (key -> bytes, text or NotebookNode) one after the other."""
    source = planning.SourceOrder.of()
    started, subs = {}, []
    for key, notebook in notebooks.items():
        started[key] = time.perf_counter()
        subs.append(run_submission(key, notebook, seed=seed, limits=limits, unsafe=unsafe, source=source))
    return judge(subs, started)
