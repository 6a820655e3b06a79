"""shortcut_projection (3 points): the shortcut, and how it joins the main path.

Judged on the student's own forward (the numeric runs of blocks.py, shared with the shapes item):

* identity (1): with stride 1 and equal channels, the shortcut forward adds is x itself, no layer
  applied to it (0.5 per configuration);
* projection (1): when the stride, the channels or both change, the shortcut forward applies is a
  1x1 convolution with the block's stride and no bias, then BatchNorm: with seeded weights loaded
  into the student's shortcut, its output as forward computes it equals the reference, in train
  and eval mode. Each kind is tried in two configurations, growing and shrinking channels, stride 2
  and 3 (1/3 per kind);
* the join (1): the shortcut is added to the main path before the final ReLU, and the gradient
  flows along it. Judged with the main path's convolutions zeroed: the main path is then one
  constant per channel c, whatever its layers' order, and the block must give relu(shortcut + c),
  with the gradient with respect to x that the shortcut alone gives (0.5 per block kind).
A main-path mistake never costs these points: where the block cannot be run because of its main
path (judged in the shapes item), the shortcut is judged on its own layers, and the join is not
charged. A block whose output does not change when its convolutions change has no main path for a
shortcut to go around, and earns none of them.
"""

from __future__ import annotations

import numpy as np
import pytest

from assignments.notebook10 import reference
from assignments.notebook10.graders import blocks, messages
from autograder.graders import fail, points
from assignments.notebook10.graders.checks import close, describe_error, joins

CELL = "test_shortcut_projection"
WORLDS = ["real"]

IDENTITY_CASES = {"identity-small": "b-8-8-1", "identity-64": "b-64-64-1"}
PROJECTION_CASES = {
    "channels-change": ("the channels change (stride 1)", ("b-8-16-1", "b-16-8-1")),
    "stride-change": ("the stride changes (same channels)", ("b-8-8-2", "b-8-8-3")),
    "both-change": ("both the stride and the channels change", ("b-8-16-2", "b-16-8-2")),
}
CASE_LABELS = [label for label, *_ in PROJECTION_CASES.values()]  # the report masks them
WIRING_CASES = {"identity-block": "b-8-8-1", "projection-block": "b-8-16-2"}


def probes(seed: int) -> list[dict]:
    return []  # the numeric runs are the shapes item's (blocks.py), made at the same place just before


def warm_up(seed: int) -> None:
    pass  # blocks.py's reference values are warmed up by the shapes item


NOT_A_BLOCK = ("the block's output does not change when its convolutions change, so it has no main path for a shortcut "
               "to go around: forward must compute the block's output with its layers")


def real_block_problem(result: dict, call: str) -> str | None:
    """Why the block has no main path for a shortcut to go around (None: it has one)."""
    missing = [k for k, v in result["main"].items() if v is None]
    if missing:
        return f"{call} has no {', '.join(missing)}: without its main path there is nothing for a shortcut to go around"
    if blocks.uses_convolutions(result) is False:
        return f"{call}: {NOT_A_BLOCK}"
    return None


def _shortcut_or_fail(submission, name: str, mode: str, outs: dict, what: str) -> np.ndarray:
    ref = blocks.expected(submission, name, mode)
    s = blocks.observed_shortcut(outs, ref["x"])
    if s is None:
        y = outs.get("Y")
        error = y.get("error") if isinstance(y, dict) else None
        fail(f"{what}: the block raised {describe_error(error)} before its shortcut could be seen." if error else
             f"{what}: the shortcut could not be seen.")
    return s


@points(0.5)
@pytest.mark.parametrize("case", list(IDENTITY_CASES))
def test_shortcut_projection_identity(submission, case):
    name = IDENTITY_CASES[case]
    args = blocks.NUMERIC_CASES[name][0]
    call = blocks.call(args)
    result = blocks.run(submission, name, f"Building {call}")
    problem = real_block_problem(result, call)
    if problem:
        fail(f"{problem}.")
    for mode in blocks.MODES:
        outs = result["modes"][mode]
        x = blocks.expected(submission, name, mode)["x"]
        s = _shortcut_or_fail(submission, name, mode, outs, call)
        if not close(s, x):
            fail(messages.identity_problem(args, [d["type"] for d in result["shortcut"]]))


def projection_problem(result: dict, stride: int) -> str:
    return messages.projection_problem(result["shortcut"], stride)


