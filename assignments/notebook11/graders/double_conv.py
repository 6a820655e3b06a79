"""double_conv (2 points): DoubleConv computes (3x3 convolution -> BatchNorm2d -> ReLU) twice.

Each case builds the notebook's DoubleConv, loads a correct block's seeded weights and batch-norm
statistics into it (by the exercise's state_dict names, else by the layers' order), runs it in eval
mode on two seeded batches and compares with the reference (reference.py):

* the self-check's two cases (1 point, 0.5 each);
* four hidden cases the student has not seen, run after the notebook's last cell (1 point, 0.25 each).
"""

from __future__ import annotations

import pytest

from assignments.notebook11 import reference
from assignments.notebook11.graders import messages
from assignments.notebook11.graders.checks import judge_step, value_spec
from autograder.graders import points

CELL = "test_double_conv"
WORLDS = ["real"]

SEED_CASES = messages.DOUBLE_CONV_CASES  # the self-check's cases
HIDDEN_CASES = {
    "hidden-1": ("more output than input channels, on a non-square map", (3, 12), [2, 3, 11, 17]),
    "hidden-2": ("fewer output than input channels", (12, 4), [1, 12, 9, 9]),
    "hidden-3": ("a batch of one small map", (6, 6), [1, 6, 5, 6]),
    "hidden-4": ("a batch of four, two channels in and out", (2, 2), [4, 2, 8, 12]),
}
CASE_LABELS = [label for label, *_ in HIDDEN_CASES.values()]


def probes(seed: int) -> list[dict]:
    specs = [value_spec("double_conv", f"double_conv/{name}", args, {"x": shape, "x2": shape}, seed + 100 + 10 * i)
             for i, (name, (args, shape)) in enumerate(SEED_CASES.items())]
    specs += [value_spec("double_conv", f"double_conv/{name}", args, {"x": shape, "x2": shape}, seed + 200 + 10 * i,
                         defer=True)
              for i, (name, (_, args, shape)) in enumerate(HIDDEN_CASES.items())]
    return specs


def warm_up(seed: int) -> None:
    """Compute the reference values for this seed now (see engine.warm_up_judging)."""
    for spec in probes(seed):
        reference.expected(spec)


@points(0.5)
@pytest.mark.parametrize("case", list(SEED_CASES))
def test_double_conv_seed_cases(submission, case):
    judge_step(submission, CELL, f"double_conv/{case}")


@points(0.25)
@pytest.mark.parametrize("case", list(HIDDEN_CASES))
def test_double_conv_hidden_cases(submission, case):
    judge_step(submission, CELL, f"double_conv/{case}", HIDDEN_CASES[case][0])
