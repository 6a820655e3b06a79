"""Integrity attacks whose harm is not points (issue 10): what the feedback shows, and how often a
notebook is run.

* Hidden configurations must not reach the student: not through the name of an exception the
  block raises in a hidden case, not through a NameError's message, not through a cell that
  prints what the block was asked to do while the checks ran.
* A notebook that fakes the zygote's "the sandbox could not be built" on the warm path must not
  be given a second, cold run, and must be marked for review.

These fail on the grader of issue 10 (the leaks and the free cold run are real there); see
REDTEAM_ISSUE10.md for the numbers.
"""

from __future__ import annotations

import os

import pytest

from autograder import engine
from assignments.notebook10.graders.residual_block_shapes import HIDDEN_CASES
from tests.conftest import CASES, TEST_LIMITS

LEAK_CASES = [
    "hostile/hostile_exception_type_names_spell_hidden_cases_score_visible_parts.ipynb",
    "hostile/hostile_nameerror_message_from_exec_spells_hidden_cases_score_visible_parts.ipynb",
    "hostile/hostile_block_records_hidden_cases_and_prints_them_score_full.ipynb",
]
SPOOF_CASE = "hostile/hostile_spoofed_sandbox_setup_failure_score_full.ipynb"
REGRADED_COLD = "the warm sandbox failed; this submission ran in a fresh bubblewrap sandbox"


def _forms(numbers: tuple[int, ...] | list[int]) -> list[str]:
    """How a student would print a configuration or a shape: 16, 32, 1 / (16, 32, 1) /
    [16, 32, 1] / 16_32_1 / 16x32x1."""
    words = [str(n) for n in numbers]
    plain = ", ".join(words)
    return [plain, f"({plain})", f"[{plain}]", "_".join(words), "x".join(words)]


def _visible_configurations() -> set[tuple[int, ...]]:
    """Configurations the grader's own messages name (the seed cases, the main path's and the
    shortcut's cases): not secret, whatever the notebook prints of them."""
    from assignments.notebook10.graders import blocks
    from assignments.notebook10.graders import residual_block_shapes as shapes

    seen = {tuple(args) for args, _ in shapes.SEED_CASES.values()}
    return seen | {tuple(args) for args, _ in blocks.NUMERIC_CASES.values()}  # the main path's and the shortcut's


# A hidden case's input shape is its own; its configuration only where no visible check uses it too.
HIDDEN_FORMS = sorted({form for _, args, shape in HIDDEN_CASES.values()
                       for form in _forms(shape) + ([] if tuple(args) in _visible_configurations() else _forms(args))})


def _shown(result: engine.Result) -> list[tuple[str, str]]:
    """Everything of this result a student sees: each check's message, each cell's output and error."""
    texts = [(f"check {t.name}", t.output) for t in result.tests]
    for index, cell in result.cells.items():
        texts.append((f"cell {index} output", cell.get("output") or ""))
        error = cell.get("error") or {}
        texts.append((f"cell {index} error", f"{error.get('type', '')}: {error.get('message', '')}"))
    return texts


@pytest.fixture(scope="module")
def graded_leaks():
    notebooks = {name: (CASES / name).read_bytes() for name in LEAK_CASES}
    return engine.grade(notebooks, assignment="notebook10", limits=TEST_LIMITS, warm=True, workers=2)


def test_the_forms_looked_for_are_not_in_an_honest_feedback_by_accident():
    honest = ("ResidualBlock(64, 64, stride=1) on a (4, 64, 32, 32) batch", "torch.Size([4, 128, 16, 16])",
              "Main path of ResidualBlock(8, 16, stride=2) in train mode", "ResidualBlock(8, 8, stride=1)",
              "Input shape: torch.Size([4, 1, 28, 28])", "In a hidden case (small maps at stride 2)")
    assert not [(text, form) for text in honest for form in HIDDEN_FORMS if form in text]


@pytest.mark.slow
@pytest.mark.parametrize("name", LEAK_CASES)
def test_no_hidden_configuration_reaches_the_feedback(graded_leaks, name):
    result = graded_leaks[name]
    leaks = [(where, form, text[:300]) for where, text in _shown(result) for form in HIDDEN_FORMS if form in text]
    assert not leaks, "hidden configurations in the feedback:\n" + "\n".join(f"{w}: {f!r} in {t!r}" for w, f, t in leaks)


@pytest.mark.slow
def test_a_faked_sandbox_failure_is_not_graded_again_cold_and_is_flagged():
    if os.geteuid() != 0:
        pytest.skip("the warm sandbox (the door this attack goes through) needs root")
    result = engine.grade({SPOOF_CASE: (CASES / SPOOF_CASE).read_bytes()}, assignment="notebook10", limits=TEST_LIMITS, warm=True,
                          workers=2)[SPOOF_CASE]
    assert not [note for note in result.notes if REGRADED_COLD in note], result.notes
    assert result.problem, "a notebook that writes the zygote's set-up error and exits 70 must be marked for review"
