"""What Notebook 11's test modules share: the catalogue graded once (test_notebook11_grading.py
compares its scores with the expected ones, test_notebook11_self_checks.py its messages with the
visible self-checks')."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "submissions"))

import build as catalogue  # noqa: E402  (submissions/build.py)


@pytest.fixture(scope="session")
def graded():
    """The catalogue's fast cases graded once (about forty seconds for the nine; the results are only read)."""
    return catalogue.grade(catalogue.FAST)
