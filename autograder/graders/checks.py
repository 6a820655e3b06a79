"""Helpers the graders share: finding a probe's result, explaining why it is missing, comparing."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from autograder.graders import fail
from autograder.submission import Submission


def your_line(error: dict | None) -> str:
    if not error or not error.get("code"):
        return ""
    return f" (line {error['line']} of your cell: `{error['code']}`)"


def describe_error(error: dict, hidden: bool = False) -> str:
    """The student's exception; for hidden cases without its message, which may show sizes."""
    text = error.get("type", "an error")
    if not hidden and error.get("message"):
        text += f": {error['message']}"
    return text + your_line(error)


def probe(sub: Submission, probe_id: str, world: str = "real") -> dict:
    """The probe's result, or a failure that says why the check could not run."""
    if sub.broken:
        fail(sub.broken)
    run = sub.world(world)
    result = run.probes.get(probe_id) if run else None
    if result is None:
        fail(sub.why_not_reached(probe_id, world))
    return result


def result_or_error(sub: Submission, result: dict, what: str, hidden: bool = False) -> dict:
    if "error" in result:
        error = result["error"]
        if error.get("type") == "NameError" and error.get("line") is None:
            missing = re.search(r"(\w+)'? is not defined", error.get("message", ""))
            earlier = sub.first_failure_before(result["id"], result.get("world", "real"),
                                               missing.group(1) if missing else None)
            fail(f"{error.get('message', 'a name is not defined')}" + (f": {earlier}." if earlier else "."))
        fail(f"{what} raised {describe_error(error, hidden)}.")
    return result


def array(value: Any, what: str, hidden: bool = False) -> np.ndarray:
    if isinstance(value, dict) and "error" in value:
        fail(f"{what} raised {describe_error(value['error'], hidden)}.")
    if not isinstance(value, np.ndarray):
        fail(f"{what} did not return a tensor.")
    return value


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-4, atol=1e-4))


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


def conv_text(desc: dict | None) -> str:
    if not desc or desc.get("type") != "Conv2d":
        return "not a Conv2d" if desc else "missing"
    return (f"Conv2d({desc['in']} -> {desc['out']}, kernel {tuple(desc['kernel'])}, stride {tuple(desc['stride'])}, "
            f"padding {desc['padding'] if isinstance(desc['padding'], str) else tuple(desc['padding'])}"
            f"{', with bias' if desc['bias'] else ''})")
