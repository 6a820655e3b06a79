"""unet_output (3 points): the notebook's UNet and its logits.

* logits (0.5): the notebook's own logits have shape (8, 3, 64, 64) for its batch of 8 images,
  read in the run where the demo cell ran (a device mistake that stopped it on this machine is the
  device item's; a DoubleConv, Down or Up mistake that stopped it is charged in their items);
* UNet(1, 3, base=16) with seeded weights on a 64x64 batch and on a 63x61 image (0.75 each);
* four hidden configurations, odd sizes included (0.25 each).

A UNet case passes when the output equals the reference's (reference.py). It also passes when the
UNet's own part is right and only its DoubleConv, Down or Up is not (those items charge them): its
parts are built with the exercise's arguments (their state shapes equal those of the notebook's own
classes built so), outc is a 1x1 convolution from base to num_classes, and the model gives exactly
what its parts give when run one after the other as a U-Net runs them (or, where the model stops,
its parts stop too), with an output that depends on its input.
"""

from __future__ import annotations

import numpy as np
import pytest

from assignments.notebook11 import reference
from assignments.notebook11.graders import messages
from assignments.notebook11.graders.checks import (built, close, describe_error, device_related, live,
                                                   matches_reference, outcome_error, shape_problem, spec_of,
                                                   stopped_in_a_part, value_spec)
from autograder.graders import GradingFailure, evidence, fail, points

CELL = "test_unet_output"
WORLDS = ["real"]
LOGITS = messages.LOGITS
TOLERANCE = {"rtol": 1e-3, "atol": 1e-3}  # logits of order 10 after 15 layers in float32

SEED_CASES = messages.UNET_CASES  # the self-check's cases
HIDDEN_CASES = {
    "hidden-1": ("three input channels, four classes, a narrow network, odd sizes", (3, 4, 4), [1, 3, 37, 50]),
    "hidden-2": ("two classes, a batch of three", (1, 2, 8), [3, 1, 24, 24]),
    "hidden-3": ("an odd size at every level", (1, 3, 16), [1, 1, 45, 33]),
    "hidden-4": ("four input channels, base=2", (4, 3, 2), [2, 4, 16, 20]),
}
CASE_LABELS = [label for label, *_ in HIDDEN_CASES.values()]


def probes(seed: int) -> list[dict]:
    specs = [value_spec("unet", f"unet/{name}", args, {"x": shape, "x2": shape}, seed + 500 + 10 * i)
             for i, (name, (args, shape)) in enumerate(SEED_CASES.items())]
    specs += [value_spec("unet", f"unet/{name}", args, {"x": shape, "x2": shape}, seed + 550 + 10 * i, defer=True)
              for i, (name, (_, args, shape)) in enumerate(HIDDEN_CASES.items())]
    # the notebook's own tensors, in both runs: a device mistake may have stopped the demo in one
    specs.append({"id": "unet/vars", "op": "vars", "vars": ["images", "masks", "logits"],
                  "worlds": ["real", "counterfactual"]})
    return specs


def warm_up(seed: int) -> None:
    for spec in probes(seed):
        if spec["op"] == "unet":
            reference.expected(spec)


def _vars_world(submission) -> str:
    """The run to read the notebook's logits in: this machine's, unless a device mistake stopped
    the demo there and the other run has them."""
    real = evidence(submission, "unet/vars", "real")
    if (real.get("shapes") or {}).get("logits") is not None:
        return "real"
    other = submission.world("counterfactual")
    found = other.probes.get("unet/vars") if other else None
    if not isinstance(found, dict) or (found.get("shapes") or {}).get("logits") is None:
        return "real"
    run, index = submission.world("real"), submission.probe_index("unet/vars")
    failed = [c for i, c in sorted(run.cells.items()) if i < index and c.get("status") != "ok"] if run else []
    return "counterfactual" if any(device_related(c.get("error")) for c in failed) else "real"


@points(0.5)
def test_unet_logits_shape(submission):
    world = _vars_world(submission)
    result = evidence(submission, "unet/vars", world)
    shape = (result.get("shapes") or {}).get("logits")
    if shape is None:
        if "logits" in (result.get("defined") or []):
            fail(messages.LOGITS_NOT_A_TENSOR)
        if stopped_in_a_part(submission, "unet/vars", world, "logits") and _own_part_right(submission):
            return  # the demo stopped inside DoubleConv, Down or Up, and the UNet's own part is right
        why = submission.first_failure_before("unet/vars", world, "logits")
        fail(messages.not_defined("logits", why))
    images = (result.get("shapes") or {}).get("images")
    problem = messages.logits_shape_problem(shape, images)
    if problem:
        fail(problem)


def _own_part_right(submission) -> bool:
    try:
        judge_unet(submission, "unet/64x64")
    except GradingFailure:
        return False
    return True


def _parts_problem(result: dict, args, hidden: bool) -> str | None:
    """What is wrong with the UNet's own part: which parts it holds and what it builds them with."""
    children = result.get("children") or {}
    missing = [name for name in messages.UNET_PARTS_RULE if name not in children]
    if missing:
        return messages.unet_missing_parts(missing)
    _, classes, base = args
    problem = messages.outc_problem(result.get("outc"), base, classes, hidden)
    if problem:
        return problem
    state = result.get("state") or {}
    for name, own in (result.get("parts") or {}).items():
        mine = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(f"{name}.")}
        if isinstance(own, dict) and not isinstance(own.get("type"), str) and mine != own:
            return messages.unet_part_problem(name)
    return None


def judge_unet(submission, probe_id: str, hidden_label: str | None = None) -> None:
    spec = spec_of(submission, CELL, probe_id)
    hidden = hidden_label is not None
    label = messages.case_label("unet", spec["args"], spec["inputs"], hidden_label)
    result = built(submission, evidence(submission, probe_id), label, hidden)
    if matches_reference(result, reference.expected(spec), TOLERANCE):
        return
    problem = _parts_problem(result, spec["args"], hidden)
    if problem:
        fail(messages.case_problem(label, problem))
    y, composed = result.get("y"), result.get("composed")
    error, parts_error = outcome_error(y), outcome_error(composed)
    if error:
        if parts_error and parts_error.get("at"):
            return  # its parts stop too, run as a U-Net runs them: the part's mistake, charged in its item
        fail(messages.unet_raised(label, describe_error(error, hidden)))
    if not isinstance(y, np.ndarray):
        fail(messages.no_tensor(label))
    shape = shape_problem("unet", spec, y, label, hidden)
    if shape:
        fail(shape)
    if not live(y, result.get("y2")):
        fail(messages.not_live(label))
    if isinstance(composed, np.ndarray) and close(y, composed, 1e-5, 1e-5):
        return  # the UNet's own part is right; its parts' mistakes are charged in their items
    fail(messages.unet_wiring(label))


@points(0.75)
@pytest.mark.parametrize("case", list(SEED_CASES))
def test_unet_seeded_weights(submission, case):
    judge_unet(submission, f"unet/{case}")


@points(0.25)
@pytest.mark.parametrize("case", list(HIDDEN_CASES))
def test_unet_hidden_cases(submission, case):
    judge_unet(submission, f"unet/{case}", HIDDEN_CASES[case][0])
