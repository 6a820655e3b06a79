"""Hidden graders: pytest tests, one module per graded cell, run in the trusted process.

Each module names its grade cell (``CELL``), the probes to run at that cell's place in the
notebook (``probes(seed)``) and in which worlds (``WORLDS``), and tests that judge the
evidence. Every test carries its points (``@points``); its name contains the item key.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

ITEM_CELLS = {
    "residual_block_shapes": "test_residual_block_shapes",
    "shortcut_projection": "test_shortcut_projection",
    "resnet18_adaptation": "test_resnet18_adaptation",
    "device_placement": "test_device_placement",
}


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


def grader_modules() -> list[Any]:
    from autograder.graders import (
        test_device_placement,
        test_resnet18_adaptation,
        test_residual_block_shapes,
        test_shortcut_projection,
    )
    return [test_residual_block_shapes, test_shortcut_projection, test_resnet18_adaptation, test_device_placement]