@points(1 / 3)
@pytest.mark.parametrize("case", list(PROJECTION_CASES))
def test_shortcut_projection_conv_bn(submission, case):
    label, names = PROJECTION_CASES[case]
    for name in names:
        args = blocks.NUMERIC_CASES[name][0]
        result = blocks.run(submission, name, f"Building a block where {label}")
        problem = real_block_problem(result, blocks.call(args))
        if problem:
            fail(f"When {label}: {problem}.")
        for mode in blocks.MODES:
            outs = result["modes"][mode]
            expected = blocks.expected(submission, name, mode)["S"]
            s = blocks.observed_shortcut(outs, blocks.expected(submission, name, mode)["x"])
            if isinstance(s, np.ndarray) and close(s, expected):
                continue
            if s is None and isinstance(outs.get("Y"), dict) and "error" in outs["Y"]:
                problem = f"the block raised {describe_error(outs['Y']['error'])} before its shortcut could be seen"
            elif s is not None and s.shape == blocks.expected(submission, name, mode)["x"].shape and \
                    np.array_equal(s, blocks.expected(submission, name, mode)["x"]):
                problem = messages.SHORTCUT_IS_X
            else:
                problem = projection_problem(result, args[2])
            fail(messages.projection_case_problem(label, args, problem, mode))


def _join_without_the_shortcut(args: tuple, mode: str, z, grad) -> None:
    """With the main path a constant per channel, an output that varies, is never negative, is zero
    somewhere (a ReLU came last) and passes a gradient back to x has the shortcut added before the
    final ReLU."""
    if not isinstance(z, np.ndarray) or z.ndim != 4:
        fail(f"{blocks.call(args)}: the block's output could not be read ({mode} mode).")
    if blocks.constant_per_channel(z):
        fail(messages.join_problem(args, "never added"))
    if z.min() < 0 or not (z == 0).any():
        fail(messages.join_problem(args, "no final relu", mode))
    if mode == "train" and not (isinstance(grad, np.ndarray) and float(np.abs(grad).max()) > 1e-7):
        fail(f"{blocks.call(args)}: no gradient flows back along the shortcut: the residual connection exists to carry it, so "
             "the shortcut must not be detached (no .detach() on x or on its output).")


@points(0.5)
@pytest.mark.parametrize("case", list(WIRING_CASES))
def test_shortcut_projection_added_before_relu(submission, case):
    name = WIRING_CASES[case]
    args = blocks.NUMERIC_CASES[name][0]
    call = blocks.call(args)
    result = blocks.run(submission, name, f"Building {call}")
    problem = real_block_problem(result, call)
    if problem:
        fail(f"{problem}.")
    for mode in blocks.MODES:
        outs = result["modes"][mode]
        ref = blocks.expected(submission, name, mode)
        z = outs.get("Z")
        if isinstance(z, dict) and "error" in z:
            if blocks.broken_main_path(outs, ref) or "M" not in outs and isinstance(outs.get("Y"), dict):
                return  # the main path cannot be added to anything: the shapes item's mistake, not charged here
            fail(f"{call}: calling the block raised {describe_error(z['error'])}.")
        s = blocks.observed_shortcut(outs, ref["x"])
        if s is None:  # what forward adds cannot be seen (functional calls): the join is judged on Z alone
            _join_without_the_shortcut(args, mode, z, outs.get("Z_grad_x"))
            continue
        form = joins(z, s)
        if form == "sum":
            fail(messages.join_problem(args, "no final relu", mode))
        if form is None:
            constant = isinstance(z, np.ndarray) and z.ndim == 4 and \
                np.ptp(z.reshape(z.shape[0], z.shape[1], -1), axis=2).max() < 1e-6
            if constant:
                fail(messages.join_problem(args, "never added"))
            if isinstance(z, np.ndarray) and z.shape == s.shape and joins(z - s, np.zeros_like(s)) is not None \
                    and (z - s).min() > -1e-6:
                fail(messages.join_problem(args, "relu before add"))
            fail(messages.join_problem(args, "other", mode))
        if mode == "train" and z.shape == ref["Y"].shape:  # (another shape: the shapes item's to charge; the
            # gradient was not taken)
            grad = outs.get("Z_grad_x")
            mask = (z > 0).astype(np.float32)
            upstream = blocks.upstream(submission, name) * mask
            flows = isinstance(grad, np.ndarray) and float(np.abs(grad).max()) > 1e-7
            if close(s, ref["S"]):  # the student's shortcut is right: its gradient must be the reference's
                want = reference.shortcut_input_grad(*args, blocks.spec(submission, name)["seed"],
                                                     blocks.NUMERIC_CASES[name][1], mode, upstream)
                flows = isinstance(grad, np.ndarray) and close(grad, want)
            if not flows:
                fail(f"{call}: no gradient (or the wrong one) flows back along the shortcut: the residual connection "
                     "exists to carry it, so the shortcut must not be detached (no .detach() on x or on its output).")
