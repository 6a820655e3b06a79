"""What Notebook 11's graders share: the value checks' specs, reading their evidence, comparing with
the reference, and explaining a difference in the exercise's words."""

from __future__ import annotations

import builtins
import re
from typing import Any

import numpy as np

from assignments.notebook11 import reference
from assignments.notebook11.graders import messages
from autograder.graders import evidence, fail

# Exception types a hidden case may name: Python's own. Any other name is the notebook's choice.
BUILTIN_ERRORS = frozenset(name for name, value in vars(builtins).items()
                           if isinstance(value, type) and issubclass(value, BaseException)) | {"CellTimeout"}
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


def your_line(error: dict | None) -> str:
    if not error or not error.get("code"):
        return ""
    return f" (line {error['line']} of your cell: `{error['code']}`)"


def describe_error(error: dict, hidden: bool = False) -> str:
    """The student's exception; for a hidden case only its type, and only a built-in one."""
    kind = error.get("type") if isinstance(error.get("type"), str) else "an error"
    if kind == "NotATensor":
        found = re.fullmatch(r"returned (\w+), not a tensor", str(error.get("message", "")))
        return f"no tensor (it returned {found.group(1) if found and not hidden else 'something else'})"
    if hidden:
        return kind if kind in BUILTIN_ERRORS else "an exception"
    text = kind + (f": {error['message']}" if error.get("message") else "")
    return text + your_line(error)


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
            fail(f"{error.get('message', 'a class is not defined')}" + (f": {why}." if why else "."))
        if error.get("type") == "GraderError":
            raise RuntimeError(f"the probe failed on the grader's side ({error.get('message')})")
        fail(f"{label}: building it raised {describe_error(error, hidden)}.")
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


def expected_shape(kind: str, args, inputs: dict) -> list[int]:
    x = inputs["x"]
    if kind == "double_conv":
        return [x[0], args[1], x[2], x[3]]
    if kind == "down":
        return [x[0], args[1], x[2] // 2, x[3] // 2]
    if kind == "up":
        skip = inputs["skip"]
        return [skip[0], args[1], skip[2], skip[3]]
    return [x[0], args[1], x[2], x[3]]


def shape_problem(kind: str, spec: dict, found: np.ndarray, label: str, hidden: bool) -> str | None:
    want = expected_shape(kind, spec["args"], spec["inputs"])
    if list(found.shape) == want:
        return None
    rule = {"double_conv": "out_channels channels at the input's height and width",
            "down": "out_channels channels at half the input's height and width (rounded down)",
            "up": "out_channels channels at the skip's height and width",
            "unet": "num_classes scores for every pixel, at the input's height and width"}[kind]
    if hidden:
        return f"{label} gave an output of the wrong shape: it should have {rule}."
    return f"{label} gave an output of shape {messages.shape_text(found.shape)} instead of {messages.shape_text(want)}: {rule}."


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
        fail(f"{label}: {problem}")
    y = result.get("y")
    error = outcome_error(y)
    if error:
        hint = messages.up_error_hint(error) if kind == "up" else ""
        fail(f"{label} raised {describe_error(error, hidden)}.{hint}")
    if not isinstance(y, np.ndarray):
        fail(f"{label} did not return a tensor.")
    shape = shape_problem(kind, spec, y, label, hidden)
    if shape:
        fail(shape)
    variant = reference.variant_of(y, spec)
    if variant and kind == "up":
        fail(f"{label}: {messages.UP_VARIANTS[variant]}.")
    if variant and kind == "down":
        fail(f"{label}: {messages.DOWN_VARIANTS[variant]}.")
    if not np.isfinite(y).all():
        fail(f"{label}: its output holds NaN or infinite values.")
    if not live(y, result.get("y2")):
        fail(f"{label}: its output does not depend on its input.")
    rule = {"double_conv": "(3x3 convolution -> BatchNorm2d -> ReLU) twice", "down": messages.DOWN_RULE,
            "up": messages.UP_RULE}[kind]
    fail(f"{label} does not compute what it should: {rule}.")


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
    if error and error.get("simulation_limit"):
        return False
    return bool(error) and bool(messages.DEVICE_WORDS.search(f"{error.get('type', '')}: {error.get('message', '')}"))
