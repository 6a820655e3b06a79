"""Helpers the graders share: finding a probe's result, explaining why it is missing, comparing."""

from __future__ import annotations

import builtins
import re
from typing import Any

import numpy as np

from autograder.graders import evidence, fail
from autograder.graders import twoworld
from assignments.notebook10.graders.messages import DEVICE_WORDS, conv_text, name_missing, not_a_tensor  # noqa: F401 (the graders import it from here)
from autograder.submission import Submission


def your_line(error: dict | None) -> str:
    if not error or not error.get("code"):
        return ""
    return f" (line {error['line']} of your cell: `{error['code']}`)"


# Exception types a hidden case may name: Python's own. Any other name is the
# notebook's choice of text (a class can be called anything, a hidden configuration included).
BUILTIN_ERRORS = frozenset(name for name, value in vars(builtins).items()
                           if isinstance(value, type) and issubclass(value, BaseException)) | {"CellTimeout"}


def describe_error(error: dict, hidden: bool = False) -> str:
    """The student's exception. For a hidden case only its type, and only when it is one of
    Python's own: its message, its line and a made-up type name could all carry the case's sizes."""
    kind = error.get("type") if isinstance(error.get("type"), str) else "an error"
    if hidden:
        return kind if kind in BUILTIN_ERRORS else "an exception"
    text = kind
    if error.get("message"):
        text += f": {error['message']}"
    return text + your_line(error)


def probe(sub: Submission, probe_id: str, world: str = "real") -> dict:
    """The probe's result, or a failure that says why the check could not run."""
    return evidence(sub, probe_id, world)


OWN_NAME_ERROR = re.compile(r"(ResidualBlock|resnet_model) is not defined")


def _not_a_tensor(error: dict, what: str) -> None:
    """The probe's NotATensor is the grader's name for "forward returned something else": in words."""
    if error.get("type") == "NotATensor":
        found = re.fullmatch(r"returned (\w+), not a tensor", str(error.get("message", "")))
        fail(not_a_tensor(what, found.group(1) if found else "something else"))


def result_or_error(sub: Submission, result: dict, what: str, hidden: bool = False) -> dict:
    if "error" in result:
        error = result["error"]
        ours = error.get("type") == "NameError" and error.get("line") is None and \
            OWN_NAME_ERROR.fullmatch(str(error.get("message", ""))) is not None
        if ours or (not hidden and error.get("type") == "NameError" and error.get("line") is None):
            missing = re.search(r"(\w+)'? is not defined", error.get("message", ""))
            earlier = sub.first_failure_before(result["id"], result.get("world", "real"),
                                               missing.group(1) if missing else None)
            fail(name_missing(error.get("message", "a name is not defined"), earlier))
        _not_a_tensor(error, what)
        fail(f"{what} raised {describe_error(error, hidden)}.")
    return result


def array(value: Any, what: str, hidden: bool = False) -> np.ndarray:
    if isinstance(value, dict) and "error" in value:
        _not_a_tensor(value["error"], what)
        fail(f"{what} raised {describe_error(value['error'], hidden)}.")
    if not isinstance(value, np.ndarray):
        fail(f"{what} did not return a tensor.")
    return value


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-4, atol=1e-4))


def joins(z: Any, s: np.ndarray) -> str | None:
    """How a block's output z, computed with its main path's convolutions zeroed (so that the main
    path gives one constant per channel, c), is made from the shortcut's output s: "relu" when
    z = relu(s + c), "sum" when z = s + c (no final ReLU), None when neither holds for any c."""
    if not isinstance(z, np.ndarray) or z.shape != s.shape or z.ndim != 4 or not np.isfinite(z).all():
        return None
    if not np.any(np.abs(z) > 1e-6):
        return None  # all zeros: nothing of x came through
    d = (z - s).transpose(1, 0, 2, 3).reshape(s.shape[1], -1)
    live = (z > 1e-4).transpose(1, 0, 2, 3).reshape(s.shape[1], -1)
    c = np.array([np.median(row[mask]) if mask.any() else np.median(row) for row, mask in zip(d, live)],
                 dtype=np.float32).reshape(1, -1, 1, 1)
    if close(z, np.maximum(s + c, 0)):
        return "relu"
    if close(z, s + c):
        return "sum"
    return None


def live(result: dict) -> str | None:
    """Why the outputs look faked (constant, random, or ignoring the input), or None."""
    y1, y1b, y2 = (np.asarray(result[k]) for k in ("y1", "y1b", "y2"))
    if not (np.isfinite(y1).all() and np.isfinite(y2).all()):
        return "its output contains NaN or infinite values"
    if y1.shape != y1b.shape or not np.array_equal(y1, y1b):
        return "in eval mode it gave two different outputs for the same input"
    if y1.shape == y2.shape and np.array_equal(y1, y2):
        return "its output does not depend on its input"
    return None


def device_related(error: dict | None) -> bool:
    return twoworld.device_related(error, DEVICE_WORDS)


def vars_world(sub: Submission, probe_id: str, name: str) -> str:
    """The world in which to read a notebook variable for a check that is not about devices: the
    run on this machine, unless the variable is missing there because of a device mistake (the
    notebook's cell stopped with a device error) and the other run has it."""
    real = sub.world("real")
    result = real.probes.get(probe_id) if real else None
    found = (result or {}).get(name) if isinstance(result, dict) else None
    if isinstance(found, dict) and found.get("shape") is not None or isinstance(found, list):
        return "real"
    other = sub.world("counterfactual")
    other_result = other.probes.get(probe_id) if other else None
    other_found = (other_result or {}).get(name) if isinstance(other_result, dict) else None
    if not (isinstance(other_found, dict) and other_found.get("shape") is not None or isinstance(other_found, list)):
        return "real"
    index = sub.probe_index(probe_id)
    failed = [c for i, c in sorted(real.cells.items()) if index is not None and i < index and c.get("status") != "ok"] \
        if real else []
    return "counterfactual" if any(device_related(c.get("error")) for c in failed) else "real"
