"""down_up (3 points): Down halves the map and applies DoubleConv; Up upsamples, pads to the skip's
size, joins [skip, x] on the channel axis and applies DoubleConv.

Each case builds the notebook's class, loads a correct step's seeded values into it, runs it in
eval mode on seeded inputs and compares with the reference (reference.py). A step whose own code is
right but whose DoubleConv is not still passes: the sandbox also runs the step's own DoubleConv on
what a correct step would give it (max-pool(x); cat([skip, padded up(x)])), and the DoubleConv
item charges the DoubleConv.

* Down (1 point): the self-check's two cases (0.25 each), two hidden cases (0.25 each);
* Up (2 points): sizes that double exactly (0.5); a skip one row and one column larger than the
  upsampled map, as an odd-sized U-Net level gives (0.5); a skip 2 rows and 3 columns larger, which
  shows where the padding goes (0.5); two hidden cases (0.25 each).
"""

from __future__ import annotations

import pytest

from assignments.notebook11 import reference
from assignments.notebook11.graders import messages
from assignments.notebook11.graders.checks import judge_step, value_spec
from autograder.graders import points

CELL = "test_down_up_shapes"
WORLDS = ["real"]

DOWN_SEED = messages.DOWN_CASES  # the self-check's cases
DOWN_HIDDEN = {
    "hidden-1": ("an odd height and an even width", (8, 8), [2, 8, 15, 22]),
    "hidden-2": ("a small map with more output channels", (3, 10), [1, 3, 6, 6]),
}
UP_SEED = messages.UP_CASES  # name -> ((in, out), x, skip): the self-check's cases
UP_HIDDEN = {
    "hidden-1": ("a skip one row larger, on a tall map", (12, 6), [1, 12, 7, 4], [1, 6, 15, 8]),
    "hidden-2": ("more output channels than the skip has, a skip one column larger", (6, 10), [2, 6, 3, 5],
                 [2, 3, 6, 11]),
}
CASE_LABELS = [label for label, *_ in DOWN_HIDDEN.values()] + [label for label, *_ in UP_HIDDEN.values()]


def _up_inputs(x, skip):
    return {"x": x, "skip": skip, "x2": x, "skip2": skip}


def probes(seed: int) -> list[dict]:
    specs = [value_spec("down", f"down/{name}", args, {"x": shape, "x2": shape}, seed + 300 + 10 * i)
             for i, (name, (args, shape)) in enumerate(DOWN_SEED.items())]
    specs += [value_spec("down", f"down/{name}", args, {"x": shape, "x2": shape}, seed + 350 + 10 * i, defer=True)
              for i, (name, (_, args, shape)) in enumerate(DOWN_HIDDEN.items())]
    specs += [value_spec("up", f"up/{name}", args, _up_inputs(x, skip), seed + 400 + 10 * i)
              for i, (name, (args, x, skip)) in enumerate(UP_SEED.items())]
    specs += [value_spec("up", f"up/{name}", args, _up_inputs(x, skip), seed + 450 + 10 * i, defer=True)
              for i, (name, (_, args, x, skip)) in enumerate(UP_HIDDEN.items())]
    return specs


def warm_up(seed: int) -> None:
    for spec in probes(seed):
        reference.expected(spec)


@points(0.25)
@pytest.mark.parametrize("case", list(DOWN_SEED))
def test_down_seed_cases(submission, case):
    judge_step(submission, CELL, f"down/{case}")


@points(0.25)
@pytest.mark.parametrize("case", list(DOWN_HIDDEN))
def test_down_hidden_cases(submission, case):
    judge_step(submission, CELL, f"down/{case}", DOWN_HIDDEN[case][0])


@points(0.5)
def test_up_sizes_that_double_exactly(submission):
    judge_step(submission, CELL, "up/even")


@points(0.5)
def test_up_skip_one_pixel_larger(submission):
    judge_step(submission, CELL, "up/odd")


@points(0.5)
def test_up_padding_centred(submission):
    judge_step(submission, CELL, "up/centred")


@points(0.25)
@pytest.mark.parametrize("case", list(UP_HIDDEN))
def test_up_hidden_cases(submission, case):
    judge_step(submission, CELL, f"up/{case}", UP_HIDDEN[case][0])
