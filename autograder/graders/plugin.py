"""The pytest plugin that feeds submissions to the graders and collects scores and messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from autograder.graders import ITEM_CELLS, GradingFailure

GRADERS_DIR = Path(__file__).parent
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


def _item(module_name: str) -> str:
    cell = module_name.rsplit(".", 1)[-1]
    return next(k for k, c in ITEM_CELLS.items() if c == cell)


class GraderPlugin:
    def __init__(self, submissions: list) -> None:
        self.submissions = submissions
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
        self.records.append(Record(item.callspec.params["submission"].key, name, _item(item.module.__name__),
                                   float(item.function.points), report.passed, message, internal))


def run(submissions: list) -> GraderPlugin:
    """Run every grader on every submission in one pytest session."""
    plugin = GraderPlugin(submissions)
    args = [str(GRADERS_DIR), "-c", str(GRADERS_DIR / "pytest.ini"), "--rootdir", str(GRADERS_DIR),
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
