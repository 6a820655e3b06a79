"""The pytest plugin that feeds submissions to an assignment's graders and collects scores and messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.graders import GradingFailure
from autograder.plugins import Plugin

PYTEST_INI = Path(__file__).parent / "pytest.ini"  # the graders' own pytest configuration
INTERNAL_ERROR = ("The grader could not finish this check (an error in the grader, not in your notebook); "
                  "your instructor has been told and will grade it by hand.")


@dataclass
class Record:
    submission: str
    name: str
    item: str
    points: float
    passed: bool
    message: str
    internal_error: str | None = None


class GraderPlugin:
    def __init__(self, submissions: list, assignment: Plugin) -> None:
        self.submissions = submissions
        self.assignment = assignment
        self.records: list[Record] = []
        self.collection_errors: list[str] = []

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "submission" in metafunc.fixturenames:
            metafunc.parametrize("submission", self.submissions, ids=[s.key for s in self.submissions])

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(str(report.longrepr))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        if report.when != "call" and not (report.when == "setup" and report.failed):
            return
        params = {k: v for k, v in item.callspec.params.items() if k != "submission"}
        name = item.originalname + (f"[{'-'.join(str(v) for v in params.values())}]" if params else "")
        message, internal = "", None
        if call.excinfo is not None:
            if isinstance(call.excinfo.value, GradingFailure):
                message = str(call.excinfo.value)
            else:
                message, internal = INTERNAL_ERROR, f"{name}: {call.excinfo.exconly()}\n{report.longreprtext[-3000:]}"
        item_key = self.assignment.item_of_cell(getattr(item.module, "CELL", None)) or item.module.__name__
        self.records.append(Record(item.callspec.params["submission"].key, name, item_key,
                                   float(item.function.points), report.passed, message, internal))


def run(submissions: list, assignment: Plugin) -> GraderPlugin:
    """Run every grader of the assignment on every submission in one pytest session."""
    plugin = GraderPlugin(submissions, assignment)
    graders = assignment.folder / "graders"
    args = [*map(str, assignment.grader_files()), "-c", str(PYTEST_INI), "--rootdir", str(graders),
            "--import-mode=importlib", "-p", "no:terminal", "-W", "ignore",
            # these plugins run gc.collect() twice per session: seconds on a heap that holds torch
            "-p", "no:unraisableexception", "-p", "no:threadexception", "-p", "no:faulthandler", "-p", "no:logging"]
    code = pytest.main(args, plugins=[plugin])
    if plugin.collection_errors or code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"the graders did not run (pytest exit code {int(code)}):\n" + "\n".join(plugin.collection_errors))
    counts = {s.key: sum(r.submission == s.key for r in plugin.records) for s in submissions}
    if len(set(counts.values())) > 1 or 0 in counts.values():
        raise RuntimeError(f"the graders ran an uneven number of checks per submission: {counts}")
    return plugin
