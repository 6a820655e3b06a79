"""What every assignment's hidden graders use: failing a check with a message, and its points.

The graders themselves live in each assignment's plug-in folder (autograder/plugins.py): pytest
tests, one module per graded cell, run in the trusted process. Each module names its grade cell
(``CELL``), the probes to run at that cell's place in the notebook (``probes(seed)``) and in which
worlds (``WORLDS``), and tests that judge the evidence. Every test carries its points (``@points``).
"""

from __future__ import annotations

from typing import Any, Callable

import pytest


class GradingFailure(pytest.fail.Exception):
    """A check failed; the message is for the student. Like pytest.fail(message, pytrace=False):
    pytest reports it without formatting a traceback (which cost a tenth of a second per failed
    check: it reparses the grader's source)."""

    def __init__(self, message: str) -> None:
        super().__init__(msg=message, pytrace=False)

    def __str__(self) -> str:
        return self.msg


def fail(message: str) -> None:
    raise GradingFailure(message)


def points(value: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.points = value  # type: ignore[attr-defined]
        return fn
    return mark


def evidence(submission: Any, probe_id: str, world: str = "real") -> dict:
    """What the sandbox-side probe `probe_id` found in `world`; where there is nothing, the check
    fails with the reason (the notebook could not be graded, or did not reach the probe)."""
    if submission.broken:
        fail(submission.broken)
    run = submission.world(world)
    result = run.probes.get(probe_id) if run else None
    if result is None:
        fail(submission.why_not_reached(probe_id, world))
    return result
