"""What Notebook 11's graders share: the value checks' specs, reading their evidence, comparing with
the reference, and explaining a difference in the exercise's words."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from assignments.notebook11 import reference
from assignments.notebook11.graders import messages
from autograder.graders import evidence, fail
from autograder.graders import twoworld

CLASS_OF = messages.KINDS
STEP_CELLS = {"double_conv": "DoubleConv", "down": "Down", "up": "Up"}  # answer cells of the U-Net's parts


def value_spec(kind: str, probe_id: str, args, inputs: dict, seed: int, defer: bool = False) -> dict:
    """A value check: the notebook's class built with args, seeded values loaded, run on seeded inputs."""
    spec = {"id": probe_id, "op": kind, "cls": CLASS_OF[kind], "kind": kind, "args": list(args),
            "inputs": {k: list(v) for k, v in inputs.items()}, "seed": seed}
    if defer:
        spec["defer"] = True
    return spec


def spec_of(submission, cell: str, probe_id: str) -> dict:
    return next(p for p in submission.plan_probes(cell) if p["id"] == probe_id)


describe_error = messages.describe_error


def outcome_error(value: Any) -> dict | None:
    """The error the sandbox reported in place of an output, if it did."""
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value
    if isinstance(value, dict) and isinstance(value.get("error"), dict):
        return value["error"]
    return None


def built(submission, result: dict, label: str, hidden: bool) -> dict:
    """The probe's result, or a failure saying why the class could not be built."""
    if "error" in result:
        error = result["error"]
        if error.get("type") == "NameError" and error.get("line") is None:
            name = re.match(r"(\w+) is not defined", str(error.get("message", "")))
            why = submission.first_failure_before(result["id"], result.get("world", "real"),
                                                  name.group(1) if name else None)
            fail(messages.name_missing(error.get("message", "a class is not defined"), why))
        if error.get("type") == "GraderError":
            raise RuntimeError(f"the probe failed on the grader's side ({error.get('message')})")
        fail(messages.build_raised(label, describe_error(error, hidden)))
    return result


def close(a: Any, b: Any, rtol: float = 1e-4, atol: float = 1e-4) -> bool:
    return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and \
        bool(np.all(np.isfinite(a))) and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def live(y: Any, y2: Any) -> bool:
    """A real function of its input: finite, not one constant, and another input gives another output."""
    return isinstance(y, np.ndarray) and y.size > 1 and bool(np.isfinite(y).all()) and float(np.ptp(y)) > 1e-6 and \
        not (isinstance(y2, np.ndarray) and y2.shape == y.shape and np.allclose(y, y2, rtol=0, atol=1e-6))


def matches_reference(result: dict, expected: dict, tolerance: dict) -> bool:
    return all(close(result.get(key), value, **tolerance) for key, value in expected.items()
               if key in ("y", "y2"))


def own_code_right(result: dict, composed: Any) -> bool:
    """The step computes what it should with its own DoubleConv inside (what the sandbox composed:
    DoubleConv(max-pool(x)), DoubleConv(cat([skip, padded up(x)]))), and the output is live: its
    DoubleConv's mistakes are the DoubleConv item's."""
    if not isinstance(composed, dict) or outcome_error(composed):
        return False
    y, y2 = result.get("y"), result.get("y2")
    return close(y, composed.get("y"), 1e-5, 1e-5) and close(y2, composed.get("y2"), 1e-5, 1e-5) and live(y, y2)


def shape_problem(kind: str, spec: dict, found: np.ndarray, label: str, hidden: bool) -> str | None:
    return messages.shape_problem(kind, spec["args"], spec["inputs"], found.shape, label, hidden)


def judge_step(submission, cell: str, probe_id: str, hidden_label: str | None = None) -> None:
    """One value check of a DoubleConv, Down or Up: pass, or fail with what is wrong."""
    spec = spec_of(submission, cell, probe_id)
    kind, args, hidden = spec["kind"], spec["args"], hidden_label is not None
    label = messages.case_label(kind, args, spec["inputs"], hidden_label)
    result = built(submission, evidence(submission, probe_id), label, hidden)
    expected = reference.expected(spec)
    if matches_reference(result, expected, {}):
        return
    if kind in ("down", "up") and own_code_right(result, result.get("composed")):
        return  # right, but for its DoubleConv, which the DoubleConv item judges
    problem = layers_problem(kind, result, args, hidden)
    if problem:
        fail(messages.case_problem(label, problem))
    y = result.get("y")
    error = outcome_error(y)
    if error:
        hint = messages.up_error_hint(error) if kind == "up" else ""
        fail(messages.step_raised(label, describe_error(error, hidden), hint))
    if not isinstance(y, np.ndarray):
        fail(messages.no_tensor(label))
    shape = shape_problem(kind, spec, y, label, hidden)
    if shape:
        fail(shape)
    variant = reference.variant_of(y, spec)
    if variant and kind in ("up", "down"):
        fail(messages.variant_problem(kind, label, variant))
    if not np.isfinite(y).all():
        fail(messages.not_finite(label))
    if not live(y, result.get("y2")):
        fail(messages.not_live(label))
    fail(messages.wrong_values(kind, label))


def layers_problem(kind: str, result: dict, args, hidden: bool) -> str | None:
    layers = result.get("layers") or []
    if kind == "double_conv":
        return messages.double_conv_layers_problem(layers, args[0], args[1], hidden)
    if kind == "down":
        return messages.down_layers_problem(layers)
    if kind == "up":
        return messages.up_layers_problem(layers, args[0], hidden)
    return None


def stopped_in_a_part(submission, probe_id: str, world: str, name: str) -> bool:
    """`name` is missing because the cell that makes it stopped inside the code of DoubleConv, Down
    or Up (the error's last line of the notebook's code is in one of their cells): that part's
    mistake, charged in its own item."""
    run, index = submission.world(world), submission.probe_index(probe_id)
    if run is None or index is None:
        return False
    failed = [c for i, c in sorted(run.cells.items()) if i < index and c.get("status") == "error" and c.get("error")]
    for cell in failed:
        where = cell["error"].get("cell")
        if isinstance(where, int) and 0 <= where < len(submission.plan["cells"]) and \
                submission.plan["cells"][where].get("grade_id") in STEP_CELLS:
            assigns = [i for i, c in sorted(run.cells.items()) if c is cell]
            if assigns and re.search(rf"^\s*{re.escape(name)}\s*[,=]", submission.plan["cells"][assigns[0]]["source"],
                                     re.MULTILINE):
                return True
    return False


def device_related(error: dict | None) -> bool:
    return twoworld.device_related(error, messages.DEVICE_WORDS)
